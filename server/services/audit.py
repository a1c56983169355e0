"""The audit log: every write records who did what to which thing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Audit

_encode = msgspec.json.Encoder().encode
_INSERT = insert(Audit)


def now() -> datetime:
    return datetime.now(UTC)


async def record(
    db: AsyncSession,
    actor_id: int | None,
    action: str,
    target_kind: str | None = None,
    target_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    # A Core insert on the session's connection: audits are written on every
    # submission, and the ORM's unit of work would double the cost of ingest.
    connection = await db.connection()
    await connection.execute(_INSERT, _values(actor_id, action, target_kind, target_id, details))


def record_on(
    connection: Connection,
    actor_id: int | None,
    action: str,
    target_kind: str | None = None,
    target_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """`record` for synchronous units of work (Runtime.write)."""
    connection.execute(_INSERT, _values(actor_id, action, target_kind, target_id, details))


def _values(
    actor_id: int | None,
    action: str,
    target_kind: str | None,
    target_id: int | None,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "actor_id": actor_id,
        "action": action,
        "target_kind": target_kind,
        "target_id": target_id,
        "details": _encode(details).decode() if details else None,
        "logged_at": now(),
    }
