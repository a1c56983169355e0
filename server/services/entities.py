"""Writing entities: create, update (with Central's conflict rules), delete, restore.

Synchronous Core statements on a Connection, so that ingest runs them in the
submission's own unit of work (Runtime.write) and the API through
`AsyncSession.run_sync`. Reads for the API live in server.services.entity_reads.
"""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from forms.entities import EntityAction, EntityProblem
from server import problems
from server.db.models import Dataset, DatasetProperty, EntityDef, EntityRow
from server.services.audit import now, record_on
from server.services.entity_lists import stored_line

_encode = msgspec.json.Encoder().encode
_decode_data = msgspec.json.Decoder(dict[str, str]).decode
_decode_list = msgspec.json.Decoder(list[str]).decode


def encode_data(data: dict[str, str]) -> bytes:
    return _encode(data)


def decode_data(data: bytes) -> dict[str, str]:
    return _decode_data(data)


@dataclass(frozen=True, slots=True)
class Author:
    """Who makes a change, and from where (kept on every version)."""

    actor_id: int | None
    user_agent: str | None = None
    submission_def_id: int | None = None
    source: dict[str, Any] | None = None


def dataset_by_name(connection: Connection, project_id: int, name: str) -> Dataset | None:
    row = connection.execute(
        select(Dataset.__table__).where(Dataset.project_id == project_id, Dataset.name == name)
    ).first()
    return Dataset(**row._asdict()) if row is not None else None


def property_names(connection: Connection, dataset_id: int) -> list[str]:
    """Published properties in the order they were added (the CSV's column order)."""
    return list(
        connection.scalars(
            select(DatasetProperty.name)
            .where(
                DatasetProperty.dataset_id == dataset_id,
                DatasetProperty.published_at.is_not(None),
            )
            .order_by(DatasetProperty.id)
        )
    )


def check_properties(connection: Connection, dataset_id: int, data: dict[str, str]) -> None:
    unknown = sorted(set(data) - set(property_names(connection, dataset_id)))
    if unknown:
        raise problems.Problem(
            400.28,
            "The entity is invalid. You specified the dataset property "
            f"[{', '.join(unknown)}] which does not exist.",
        )


def check_uuid(value: str) -> str:
    try:
        return str(uuid_module.UUID(value.removeprefix("uuid:")))
    except ValueError as error:
        raise problems.Problem(
            400.11,
            f"Invalid input data type: expected (uuid) to be (valid UUID), got '{value}'.",
        ) from error


def create_entity(
    connection: Connection,
    dataset: Dataset,
    *,
    entity_uuid: str,
    label: str,
    data: dict[str, str],
    author: Author,
) -> int:
    """A new entity at version 1; 409.3 if its uuid is taken in this list."""
    if not label:
        raise problems.missing_parameter("label")
    taken = connection.scalar(
        select(EntityRow.id).where(
            EntityRow.dataset_id == dataset.id, EntityRow.uuid == entity_uuid
        )
    )
    if taken is not None:
        raise _uuid_taken(entity_uuid)
    created = now()
    encoded = encode_data(data)
    entity_id = _insert_entity(
        connection,
        {
            "dataset_id": dataset.id,
            "uuid": entity_uuid,
            "label": label,
            "version": 1,
            "data": encoded,
            "current_def_id": 0,
            "creator_id": author.actor_id,
            "created_at": created,
            **stored_line(connection, dataset.id, entity_uuid, label, 1, data),
        },
    )
    def_id = _insert_def(
        connection,
        entity_id,
        version=1,
        label=label,
        data=encoded,
        received=encoded,
        author=author,
        created=created,
    )
    connection.execute(
        update(EntityRow).where(EntityRow.id == entity_id).values(current_def_id=def_id)
    )
    record_on(
        connection,
        author.actor_id,
        "entity.create",
        "entity",
        entity_id,
        {"uuid": entity_uuid, "dataset": dataset.name, **_source_details(author)},
    )
    return entity_id


def _uuid_taken(entity_uuid: str) -> problems.Problem:
    return problems.Problem(
        409.3, f"A resource already exists with uuid value(s) of {entity_uuid}."
    )


def _insert_entity(connection: Connection, values: dict[str, Any]) -> int:
    """Insert the entity row; 409.3 if another transaction took its uuid meanwhile.

    Two submissions creating one uuid at once both pass the check above on
    PostgreSQL; the second INSERT waits for the first to commit and would then
    break the unique constraint, failing the whole transaction, the submission
    with it. `ON CONFLICT DO NOTHING` makes it insert nothing instead: the
    caller's transaction goes on and records the entity.error, as a savepoint
    would, without a savepoint's two extra round trips (and pysqlite's
    savepoints would end SQLite's outer transaction early).
    """
    dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(EntityRow)
        .values(values)
        .on_conflict_do_nothing(index_elements=["dataset_id", "uuid"])
        .returning(EntityRow.id)
    )
    entity_id = connection.scalar(statement)
    if entity_id is None:
        raise _uuid_taken(values["uuid"])
    return entity_id


@dataclass(frozen=True, slots=True)
class Change:
    """An update as asked: new label and properties, and what it was based on."""

    label: str | None
    data: dict[str, str]
    base_version: int | None = None  # None: forced (no conflict check)
    trunk_version: int | None = None
    branch_id: str | None = None
    branch_base_version: int | None = None
    resolve: bool = False


