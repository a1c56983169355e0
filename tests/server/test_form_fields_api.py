"""A form's fields in Central's shape, and one published version by its version."""

from __future__ import annotations

from tests.server.conftest import SIMPLE_FORM, World
from tests.server.test_odata_field_filter import member
from tests.server.test_odata_field_filter import visits as visits
from tests.server.test_submission_review import assert_problem

SELECTS = SIMPLE_FORM.replace(
    b'<bind nodeset="/data/age" type="int"/>',
    b'<bind nodeset="/data/age" type="int"/><bind nodeset="/data/many" type="select"/>',
).replace(b"<age/><photo/>", b"<age/><photo/><many/>")


async def test_fields_in_centrals_shape(world: World) -> None:
    url = f"/v1/projects/{world.project_id}/forms/simple/fields"
    response = await world.client.get(url, headers=world.admin_headers)
    assert response.status_code == 200, response.text
    by_path = {f["path"]: f for f in response.json()}
    assert by_path["/name"] == {
        "name": "name",
        "path": "/name",
        "type": "string",
        "binary": None,
        "selectMultiple": None,
    }
    assert by_path["/age"]["type"] == "int"
    assert by_path["/photo"]["binary"] is True
    assert by_path["/meta"]["type"] == "structure"
    assert by_path["/meta/instanceID"]["type"] == "string"
    missing = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/nope/fields", headers=world.admin_headers
    )
    assert_problem(missing, 404, 404.1)


async def test_draft_and_version_fields(world: World) -> None:
    forms = f"/v1/projects/{world.project_id}/forms/simple"
    no_draft = await world.client.get(f"{forms}/draft/fields", headers=world.admin_headers)
    assert_problem(no_draft, 404, 404.1)
    await world.client.post(
        f"{forms}/draft",
        content=SELECTS.replace(b'version="1"', b'version="2"'),
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    draft = await world.client.get(f"{forms}/draft/fields", headers=world.admin_headers)
    many = next(f for f in draft.json() if f["name"] == "many")
    assert many["selectMultiple"] is True
    assert many["type"] == "string"
    old = await world.client.get(f"{forms}/versions/1/fields", headers=world.admin_headers)
    assert "many" not in [f["name"] for f in old.json()]


async def test_one_version_and_its_xml(world: World) -> None:
    forms = f"/v1/projects/{world.project_id}/forms/simple"
    one = await world.client.get(f"{forms}/versions/1", headers=world.admin_headers)
    assert one.status_code == 200
    assert one.json()["version"] == "1"
    assert one.json()["xmlFormId"] == "simple"
    xml = await world.client.get(f"{forms}/versions/1.xml", headers=world.admin_headers)
    assert xml.content.startswith(b"<?xml")
    missing = await world.client.get(f"{forms}/versions/9", headers=world.admin_headers)
    assert_problem(missing, 404, 404.1)


async def test_draft_definition_and_version_files(world: World) -> None:
    forms = f"/v1/projects/{world.project_id}/forms/simple"
    assert_problem(
        await world.client.get(f"{forms}/draft.xml", headers=world.admin_headers), 404, 404.1
    )
    await world.client.post(f"{forms}/draft", headers=world.admin_headers)
    xml = await world.client.get(f"{forms}/draft.xml", headers=world.admin_headers)
    assert xml.status_code == 200
    assert b'id="simple"' in xml.content
    # An XForm upload has no XLSForm to give back.
    xlsx = await world.client.get(f"{forms}/draft.xlsx", headers=world.admin_headers)
    assert_problem(xlsx, 404, 404.1)
    other = await world.client.get(f"{forms}/whatever.xml", headers=world.admin_headers)
    assert_problem(other, 404, 404.1)
    attachments = await world.client.get(
        f"{forms}/versions/1/attachments", headers=world.admin_headers
    )
    assert attachments.json() == []
    none = await world.client.get(
        f"{forms}/versions/1/attachments/logo.png", headers=world.admin_headers
    )
    assert_problem(none, 404, 404.1)


async def test_fields_say_which_a_caller_sees_masked(visits: World) -> None:
    """The web app offers as filters only the fields the server will filter by."""
    viewer = await member(visits, "viewer")
    url = f"/v1/projects/{visits.project_id}/forms/visit/fields?odata=true"

    as_viewer = (await visits.client.get(url, headers=viewer)).json()
    as_admin = (await visits.client.get(url, headers=visits.admin_headers)).json()

    assert [f["name"] for f in as_viewer if f.get("masked")] == ["full_name"]
    assert not any("masked" in f for f in as_admin)
