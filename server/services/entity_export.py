"""An entity list as the API downloads it: `GET .../datasets/{name}/entities.csv`.

Central's columns, in its order: `__id,label,<properties>,__createdAt,__creatorId,
__creatorName,__updates,__updatedAt,__version`, newest entity first. This is
not the file Collect gets (server.services.entity_lists: `name,label,__version,
<properties>`); the two differ on purpose and must stay apart.

Rows stream page by page, keyset on the entity id downwards (ids are handed out
in creation order, so this is Central's newest-first), so memory stays flat.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forms.personal import pseudonym
from server.db.models import Actor, EntityRow
from server.runtime import Runtime

_BATCH = 5_000
_decode_data = msgspec.json.Decoder(dict[str, str]).decode
SYSTEM_COLUMNS = (
    "__createdAt",
    "__creatorId",
    "__creatorName",
    "__updates",
    "__updatedAt",
    "__version",
)
# Personal property names and the key of their pseudonyms.
Masked = tuple[frozenset[str], bytes]


def _iso(value: datetime | None) -> str:
    """Central's `toISOString()`: UTC, milliseconds, `Z`; empty for none."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def header(properties: Sequence[str]) -> list[str]:
    return ["__id", "label", *properties, *SYSTEM_COLUMNS]


async def export_etag(
    db: AsyncSession, dataset_id: int, properties: Sequence[str], *, masked: bool
) -> str:
    """Changes whenever a row of the file would: an entity added, changed, deleted,
    restored or resolved (that moves `__updatedAt`), or a property added."""
    row = (
        await db.execute(
            select(
                func.count(),
                func.coalesce(func.sum(EntityRow.id), 0),
                func.coalesce(func.sum(EntityRow.current_def_id), 0),
                func.max(EntityRow.updated_at),
            ).where(EntityRow.dataset_id == dataset_id, EntityRow.deleted_at.is_(None))
        )
    ).one()
    fingerprint = f"export:{dataset_id}:{row[0]}:{row[1]}:{row[2]}:{row[3]}:"
    fingerprint += f"{','.join(properties)}:{masked}"
    return hashlib.md5(fingerprint.encode(), usedforsecurity=False).hexdigest()


async def stream_export(
    rt: Runtime,
    dataset_id: int,
    properties: list[str],
    where: Sequence[ColumnElement[bool]] = (),
    masked: Masked | None = None,
) -> AsyncIterator[bytes]:
    yield _lines([header(properties)])
    conditions = [EntityRow.dataset_id == dataset_id, EntityRow.deleted_at.is_(None), *where]
    before: int | None = None
    while True:
        before, chunk = await rt.query(partial(_page, conditions, properties, before, masked))
        if before is None:
            return
        yield chunk


def _lines(rows: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def _page(
    conditions: list[Any],
    properties: list[str],
    before: int | None,
    masked: Masked | None,
    connection: Connection,
) -> tuple[int | None, bytes]:
    """The CSV lines of the next page below entity id `before`, and the last id on it."""
    query = (
        select(
            EntityRow.id,
            EntityRow.uuid,
            EntityRow.label,
            EntityRow.data,
            EntityRow.created_at,
            EntityRow.creator_id,
            Actor.display_name,
            EntityRow.version,
            EntityRow.updated_at,
        )
        .outerjoin(Actor, Actor.id == EntityRow.creator_id)
        .where(*conditions)
        .order_by(EntityRow.id.desc())
        .limit(_BATCH)
    )
    if before is not None:
        query = query.where(EntityRow.id < before)
    rows = connection.execute(query).all()
    if not rows:
        return None, b""
    hidden = [masked is not None and name in masked[0] for name in properties]
    key = masked[1] if masked is not None else b""
    out = []
    for _, uuid, label, data, created, creator, name, version, updated in rows:
        values = _decode_data(data)
        cells = [values.get(p, "") for p in properties]
        if masked is not None:
            cells = [
                pseudonym(key, v) if h and v else v for h, v in zip(hidden, cells, strict=True)
            ]
        out.append(
            (
                uuid,
                label,
                *cells,
                _iso(created),
                "" if creator is None else creator,
                name or "",
                version - 1,
                _iso(updated),
                version,
            )
        )
    last: int = rows[-1][0]
    return last, _lines(out)