def find_entity(
    connection: Connection, dataset_id: int, entity_uuid: str, *, deleted: bool = False
) -> EntityRow | None:
    query = select(EntityRow.__table__).where(
        EntityRow.dataset_id == dataset_id, EntityRow.uuid == entity_uuid
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None or (row.deleted_at is not None) != deleted:
        return None
    return EntityRow(**row._asdict())


def update_entity(
    connection: Connection, dataset: Dataset, entity: EntityRow, change: Change, author: Author
) -> int:
    """A new version; with a stale base version the entity records a conflict.

    Central's rule: an update based on an older version still applies (last
    write wins, property by property), and the entity is marked `soft` in
    conflict, or `hard` when a property (or the label) this update sets was
    also changed, to another value, since its base version.
    """
    if change.base_version is not None and change.base_version > entity.version:
        raise problems.Problem(
            409.15,
            f"The base version ({change.base_version}) is newer than the entity's "
            f"current version ({entity.version}).",
        )
    current = decode_data(entity.data)
    received = dict(change.data)
    conflict = entity.conflict
    conflicting: list[str] | None = None
    if change.base_version is not None and change.base_version != entity.version:
        conflicting = _conflicting(connection, entity, change)
        level = "hard" if conflicting else "soft"
        conflict = "hard" if "hard" in (conflict, level) else level
    if change.resolve:
        conflict = None
    label = change.label or entity.label
    merged = current | received
    created = now()
    version = entity.version + 1
    connection.execute(_NOT_CURRENT, {"b_entity_id": entity.id})
    def_id = _insert_def(
        connection,
        entity.id,
        version=version,
        label=label,
        data=encode_data(merged),
        received=encode_data(received | ({"label": change.label} if change.label else {})),
        author=author,
        created=created,
        change=change,
        conflicting=conflicting,
    )
    connection.execute(
        _SET_VERSION,
        dict(
            b_id=entity.id,
            label=label,
            version=version,
            data=encode_data(merged),
            current_def_id=def_id,
            conflict=conflict,
            updated_at=created,
            **stored_line(connection, dataset.id, entity.uuid, label, version, merged),
        ),
    )
    record_on(
        connection,
        author.actor_id,
        "entity.update.version",
        "entity",
        entity.id,
        {"uuid": entity.uuid, "dataset": dataset.name, **_source_details(author)},
    )
    return def_id


def resolve_conflict(
    connection: Connection, dataset: Dataset, entity: EntityRow, author: Author
) -> None:
    if entity.conflict is None:
        raise problems.Problem(400.32, "The entity has no conflict to resolve.")
    connection.execute(
        update(EntityRow).where(EntityRow.id == entity.id).values(conflict=None, updated_at=now())
    )
    record_on(
        connection,
        author.actor_id,
        "entity.update.resolve",
        "entity",
        entity.id,
        {"uuid": entity.uuid, "dataset": dataset.name},
    )


def set_deleted(
    connection: Connection, dataset: Dataset, entity: EntityRow, *, deleted: bool, author: Author
) -> None:
    at = now()
    connection.execute(
        update(EntityRow)
        .where(EntityRow.id == entity.id)
        .values(deleted_at=at if deleted else None, updated_at=at)
    )
    record_on(
        connection,
        author.actor_id,
        "entity.delete" if deleted else "entity.restore",
        "entity",
        entity.id,
        {"uuid": entity.uuid, "dataset": dataset.name},
    )


def _conflicting(connection: Connection, entity: EntityRow, change: Change) -> list[str]:
    """Properties (and `label`) this change sets that others changed since its base."""
    since = connection.execute(
        select(EntityDef.data_received).where(
            EntityDef.entity_id == entity.id, EntityDef.version > (change.base_version or 0)
        )
    ).scalars()
    changed: set[str] = set()
    for received in since:
        changed |= set(decode_data(received))
    current = decode_data(entity.data) | {"label": entity.label}
    asked = change.data | ({"label": change.label} if change.label else {})
    return sorted(k for k, v in asked.items() if k in changed and current.get(k) != v)


# Built once: an update runs these, and building a statement costs more than running it.
_DEFS = cast(Table, EntityDef.__table__)
_INSERT_DEF = insert(_DEFS).returning(EntityDef.id)
_NOT_CURRENT = (
    update(_DEFS).where(EntityDef.entity_id == bindparam("b_entity_id")).values(current=False)
)
_SET_VERSION = update(cast(Table, EntityRow.__table__)).where(EntityRow.id == bindparam("b_id"))


def _insert_def(
    connection: Connection,
    entity_id: int,
    *,
    version: int,
    label: str,
    data: bytes,
    received: bytes,
    author: Author,
    created: Any,
    change: Change | None = None,
    conflicting: list[str] | None = None,
) -> int:
    def_id = connection.scalar(
        _INSERT_DEF,
        dict(
            entity_id=entity_id,
            version=version,
            label=label,
            data=data,
            data_received=received,
            base_version=change.base_version if change else None,
            trunk_version=change.trunk_version if change else None,
            branch_id=change.branch_id if change else None,
            branch_base_version=change.branch_base_version if change else None,
            conflicting_properties=_encode(conflicting).decode() if conflicting else None,
            source_submission_def_id=author.submission_def_id,
            source=_encode(author.source).decode() if author.source else None,
            creator_id=author.actor_id,
            user_agent=author.user_agent,
            created_at=created,
            current=True,
        ),
    )
    assert def_id is not None
    return def_id


def _source_details(author: Author) -> dict[str, Any]:
    if author.submission_def_id is not None:
        return {"submissionDefId": author.submission_def_id}
    return {"source": author.source} if author.source else {}


def decode_conflicting(text: str | None) -> list[str] | None:
    return _decode_list(text) if text else None


__all__ = [
    "Author",
    "Change",
    "EntityAction",
    "EntityProblem",
    "check_properties",
    "check_uuid",
    "create_entity",
    "dataset_by_name",
    "decode_conflicting",
    "find_entity",
    "property_names",
    "resolve_conflict",
    "set_deleted",
    "update_entity",
]
