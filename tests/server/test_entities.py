"""ODK Entities over HTTP: a form declares a list, submissions fill it, Collect reads it."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from forms.xlsform import compile_xlsform
from server.db.models import Audit
from server.services.entity_ingest import force_backlog
from tests.server.conftest import World

INTAKE = """
| survey |
| | type | name | label | save_to |
| | text | first_name | First name | first_name |
| | text | town | Town | municipality |
| | text | status | Status | status |
| entities |
| | list_name | label |
| | returnees | concat(${first_name}, ' ', ${town}) |
| settings |
| | form_id | version |
| | intake | 1 |
"""

FOLLOW_UP = """
| survey |
| | type | name | label | save_to |
| | select_one_from_file returnees.csv | who | Who | |
| | text | status | Status | status |
| entities |
| | list_name | entity_id | update_if |
| | returnees | ${who} | ${status} != '' |
| settings |
| | form_id | version |
| | follow_up | 1 |
"""


def _xform(markdown: str) -> bytes:
    return compile_xlsform(markdown.encode(), file_name="f.md").xml


async def _publish(world: World, markdown: str) -> dict[str, object]:
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true",
        content=_xform(markdown),
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def _submit(world: World, xml: str, status: int = 201) -> None:
    response = await world.client.post(
        f"{world.key_base}/submission",
        files={"xml_submission_file": ("s.xml", xml.encode(), "text/xml")},
        headers={"X-OpenRosa-Version": "1.0"},
    )
    assert response.status_code == status, response.text


def _intake(entity_id: str, first: str = "Ana", town: str = "Tirana", label: str = "Ana T") -> str:
    return (
        f'<data id="intake" version="1"><first_name>{first}</first_name><town>{town}</town>'
        f"<status>new</status><meta><instanceID>uuid:{uuid.uuid4()}</instanceID>"
        f'<entity dataset="returnees" create="1" id="{entity_id}"><label>{label}</label>'
        "</entity></meta></data>"
    )


def _update(entity_id: str, status: str, base: int, trunk: int | None, branch: str) -> str:
    trunk_text = "" if trunk is None else str(trunk)
    return (
        f'<data id="follow_up" version="1"><who>{entity_id}</who><status>{status}</status>'
        f"<meta><instanceID>uuid:{uuid.uuid4()}</instanceID>"
        f'<entity dataset="returnees" update="1" id="{entity_id}" baseVersion="{base}"'
        f' trunkVersion="{trunk_text}" branchId="{branch}"/></meta></data>'
    )


async def _assign(world: World, form_id: str) -> None:
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/{form_id}/assignments/app-user/{world.app_user_id}",
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text


async def _entity(world: World, entity_id: str) -> dict[str, object]:
    response = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities/{entity_id}",
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_intake_creates_entities_that_the_follow_up_downloads_and_updates(
    world: World,
) -> None:
    form = await _publish(world, INTAKE)
    assert form["entityRelated"] is True
    await _assign(world, "intake")
    entity_id = str(uuid.uuid4())
    await _submit(world, _intake(entity_id))

    entity = await _entity(world, entity_id)
    current = entity["currentVersion"]
    assert isinstance(current, dict)
    assert current["label"] == "Ana T"
    assert current["version"] == 1
    assert current["data"] == {"first_name": "Ana", "municipality": "Tirana", "status": "new"}

    await _publish(world, FOLLOW_UP)
    await _assign(world, "follow_up")
    manifest = await world.client.get(f"{world.key_base}/forms/follow_up/manifest")
    assert manifest.status_code == 200
    assert b'type="entityList"' in manifest.content
    assert b"<integrityUrl>" in manifest.content
    first_hash = manifest.content.split(b"<hash>")[1].split(b"</hash>")[0]

    listed = await world.client.get(f"{world.key_base}/forms/follow_up/attachments/returnees.csv")
    assert listed.status_code == 200
    rows = list(csv.reader(io.StringIO(listed.text)))
    assert rows[0] == ["name", "label", "__version", "first_name", "municipality", "status"]
    assert rows[1] == [entity_id, "Ana T", "1", "Ana", "Tirana", "new"]
    etag = listed.headers["etag"]
    assert etag.strip('"') == first_hash.decode().removeprefix("md5:")
    cached = await world.client.get(
        f"{world.key_base}/forms/follow_up/attachments/returnees.csv",
        headers={"If-None-Match": etag},
    )
    assert cached.status_code == 304

    # An offline chain of two updates on one branch, sent in reverse order.
    await _submit(world, _update(entity_id, "second", base=2, trunk=1, branch="b1"))
    assert (await _entity(world, entity_id))["currentVersion"]["version"] == 1  # type: ignore[index]
    await _submit(world, _update(entity_id, "first", base=1, trunk=1, branch="b1"))
    entity = await _entity(world, entity_id)
    assert entity["currentVersion"]["version"] == 3  # type: ignore[index]
    assert entity["currentVersion"]["data"]["status"] == "second"  # type: ignore[index]
    assert entity["conflict"] is None

    changed = await world.client.get(f"{world.key_base}/forms/follow_up/manifest")
    assert changed.content.split(b"<hash>")[1].split(b"</hash>")[0] != first_hash

    # Two updates from one base version: the second is a recorded conflict.
    await _submit(world, _update(entity_id, "left", base=3, trunk=3, branch="b2"))
    await _submit(world, _update(entity_id, "stayed", base=3, trunk=3, branch="b3"))
    entity = await _entity(world, entity_id)
    assert entity["conflict"] == "hard"
    assert entity["currentVersion"]["conflictingProperties"] == ["status"]  # type: ignore[index]

    resolved = await world.client.patch(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities/{entity_id}?resolve=true",
        json={},
        headers=world.admin_headers,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["conflict"] is None

    integrity = await world.client.get(
        f"{world.key_base}/datasets/returnees/integrity", params={"id": entity_id}
    )
    assert integrity.status_code == 200
    assert f'<entity id="{entity_id}"><deleted>false</deleted>'.encode() in integrity.content


async def test_a_submission_whose_entity_fails_is_kept_and_the_error_recorded(
    world: World,
) -> None:
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    entity_id = str(uuid.uuid4())
    await _submit(world, _intake(entity_id))
    await _submit(world, _intake(entity_id, first="Bea"))  # the same id again
    await _submit(world, _intake("not-a-uuid"))
    await _submit(world, _intake(str(uuid.uuid4()), label=""))
    listed = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/intake/submissions", headers=world.admin_headers
    )
    assert len(listed.json()) == 4
    async with world.runtime.read() as db:
        errors = (await db.scalars(select(Audit).where(Audit.action == "entity.error"))).all()
    codes = sorted(json.loads(a.details or "{}")["problem"]["problemCode"] for a in errors)
    assert codes == [400.11, 400.2, 409.3]
    entities = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities",
        headers=world.admin_headers,
    )
    assert [e["uuid"] for e in entities.json()] == [entity_id]


async def test_datasets_api_as_pyodk_uses_it(world: World) -> None:
    base = f"/v1/projects/{world.project_id}/datasets"
    headers = world.admin_headers
    created = await world.client.post(base, json={"name": "cities"}, headers=headers)
    assert created.status_code == 200, created.text
    again = await world.client.post(base, json={"name": "cities"}, headers=headers)
    assert again.json()["code"] == 409.3
    added = await world.client.post(
        f"{base}/cities/properties", json={"name": "state"}, headers=headers
    )
    assert added.status_code == 200
    got = await world.client.get(f"{base}/cities", headers=headers)
    assert [p["name"] for p in got.json()["properties"]] == ["state"]

    one = await world.client.post(
        f"{base}/cities/entities",
        json={"label": "Sydney", "data": {"state": "NSW"}},
        headers=headers,
    )
    assert one.status_code == 200, one.text
    entity = one.json()
    assert entity["currentVersion"]["version"] == 1
    bulk = await world.client.post(
        f"{base}/cities/entities",
        json={
            "entities": [{"label": "Perth", "data": {"state": "WA"}}],
            "source": {"name": "x.csv"},
        },
        headers=headers,
    )
    assert bulk.json() == {"success": True}
    unknown = await world.client.post(
        f"{base}/cities/entities", json={"label": "X", "data": {"nope": "1"}}, headers=headers
    )
    assert unknown.status_code == 400

    entity_url = f"{base}/cities/entities/{entity['uuid']}"
    stale = await world.client.patch(
        f"{entity_url}?baseVersion=7", json={"data": {"state": "X"}}, headers=headers
    )
    assert stale.json()["code"] == 409.15
    updated = await world.client.patch(
        f"{entity_url}?baseVersion=1", json={"data": {"state": "NSW2"}}, headers=headers
    )
    assert updated.json()["currentVersion"]["version"] == 2
    forced = await world.client.patch(
        f"{entity_url}?force=True", json={"label": "Syd"}, headers=headers
    )
    assert forced.json()["currentVersion"]["label"] == "Syd"
    versions = await world.client.get(f"{entity_url}/versions", headers=headers)
    assert [v["version"] for v in versions.json()] == [1, 2, 3]
    diffs = await world.client.get(f"{entity_url}/diffs", headers=headers)
    assert diffs.json() == [
        [{"old": "NSW", "new": "NSW2", "propertyName": "state"}],
        [{"old": "Sydney", "new": "Syd", "propertyName": "label"}],
    ]
    audits = await world.client.get(f"{entity_url}/audits", headers=headers)
    assert [a["action"] for a in audits.json()] == [
        "entity.update.version",
        "entity.update.version",
        "entity.create",
    ]

    table = await world.client.get(
        f"{base}/cities.svc/Entities",
        params={"$select": "__id,label,state", "$count": "true"},
        headers=headers,
    )
    assert table.status_code == 200, table.text
    assert table.json()["@odata.count"] == 2
    assert {"__id": entity["uuid"], "label": "Syd", "state": "NSW2"} in table.json()["value"]
    metadata = await world.client.get(f"{base}/cities.svc/$metadata", headers=headers)
    assert b'Name="state"' in metadata.content

    filtered = await world.client.get(
        f"{base}/cities/entities.csv",
        params={"$filter": "__system/version eq 3 and __system/conflict eq null"},
        headers=headers,
    )
    assert [r.split(",")[1] for r in filtered.text.splitlines()[1:]] == ["Syd"]
    searched = await world.client.get(
        f"{base}/cities/entities.csv", params={"$search": "wa"}, headers=headers
    )
    assert [r.split(",")[1] for r in searched.text.splitlines()[1:]] == ["Perth"]
    odata_filtered = await world.client.get(
        f"{base}/cities.svc/Entities",
        params={"$filter": "__system/createdAt lt 2000-01-01"},
        headers=headers,
    )
    assert odata_filtered.json()["value"] == []
    unsupported = await world.client.get(
        f"{base}/cities/entities.csv", params={"$filter": "state eq 'WA'"}, headers=headers
    )
    assert unsupported.json()["code"] == 501.5

    deleted = await world.client.delete(entity_url, headers=headers)
    assert deleted.json() == {"success": True}
    assert (await world.client.get(entity_url, headers=headers)).status_code == 404
    restored = await world.client.post(f"{entity_url}/restore", headers=headers)
    assert restored.status_code == 200
    csv_file = await world.client.get(f"{base}/cities/entities.csv", headers=headers)
    assert csv_file.text.splitlines()[0] == (
        "__id,label,state,__createdAt,__creatorId,__creatorName,__updates,__updatedAt,__version"
    )
    assert len(csv_file.text.splitlines()) == 3


async def test_app_users_cannot_use_the_dataset_api(world: World) -> None:
    await world.client.post(
        f"/v1/projects/{world.project_id}/datasets",
        json={"name": "cities"},
        headers=world.admin_headers,
    )
    listed = await world.client.get(f"{world.key_base}/datasets")
    assert listed.status_code in (403, 404)


async def test_a_draft_shows_what_publishing_adds_and_the_form_what_it_fills(world: World) -> None:
    await _publish(world, INTAKE)
    base = f"/v1/projects/{world.project_id}/forms/intake"
    published = await world.client.get(f"{base}/dataset-diff", headers=world.admin_headers)
    assert published.json() == [
        {
            "name": "returnees",
            "properties": [
                {"name": "first_name", "inForm": True},
                {"name": "municipality", "inForm": True},
                {"name": "status", "inForm": True},
            ],
        }
    ]
    with_phone = INTAKE.replace(
        "| | text | status | Status | status |",
        "| | text | status | Status | status |\n| | text | phone | Phone | phone |",
    ).replace("| | intake | 1 |", "| | intake | 2 |")
    drafted = await world.client.post(
        f"{base}/draft",
        content=_xform(with_phone),
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert drafted.status_code == 200, drafted.text
    diff = await world.client.get(f"{base}/draft/dataset-diff", headers=world.admin_headers)
    [dataset] = diff.json()
    assert dataset["isNew"] is False
    assert {p["name"]: p["isNew"] for p in dataset["properties"]} == {
        "first_name": False,
        "municipality": False,
        "status": False,
        "phone": True,
    }
    listed = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees", headers=world.admin_headers
    )
    assert "phone" not in [p["name"] for p in listed.json()["properties"]]
    await world.client.post(f"{base}/draft/publish", headers=world.admin_headers)
    listed = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees", headers=world.admin_headers
    )
    assert [p["name"] for p in listed.json()["properties"]][-1] == "phone"


async def test_lists_that_require_approval_create_on_approval_and_update_at_once(
    world: World,
) -> None:
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    patched = await world.client.patch(
        f"/v1/projects/{world.project_id}/datasets/returnees",
        json={"approvalRequired": True},
        headers=world.admin_headers,
    )
    assert patched.json()["approvalRequired"] is True
    entity_id = str(uuid.uuid4())
    xml = _intake(entity_id)
    await _submit(world, xml)
    missing = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities/{entity_id}",
        headers=world.admin_headers,
    )
    assert missing.status_code == 404
    instance_id = xml.split("<instanceID>")[1].split("</instanceID>")[0]
    for _ in range(2):  # approving twice creates it once
        approved = await world.client.patch(
            f"/v1/projects/{world.project_id}/forms/intake/submissions/{instance_id}",
            json={"reviewState": "approved"},
            headers=world.admin_headers,
        )
        assert approved.status_code == 200, approved.text
    entity = await _entity(world, entity_id)
    assert entity["creatorId"] == world.app_user_id
    # As in Central, only creating waits for approval: a follow-up's update goes in
    # when it arrives, and approving that follow-up later does not apply it again.
    await _publish(world, FOLLOW_UP)
    await _assign(world, "follow_up")
    follow_up = _update(entity_id, "settled", base=1, trunk=None, branch="")
    await _submit(world, follow_up)
    updated = await _entity(world, entity_id)
    assert updated["currentVersion"]["version"] == 2  # type: ignore[index]
    assert updated["currentVersion"]["data"]["status"] == "settled"  # type: ignore[index]
    follow_up_id = follow_up.split("<instanceID>")[1].split("</instanceID>")[0]
    approved = await world.client.patch(
        f"/v1/projects/{world.project_id}/forms/follow_up/submissions/{follow_up_id}",
        json={"reviewState": "approved"},
        headers=world.admin_headers,
    )
    assert approved.status_code == 200, approved.text
    assert (await _entity(world, entity_id))["currentVersion"]["version"] == 2  # type: ignore[index]


async def test_owner_only_lists_show_a_phone_only_its_own_entities(world: World) -> None:
    await _publish(world, INTAKE)
    await _publish(world, FOLLOW_UP)
    await _assign(world, "intake")
    await _assign(world, "follow_up")
    mine = str(uuid.uuid4())
    await _submit(world, _intake(mine))
    other = await world.client.post(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities",
        json={"label": "Someone else"},
        headers=world.admin_headers,
    )
    assert other.status_code == 200, other.text
    url = f"{world.key_base}/forms/follow_up/attachments/returnees.csv"
    before = await world.client.get(f"{world.key_base}/forms/follow_up/manifest")
    assert len((await world.client.get(url)).text.splitlines()) == 3
    await world.client.patch(
        f"/v1/projects/{world.project_id}/datasets/returnees",
        json={"ownerOnly": True},
        headers=world.admin_headers,
    )
    rows = (await world.client.get(url)).text.splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [mine]
    after = await world.client.get(f"{world.key_base}/forms/follow_up/manifest")
    assert after.content != before.content
    attachments = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/follow_up/attachments",
        headers=world.admin_headers,
    )
    assert attachments.json()[0]["datasetExists"] is True
    everyone = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/follow_up/attachments/returnees.csv",
        headers=world.admin_headers,
    )
    assert len(everyone.text.splitlines()) == 3


async def test_a_held_update_whose_predecessor_never_comes_is_forced_after_the_timeout(
    world: World,
) -> None:
    await _publish(world, INTAKE)
    await _publish(world, FOLLOW_UP)
    await _assign(world, "intake")
    await _assign(world, "follow_up")
    entity_id = str(uuid.uuid4())
    await _submit(world, _intake(entity_id))
    await _submit(world, _update(entity_id, "late", base=2, trunk=1, branch="lost"))
    assert (await _entity(world, entity_id))["currentVersion"]["version"] == 1  # type: ignore[index]
    later = datetime.now(UTC) + timedelta(days=6)
    forced = await world.runtime.write(lambda c: force_backlog(c, older_than=later))
    assert forced == 1
    entity = await _entity(world, entity_id)
    assert entity["currentVersion"]["version"] == 2  # type: ignore[index]
    assert entity["currentVersion"]["data"]["status"] == "late"  # type: ignore[index]


LOOKUP = """
| survey |
| | type | name | label |
| | select_one_from_file returnees.csv | who | Who |
| settings |
| | form_id |
| | lookup |
"""


async def test_a_form_waiting_for_a_list_gets_it_when_the_list_is_published(world: World) -> None:
    await _publish(world, LOOKUP)
    await _assign(world, "lookup")
    before = await world.client.get(f"{world.key_base}/forms/lookup/manifest")
    assert b"returnees.csv" not in before.content  # nothing to download yet
    await _publish(world, INTAKE)
    after = await world.client.get(f"{world.key_base}/forms/lookup/manifest")
    assert b'type="entityList"' in after.content


async def test_a_forced_update_of_an_entity_that_never_came_is_recorded_not_dropped(
    world: World,
) -> None:
    await _publish(world, FOLLOW_UP)
    await _assign(world, "follow_up")
    unknown = str(uuid.uuid4())
    await _submit(world, _update(unknown, "late", base=1, trunk=None, branch="b9"))
    later = datetime.now(UTC) + timedelta(days=6)
    assert await world.runtime.write(lambda c: force_backlog(c, older_than=later)) == 1
    async with world.runtime.read() as db:
        errors = (await db.scalars(select(Audit).where(Audit.action == "entity.error"))).all()
    assert [json.loads(a.details or "{}")["problem"]["problemCode"] for a in errors] == [400.2]
