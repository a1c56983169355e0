"""Public links of a form: list, create, read, revoke, and submitting with ?st=."""

from __future__ import annotations

from tests.server.conftest import World, submission_xml
from tests.server.test_submission_review import assert_problem

OPENROSA = {"X-OpenRosa-Version": "1.0"}


def links(world: World) -> str:
    return f"/v1/projects/{world.project_id}/forms/simple/public-links"


async def test_create_list_get_and_delete(world: World) -> None:
    created = await world.client.post(
        links(world), json={"displayName": "Survey link", "once": True}, headers=world.admin_headers
    )
    assert created.status_code == 200, created.text
    link = created.json()
    assert link["displayName"] == "Survey link"
    assert link["type"] == "public_link"
    assert link["once"] is True
    assert len(link["token"]) == 64
    listed = await world.client.get(
        links(world), headers=world.admin_headers | {"X-Extended-Metadata": "true"}
    )
    [again] = listed.json()
    assert again["token"] == link["token"]  # shown again, though only its hash is stored
    assert again["createdBy"]["type"] == "user"
    one = await world.client.get(f"{links(world)}/{link['id']}", headers=world.admin_headers)
    assert one.json()["id"] == link["id"]

    deleted = await world.client.delete(f"{links(world)}/{link['id']}", headers=world.admin_headers)
    assert deleted.json() == {"success": True}
    assert (await world.client.get(links(world), headers=world.admin_headers)).json() == []
    gone = await world.client.delete(f"{links(world)}/{link['id']}", headers=world.admin_headers)
    assert_problem(gone, 404, 404.1)
    audits = await world.client.get("/v1/audits?action=public_link", headers=world.admin_headers)
    assert [a["action"] for a in audits.json()] == [
        "public_link.delete",
        "public_link.assignment.create",
        "public_link.create",
    ]


async def test_create_needs_a_display_name_and_rights(world: World) -> None:
    empty = await world.client.post(
        links(world), json={"displayName": ""}, headers=world.admin_headers
    )
    assert_problem(empty, 400, 400.2)
    anonymous = await world.client.post(links(world), json={"displayName": "x"})
    assert_problem(anonymous, 401, 401.4)
    missing = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/nope/public-links", headers=world.admin_headers
    )
    assert_problem(missing, 404, 404.1)


async def test_a_link_token_submits_to_its_form_until_revoked(world: World) -> None:
    link = (
        await world.client.post(
            links(world), json={"displayName": "Survey"}, headers=world.admin_headers
        )
    ).json()
    url = f"/v1/projects/{world.project_id}/submission?st={link['token']}"
    files = {"xml_submission_file": ("x.xml", submission_xml("uuid:pl1"), "text/xml")}
    sent = await world.client.post(url, files=files, headers=OPENROSA)
    assert sent.status_code == 201, sent.text
    # It reads nothing else.
    listing = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple/submissions?st={link['token']}"
    )
    assert_problem(listing, 403, 403.1)
    await world.client.delete(f"{links(world)}/{link['id']}", headers=world.admin_headers)
    files = {"xml_submission_file": ("x.xml", submission_xml("uuid:pl2"), "text/xml")}
    refused = await world.client.post(url, files=files, headers=OPENROSA)
    assert refused.status_code == 401
