"""Submission edits (deprecatedID) and the entity list, by Central's rule: an edit fills
the list only where no version of the submission did."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from server.db.models import Audit
from tests.server.conftest import World
from tests.server.test_entities import INTAKE, _assign, _entity, _publish, _submit


def _intake(entity_id: str, label: str, *, instance: str, deprecated: str | None = None) -> str:
    edit = f"<deprecatedID>{deprecated}</deprecatedID>" if deprecated else ""
    return (
        '<data id="intake" version="1"><first_name>Ana</first_name><town>Tirana</town>'
        f"<status>{label or 'none'}</status><meta><instanceID>{instance}</instanceID>{edit}"
        f'<entity dataset="returnees" create="1" id="{entity_id}"><label>{label}</label>'
        "</entity></meta></data>"
    )


def _instance() -> str:
    return f"uuid:{uuid.uuid4()}"


async def _errors(world: World) -> list[float]:
    async with world.runtime.read() as db:
        errors = (await db.scalars(select(Audit).where(Audit.action == "entity.error"))).all()
    return [json.loads(a.details or "{}")["problem"]["problemCode"] for a in errors]


async def _uuids(world: World) -> list[str]:
    listed = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities",
        headers=world.admin_headers,
    )
    return [e["uuid"] for e in listed.json()]


async def test_an_edit_that_fixes_a_failed_entity_creates_it(world: World) -> None:
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    entity_id = str(uuid.uuid4())
    first = _instance()
    await _submit(world, _intake(entity_id, "", instance=first))  # no label: refused
    assert await _errors(world) == [400.2]
    assert await _uuids(world) == []

    await _submit(world, _intake(entity_id, "Ana T", instance=_instance(), deprecated=first))

    entity = await _entity(world, entity_id)
    assert entity["currentVersion"]["label"] == "Ana T"  # type: ignore[index]
    assert entity["currentVersion"]["version"] == 1  # type: ignore[index]
    assert entity["creatorId"] == world.app_user_id
    assert await _errors(world) == [400.2]  # nothing new refused


async def test_an_edit_of_a_submission_that_made_its_entity_leaves_the_entity_alone(
    world: World,
) -> None:
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    entity_id = str(uuid.uuid4())
    first = _instance()
    await _submit(world, _intake(entity_id, "Ana T", instance=first))
    second = _instance()
    await _submit(world, _intake(entity_id, "Ana Tirana", instance=second, deprecated=first))
    # Nor does an edit of the edit.
    await _submit(world, _intake(entity_id, "A. T.", instance=_instance(), deprecated=second))

    entity = await _entity(world, entity_id)
    assert entity["currentVersion"]["label"] == "Ana T"  # type: ignore[index]
    assert entity["currentVersion"]["version"] == 1  # type: ignore[index]
    assert await _errors(world) == []  # neither a duplicate nor an error
    listed = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/intake/submissions", headers=world.admin_headers
    )
    assert [s["reviewState"] for s in listed.json()] == ["edited"]


async def test_an_edit_after_a_refused_approval_is_tried_again_when_approved(
    world: World,
) -> None:
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    base = f"/v1/projects/{world.project_id}"
    patched = await world.client.patch(
        f"{base}/datasets/returnees", json={"approvalRequired": True}, headers=world.admin_headers
    )
    assert patched.status_code == 200
    entity_id = str(uuid.uuid4())
    first = _instance()
    await _submit(world, _intake(entity_id, "", instance=first))
    approve = {"reviewState": "approved"}
    url = f"{base}/forms/intake/submissions/{first}"
    assert (await world.client.patch(url, json=approve, headers=world.admin_headers)).is_success
    assert await _errors(world) == [400.2]
    # Approving the same version again does not record the same refusal twice.
    assert (await world.client.patch(url, json=approve, headers=world.admin_headers)).is_success
    assert await _errors(world) == [400.2]

    # The edit itself waits for approval, like any submission to this list.
    await _submit(world, _intake(entity_id, "Ana T", instance=_instance(), deprecated=first))
    assert await _uuids(world) == []
    assert (await world.client.patch(url, json=approve, headers=world.admin_headers)).is_success

    entity = await _entity(world, entity_id)
    assert entity["currentVersion"]["label"] == "Ana T"  # type: ignore[index]


async def test_an_edit_of_an_unknown_version_leaves_the_list_untouched(world: World) -> None:
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    entity_id = str(uuid.uuid4())
    first = _instance()
    await _submit(world, _intake(entity_id, "", instance=first))
    assert await _uuids(world) == []
    # An edit of a version the server never had is refused outright.
    await _submit(
        world, _intake(entity_id, "Ana T", instance=_instance(), deprecated=_instance()), 404
    )
    assert await _uuids(world) == []
