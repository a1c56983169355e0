"""Entity lists as Collect downloads them: a CSV, its hash, and the integrity check.

The hash must change whenever the CSV would, yet be cheap for 100,000 entities
on every manifest request. It is an md5 of the live entities' count and the sums
of their ids and current version ids, read from one covering index: an update
makes a new, larger version id, a delete or restore changes the count and the
id sum, and a new property changes the header (its names are hashed too).
Nothing is written on each change, so no counter row is locked by ingest.

The CSV itself is mostly spliced, not rendered: each create and update stores
the entity's line (`stored_line`) with the key of the property list it was
rendered for, and a download sends stored lines whose key is the list's
properties or a prefix of them (a property added since is an empty column for
an entity written before it existed). Lines of entities written before that,
and every line a masked caller gets, are rendered from the entity's data.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, bindparam, case, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from forms.personal import pseudonym
from server.db.models import Dataset, DatasetProperty, EntityRow
from server.runtime import Runtime

_BATCH = 10_000
_decode_data = msgspec.json.Decoder(dict[str, str]).decode


def _live(dataset_id: int, owner: int | None) -> list[Any]:
    conditions: list[Any] = [EntityRow.dataset_id == dataset_id, EntityRow.deleted_at.is_(None)]
    if owner is not None:
        conditions.append(EntityRow.creator_id == owner)
    return conditions


async def published_properties(db: AsyncSession, dataset_id: int) -> list[str]:
    return list(
        await db.scalars(
            select(DatasetProperty.name)
            .where(
                DatasetProperty.dataset_id == dataset_id,
                DatasetProperty.published_at.is_not(None),
            )
            .order_by(DatasetProperty.id)
        )
    )


def owner_filter(dataset: Dataset, actor_id: int | None, sees_all: bool) -> int | None:
    """The creator an ownerOnly list is narrowed to for a form user, else None (all)."""
    if not dataset.owner_only or sees_all:
        return None
    return actor_id if actor_id is not None else -1


async def list_hash(
    db: AsyncSession, dataset_id: int, owner: int | None, *, masked: bool = False
) -> str:
    row = (
        await db.execute(
            select(
                func.count(),
                func.coalesce(func.sum(EntityRow.id), 0),
                func.coalesce(func.sum(EntityRow.current_def_id), 0),
            ).where(*_live(dataset_id, owner))
        )
    ).one()
    header = ",".join(await published_properties(db, dataset_id))
    # A caller who gets pseudonyms gets other bytes, so another ETag.
    fingerprint = f"{dataset_id}:{owner}:{row[0]}:{row[1]}:{row[2]}:{header}:{masked}"
    return hashlib.md5(fingerprint.encode(), usedforsecurity=False).hexdigest()


def _line(values: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()


def properties_key(properties: Sequence[str]) -> str:
    """The key a stored line carries: which properties, in which order, it holds."""
    joined = "\n".join(properties).encode()
    return hashlib.md5(joined, usedforsecurity=False).hexdigest()[:16]


def _pads(properties: Sequence[str]) -> dict[str, str]:
    """For each key a stored line may carry and still be valid, what ends its line:
    an empty column for every property added after it was rendered, then the newline."""
    return {
        properties_key(properties[:held]): "," * (len(properties) - held) + "\n"
        for held in range(len(properties) + 1)
    }


# Built once: every entity write runs it, and building a statement costs more
# than running it.
_PUBLISHED_NAMES = (
    select(DatasetProperty.name)
    .where(
        DatasetProperty.dataset_id == bindparam("dataset_id"),
        DatasetProperty.published_at.is_not(None),
    )
    .order_by(DatasetProperty.id)
)


def stored_line(
    connection: Connection,
    dataset_id: int,
    entity_uuid: str,
    label: str,
    version: int,
    data: Mapping[str, str],
) -> dict[str, str | None]:
    """`csv_key` and `csv_line` for an entity's row, written beside its label and data.

    No line (rendered at download instead) when the data holds a property not yet
    published: columns added later would not be empty for this entity. Nor when a
    value holds a NUL, which PostgreSQL text cannot store.
    """
    properties = list(connection.scalars(_PUBLISHED_NAMES, {"dataset_id": dataset_id}))
    return render_stored_line(properties, entity_uuid, label, version, data)


def render_stored_line(
    properties: Sequence[str],
    entity_uuid: str,
    label: str,
    version: int,
    data: Mapping[str, str],
) -> dict[str, str | None]:
    """`stored_line` for a known list of published properties."""
    if not set(data) <= set(properties):
        return {"csv_key": None, "csv_line": None}
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        (entity_uuid, label, version, *(data.get(name, "") for name in properties))
    )
    line = buffer.getvalue()[:-1]
    if "\x00" in line:
        return {"csv_key": None, "csv_line": None}
    return {"csv_key": properties_key(properties), "csv_line": line}


async def stream_csv(
    rt: Runtime,
    dataset_id: int,
    properties: list[str],
    owner: int | None,
    where: Sequence[ColumnElement[bool]] = (),
    masked: Masked | None = None,
) -> AsyncIterator[bytes]:
    """`name,label,__version,<properties>` row by row, paged by id (flat memory).

    With `masked` (personal property names and the project's key), those
    properties are pseudonymised, every line rendered from the entity's data;
    None (no personal properties, or a caller who may read them) joins the
    stored lines.

    Each page is one synchronous unit of work (Runtime.query: a reader thread
    on SQLite), on Core rows: the ORM's row objects cost more than the whole CSV.
    """
    yield _line(["name", "label", "__version", *properties])
    conditions = [*_live(dataset_id, owner), *where]
    page = (
        partial(_joined_page, conditions, properties, _pads(properties))
        if masked is None
        else partial(_csv_page, conditions, properties, masked=masked)
    )
    after: int | None = 0
    while after is not None:
        after, chunk = await rt.query(partial(page, after))
        if chunk:
            yield chunk


# Personal property names and the key of their pseudonyms.
Masked = tuple[frozenset[str], bytes]

_PAGE_COLUMNS = (EntityRow.id, EntityRow.uuid, EntityRow.label, EntityRow.version, EntityRow.data)


def _joined_page(
    conditions: list[Any],
    properties: list[str],
    pads: dict[str, str],
    after: int,
    connection: Connection,
) -> tuple[int | None, bytes]:
    """The next page after entity id `after`, joined by the database from stored
    lines, and the last id on it; `_spliced_page` if any line on it is stale.

    One result row per page: fetching 10,000 rows into Python cost more than
    the whole page's text.
    """
    line = case(
        {key: EntityRow.csv_line + pad for key, pad in pads.items()}, value=EntityRow.csv_key
    ).label("line")
    page = (
        select(EntityRow.id, line)
        .where(*conditions, EntityRow.id > after)
        .order_by(EntityRow.id)
        .limit(_BATCH)
        .subquery("page")
    )
    joined: ColumnElement[str | None]
    if connection.dialect.name == "postgresql":
        joined = func.string_agg(page.c.line, aggregate_order_by(literal(""), page.c.id))
    else:
        # SQLite (3.40) has no ORDER BY inside an aggregate; group_concat takes
        # the rows in the order the subquery yields them, which is its ORDER BY.
        joined = func.group_concat(page.c.line, literal(""))
    last, count, stored, text = connection.execute(
        select(func.max(page.c.id), func.count(), func.count(page.c.line), joined)
    ).one()
    if last is None:
        return None, b""
    if stored < count:
        return _spliced_page(conditions, properties, pads, after, connection)
    return last, text.encode()


def _spliced_page(
    conditions: list[Any],
    properties: list[str],
    pads: dict[str, str],
    after: int,
    connection: Connection,
) -> tuple[int | None, bytes]:
    """The next page after entity id `after` from stored lines, and the last id on it.

    Entities whose line is missing or was rendered for other properties are
    rendered from their data (one more query, for those only).
    """
    rows = connection.execute(
        select(EntityRow.id, EntityRow.csv_key, EntityRow.csv_line)
        .where(*conditions, EntityRow.id > after)
        .order_by(EntityRow.id)
        .limit(_BATCH)
    ).all()
    if not rows:
        return None, b""
    parts: list[str] = []
    stale: dict[int, int] = {}  # entity id -> where its line goes in parts
    for entity_id, key, line in rows:
        pad = pads.get(key) if line is not None else None
        if pad is None:
            stale[entity_id] = len(parts)
            parts.append("")
        else:
            parts.append(line)
            parts.append(pad)
    if stale:
        for entity_id, line in _rendered_lines(connection, list(stale), properties):
            parts[stale[entity_id]] = line
    last: int = rows[-1][0]
    return last, "".join(parts).encode()


def _rendered_lines(
    connection: Connection, ids: list[int], properties: list[str]
) -> list[tuple[int, str]]:
    rows = connection.execute(select(*_PAGE_COLUMNS).where(EntityRow.id.in_(ids))).all()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    blanks = [""] * len(properties)
    lines = []
    for entity_id, uuid, label, version, data in rows:
        writer.writerow((uuid, label, version, *map(_decode_data(data).get, properties, blanks)))
        lines.append((entity_id, buffer.getvalue()))
        buffer.seek(0)
        buffer.truncate()
    return lines


def _csv_page(
    conditions: list[Any],
    properties: list[str],
    after: int,
    connection: Connection,
    *,
    masked: Masked | None,
) -> tuple[int | None, bytes]:
    """The CSV lines of the next page after entity id `after`, rendered from each
    entity's data, and the last id on it."""
    rows = connection.execute(
        select(*_PAGE_COLUMNS)
        .where(*conditions, EntityRow.id > after)
        .order_by(EntityRow.id)
        .limit(_BATCH)
    ).all()
    if not rows:
        return None, b""
    buffer = io.StringIO()
    blanks = [""] * len(properties)
    writer = csv.writer(buffer, lineterminator="\n")
    if masked is None:
        writer.writerows(
            (uuid, label, version, *map(_decode_data(data).get, properties, blanks))
            for _, uuid, label, version, data in rows
        )
    else:
        personal, key = masked
        hidden = [name in personal for name in properties]
        for _, uuid, label, version, data in rows:
            values = map(_decode_data(data).get, properties, blanks)
            writer.writerow(
                (
                    uuid,
                    label,
                    version,
                    *(
                        pseudonym(key, v) if h and v else v
                        for h, v in zip(hidden, values, strict=True)
                    ),
                )
            )
    last: int = rows[-1][0]
    return last, buffer.getvalue().encode()


async def integrity(db: AsyncSession, dataset_id: int, uuids: list[str]) -> list[tuple[str, bool]]:
    """(uuid, deleted) for the asked ids this list holds; unknown ids are left out."""
    # Only what could be an entity's id: the rest names nothing (and PostgreSQL
    # text cannot hold a NUL).
    uuids = [u for u in uuids if len(u) <= 36 and "\x00" not in u]
    if not uuids:
        return []
    rows = await db.execute(
        select(EntityRow.uuid, EntityRow.deleted_at).where(
            EntityRow.dataset_id == dataset_id, EntityRow.uuid.in_(uuids[:10000])
        )
    )
    return [(uuid, deleted_at is not None) for uuid, deleted_at in rows]
