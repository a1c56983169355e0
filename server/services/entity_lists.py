"""Entity lists as Collect downloads them: a CSV, its hash, and the integrity check.

The hash must change whenever the CSV would, yet be cheap for 100,000 entities
on every manifest request. It is an md5 of the live entities' count and the sums
of their ids and current version ids, read from one covering index: an update
makes a new, larger version id, a delete or restore changes the count and the
id sum, and a new property changes the header (its names are hashed too).
Nothing is written on each change, so no counter row is locked by ingest.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, func, select
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
    properties are pseudonymised; None (managers) keeps the fast path.

    Each page is read and written to CSV text in one synchronous unit of work
    (Runtime.query: a reader thread on SQLite), on Core rows: the ORM's row
    objects cost more than the whole CSV.
    """
    yield _line(["name", "label", "__version", *properties])
    conditions = [*_live(dataset_id, owner), *where]
    after: int | None = 0
    while after is not None:
        after, chunk = await rt.query(partial(_csv_page, conditions, properties, after, masked))
        if chunk:
            yield chunk


# Personal property names and the key of their pseudonyms.
Masked = tuple[frozenset[str], bytes]

_PAGE_COLUMNS = (EntityRow.id, EntityRow.uuid, EntityRow.label, EntityRow.version, EntityRow.data)


def _csv_page(
    conditions: list[Any],
    properties: list[str],
    after: int,
    masked: Masked | None,
    connection: Connection,
) -> tuple[int | None, bytes]:
    """The CSV lines of the next page after entity id `after`, and the last id on it."""
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
