"""Turning approvalRequired off with submissions waiting: `PATCH .../datasets/{name}?convert=`."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from server.db.models import Audit
from tests.server.conftest import World
from tests.server.test_entities import INTAKE, _assign, _intake, _publish, _submit


def _instance(xml: str) -> str:
    return xml.split("<instanceID>")[1].split("</instanceID>")[0]


async def _waiting_list(world: World) -> dict[str, str]:
    """A list that waits for approval, and five intakes sent to it:
    one approved, one rejected, one marked hasIssues, one plain, one with a bad id."""
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    patched = await world.client.patch(
        f"/v1/projects/{world.project_id}/datasets/returnees",
        json={"approvalRequired": True},
        headers=world.admin_headers,
    )
    assert patched.status_code == 200, patched.text
    made: dict[str, str] = {}
    for name in ("approved", "rejected", "hasIssues", "received"):
        entity_id = str(uuid.uuid4())
        xml = _intake(entity_id, label=name)
        await _submit(world, xml)
        made[name] = entity_id
        if name != "received":
            reviewed = await world.client.patch(
                f"/v1/projects/{world.project_id}/forms/intake/submissions/{_instance(xml)}",
                json={"reviewState": name},
                headers=world.admin_headers,
            )
            assert reviewed.status_code == 200, reviewed.text
    await _submit(world, _intake("not-a-uuid", label="bad id"))
    return made


async def _labels(world: World) -> list[str]:
    listed = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities",
        headers=world.admin_headers,
    )
    return sorted(e["currentVersion"]["label"] for e in listed.json())


async def _error_codes(world: World) -> list[float]:
    async with world.runtime.read() as db:
        errors = (await db.scalars(select(Audit).where(Audit.action == "entity.error"))).all()
    return [json.loads(a.details or "{}")["problem"]["problemCode"] for a in errors]


async def test_turning_approval_off_with_pending_submissions_asks_what_to_do(
    world: World,
) -> None:
    await _waiting_list(world)
    url = f"/v1/projects/{world.project_id}/datasets/returnees"

    asked = await world.client.patch(
        url, json={"approvalRequired": False}, headers=world.admin_headers
    )

    assert asked.status_code == 400
    assert asked.json()["code"] == 400.29
    # hasIssues, received and the bad id wait; approved and rejected were decided.
    assert "There are 3 pending submissions" in asked.json()["message"]
    still = await world.client.get(url, headers=world.admin_headers)
    assert still.json()["approvalRequired"] is True
    wrong = await world.client.patch(
        f"{url}?convert=maybe", json={"approvalRequired": False}, headers=world.admin_headers
    )
    assert wrong.json()["code"] == 400.8


async def test_convert_true_makes_the_entities_of_pending_submissions(world: World) -> None:
    made = await _waiting_list(world)
    url = f"/v1/projects/{world.project_id}/datasets/returnees"

    converted = await world.client.patch(
        f"{url}?convert=true", json={"approvalRequired": False}, headers=world.admin_headers
    )

    assert converted.status_code == 200, converted.text
    assert converted.json()["approvalRequired"] is False
    assert await _labels(world) == ["approved", "hasIssues", "received"]
    assert await _error_codes(world) == [400.11]  # the bad id, recorded on its submission
    entity = await world.client.get(
        f"{url}/entities/{made['received']}", headers=world.admin_headers
    )
    assert entity.json()["creatorId"] == world.app_user_id  # the submitter's, as at ingest
    # Nothing is pending any more, so the question is not asked again.
    again = await world.client.patch(
        url, json={"approvalRequired": False}, headers=world.admin_headers
    )
    assert again.status_code == 200, again.text
    async with world.runtime.read() as db:
        updates = (
            await db.scalars(select(Audit.details).where(Audit.action == "dataset.update"))
        ).all()
    assert {"approvalRequired": False, "autoConvert": True} in [
        json.loads(d or "{}") for d in updates
    ]


async def test_convert_false_leaves_pending_submissions_as_they_are(world: World) -> None:
    await _waiting_list(world)
    url = f"/v1/projects/{world.project_id}/datasets/returnees"

    left = await world.client.patch(
        f"{url}?convert=False", json={"approvalRequired": False}, headers=world.admin_headers
    )

    assert left.status_code == 200, left.text
    assert left.json()["approvalRequired"] is False
    assert await _labels(world) == ["approved"]
    assert await _error_codes(world) == []
    # New submissions now fill the list at once.
    entity_id = str(uuid.uuid4())
    await _submit(world, _intake(entity_id, label="new"))
    assert await _labels(world) == ["approved", "new"]


async def test_a_list_with_nothing_pending_needs_no_convert(world: World) -> None:
    await _publish(world, INTAKE)
    url = f"/v1/projects/{world.project_id}/datasets/returnees"
    on = await world.client.patch(url, json={"approvalRequired": True}, headers=world.admin_headers)
    assert on.status_code == 200
    off = await world.client.patch(
        url, json={"approvalRequired": False}, headers=world.admin_headers
    )
    assert off.status_code == 200, off.text
    assert off.json()["approvalRequired"] is False
