"""The migrations build the schema the models describe, and seed Central's roles."""

from __future__ import annotations

import json

from sqlalchemy import select

from server.db.models import Role
from server.roles import ROLES
from server.runtime import Runtime


async def test_roles_seeded_by_the_first_migration_match_the_code(runtime: Runtime) -> None:
    async with runtime.read() as db:
        rows = (await db.scalars(select(Role).order_by(Role.id))).all()
    assert [(r.id, r.system, r.name) for r in rows] == [(r.id, r.system, r.name) for r in ROLES]
    for row, spec in zip(rows, ROLES, strict=True):
        assert set(json.loads(row.verbs)) == spec.verbs


async def test_migrated_tables_match_the_models(runtime: Runtime) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from server.db.models import Base

    def differences(connection: object) -> list[object]:
        context = MigrationContext.configure(connection)  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with runtime.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


def test_the_newest_revision_read_from_the_files_is_alembics_head() -> None:
    # migrate() skips Alembic when the database is at these revisions.
    from alembic.script import ScriptDirectory

    from server.db.migrate import _heads, alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert _heads() == frozenset(script.get_heads())


async def test_migrating_a_database_at_the_newest_revision_leaves_it_there(
    runtime: Runtime,
) -> None:
    from sqlalchemy import text

    from server.db.migrate import _at_head, _heads, migrate

    assert await _at_head(runtime.engine)
    await migrate(runtime.engine)  # nothing to do, and nothing done
    async with runtime.engine.connect() as connection:
        rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
        current: set[str] = {row[0] for row in rows}
    heads = _heads()
    assert heads is not None
    assert current == heads
