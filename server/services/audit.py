"""The audit log: every write records who did what to which thing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, insert, select
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
        "details": encode_details(details),
        "logged_at": now(),
    }


def encode_details(details: dict[str, Any] | None) -> str | None:
    """An audit's details as stored (JSON text)."""
    return _encode(details).decode() if details else None


# Central's grouped names for ?action= on GET /v1/audits.
ACTION_GROUPS: dict[str, frozenset[str]] = {
    "user": frozenset(
        {
            "user.create",
            "user.update",
            "user.delete",
            "user.assignment.create",
            "user.assignment.delete",
            "user.session.create",
        }
    ),
    "field_key": frozenset(
        {
            "field_key.create",
            "field_key.assignment.create",
            "field_key.assignment.delete",
            "field_key.session.end",
            "field_key.delete",
        }
    ),
    "public_link": frozenset(
        {
            "public_link.create",
            "public_link.assignment.create",
            "public_link.assignment.delete",
            "public_link.session.end",
            "public_link.delete",
        }
    ),
    "project": frozenset({"project.create", "project.update", "project.delete"}),
    "form": frozenset(
        {
            "form.create",
            "form.update",
            "form.delete",
            "form.restore",
            "form.purge",
            "form.attachment.update",
            "form.submission.export",
            "form.update.draft.set",
            "form.update.draft.delete",
            "form.update.draft.replace",
            "form.update.publish",
        }
    ),
    "submission": frozenset(
        {
            "submission.create",
            "submission.update",
            "submission.update.version",
            "submission.attachment.update",
            "submission.delete",
            "submission.restore",
            "submission.purge",
        }
    ),
    "config": frozenset({"config.set"}),
}
# What ?action=nonverbose leaves out: the high-volume data events.
VERBOSE = ACTION_GROUPS["submission"] | frozenset(
    {"user.preference.update", "user.preference.delete", "backup", "analytics"}
)


def _action_filter(action: str) -> ColumnElement[bool]:
    if action == "nonverbose":
        return Audit.action.not_in(VERBOSE)
    group = ACTION_GROUPS.get(action)
    if group is not None:
        return Audit.action.in_(group)
    return Audit.action == action


async def find_audits(
    db: AsyncSession,
    *,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Sequence[Audit]:
    """Newest first, as Central lists them."""
    query = select(Audit).order_by(Audit.logged_at.desc(), Audit.id.desc())
    if action:
        query = query.where(_action_filter(action))
    if start is not None:
        query = query.where(Audit.logged_at >= start)
    if end is not None:
        query = query.where(Audit.logged_at <= end)
    return (await db.scalars(query.limit(limit).offset(offset))).all()


async def for_target(db: AsyncSession, kind: str, target_id: int) -> Sequence[Audit]:
    return (
        await db.scalars(
            select(Audit)
            .where(Audit.target_kind == kind, Audit.target_id == target_id)
            .order_by(Audit.logged_at.desc(), Audit.id.desc())
        )
    ).all()
