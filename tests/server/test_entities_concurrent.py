"""Two submissions creating one entity at the same moment: one entity, both submissions kept.

On PostgreSQL the two transactions really overlap: a third connection holds a
SHARE lock on `entities`, which lets both pass their "is this uuid taken?"
check and stops both at their INSERT; released, one INSERT wins and the other
breaks the unique constraint (or, as written, inserts nothing on conflict), which
must cost the loser only its entity (an `entity.error` 409.3), never its
submission.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import select, text

from server.db.models import Audit
from tests.server.conftest import World
from tests.server.test_entities import INTAKE, _assign, _intake, _publish


async def _post(world: World, xml: str) -> int:
    response = await world.client.post(
        f"{world.key_base}/submission",
        files={"xml_submission_file": ("s.xml", xml.encode(), "text/xml")},
        headers={"X-OpenRosa-Version": "1.0"},
    )
    return response.status_code


async def _outcome(world: World, entity_id: str) -> tuple[int, list[float], list[str]]:
    """Submissions stored, entity.error codes, and the labels of `entity_id` in the list."""
    submissions = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/intake/submissions", headers=world.admin_headers
    )
    async with world.runtime.read() as db:
        errors = (await db.scalars(select(Audit).where(Audit.action == "entity.error"))).all()
    codes = [json.loads(a.details or "{}")["problem"]["problemCode"] for a in errors]
    entities = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities",
        headers=world.admin_headers,
    )
    labels = [e["currentVersion"]["label"] for e in entities.json() if e["uuid"] == entity_id]
    return len(submissions.json()), codes, labels


async def _waiting_inserts(world: World) -> int:
    async with world.runtime.engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks "
                "WHERE relation = 'entities'::regclass AND NOT granted"
            )
        )
    return int(waiting or 0)


@pytest.mark.postgres_only  # SQLite has one writer: its transactions never overlap
async def test_two_overlapping_creates_of_one_uuid_keep_both_submissions(world: World) -> None:
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    entity_id = str(uuid.uuid4())

    async with world.runtime.engine.connect() as gate:
        locked = await gate.begin()
        await gate.execute(text("LOCK TABLE entities IN SHARE MODE"))
        both = asyncio.gather(
            _post(world, _intake(entity_id, first="Ana", label="first")),
            _post(world, _intake(entity_id, first="Bea", label="second")),
        )
        for _ in range(200):  # both past their check, both at their INSERT
            if await _waiting_inserts(world) >= 2:
                break
            await asyncio.sleep(0.05)
        assert await _waiting_inserts(world) == 2
        await locked.commit()
        statuses = await both

    assert list(statuses) == [201, 201]
    stored, codes, labels = await _outcome(world, entity_id)
    assert stored == 2
    assert codes == [409.3]
    assert labels in (["first"], ["second"])


async def test_many_simultaneous_creates_of_one_uuid_make_one_entity(world: World) -> None:
    """Without a gate, on both databases: whoever comes first, the outcome is the same."""
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    entity_id = str(uuid.uuid4())

    statuses = await asyncio.gather(
        *(_post(world, _intake(entity_id, label=f"copy {n}")) for n in range(6))
    )

    assert statuses == [201] * 6
    stored, codes, labels = await _outcome(world, entity_id)
    assert stored == 6
    assert codes == [409.3] * 5
    assert len(labels) == 1
