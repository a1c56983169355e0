"""The server audit log: GET /v1/audits, and the shape other audit lists share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Router, get
from litestar.params import FromQuery
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.common import ExtendedHeader, actors_by_id, check, is_extended, project_out
from server.api.shapes import AuditOut, iso
from server.db.models import Audit, Form, Project, Submission
from server.requests import AnyRequest, require_principal, runtime_of
from server.services import audit as audit_service

_decode_details = msgspec.json.Decoder(dict[str, Any]).decode


def _actee_id(row: Audit) -> str | None:
    # Central's actees are UUIDs; Homeward names the target by its kind and id.
    return f"{row.target_kind}/{row.target_id}" if row.target_kind else None


async def _actees(db: AsyncSession, rows: Sequence[Audit]) -> dict[tuple[str, int], Any]:
    wanted: dict[str, set[int]] = {}
    for row in rows:
        if row.target_kind and row.target_id is not None:
            wanted.setdefault(row.target_kind, set()).add(row.target_id)
    found: dict[tuple[str, int], Any] = {}
    for actor_id, shape in (await actors_by_id(db, wanted.get("actor", ()))).items():
        found["actor", actor_id] = msgspec.to_builtins(shape)
    if wanted.get("project"):
        for project in await db.scalars(select(Project).where(Project.id.in_(wanted["project"]))):
            found["project", project.id] = msgspec.to_builtins(project_out(project))
    if wanted.get("form"):
        for form in await db.scalars(select(Form).where(Form.id.in_(wanted["form"]))):
            found["form", form.id] = {
                "projectId": form.project_id,
                "xmlFormId": form.xml_form_id,
                "state": form.state,
                "createdAt": iso(form.created_at),
                "deletedAt": iso(form.deleted_at),
            }
    if wanted.get("submission"):
        rows_ = await db.execute(
            select(Submission, Form.xml_form_id, Form.project_id)
            .join(Form, Form.id == Submission.form_id)
            .where(Submission.id.in_(wanted["submission"]))
        )
        for submission, xml_form_id, project_id in rows_:
            found["submission", submission.id] = {
                "instanceId": submission.instance_id,
                "xmlFormId": xml_form_id,
                "projectId": project_id,
                "createdAt": iso(submission.created_at),
                "deletedAt": iso(submission.deleted_at),
            }
    return found


async def audit_rows_out(
    db: AsyncSession, rows: Sequence[Audit], *, extended: bool
) -> list[AuditOut]:
    shapes = [
        AuditOut(
            actor_id=row.actor_id,
            action=row.action,
            actee_id=_actee_id(row),
            details=_decode_details(row.details) if row.details else None,
            logged_at=iso(row.logged_at) or "",
        )
        for row in rows
    ]
    if extended:
        actors = await actors_by_id(db, (row.actor_id for row in rows))
        actees = await _actees(db, rows)
        for row, shape in zip(rows, shapes, strict=True):
            shape.actor = actors.get(row.actor_id) if row.actor_id is not None else None
            key = (row.target_kind or "", row.target_id or 0)
            shape.actee = actees.get(key)
    return shapes


def _moment(name: str, value: str | None, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise problems.unexpected_value(name, value, "it is not an ISO 8601 date.") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(value) == 10:  # a bare date: the whole of that day
        moment += timedelta(days=1) - timedelta(microseconds=1)
    return moment


@get("/audits", operation_id="listAudits")
async def list_audits(
    request: AnyRequest,
    extended: ExtendedHeader = None,
    action: FromQuery[str | None] = None,
    start: FromQuery[str | None] = None,
    end: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    offset: FromQuery[int | None] = None,
) -> list[AuditOut]:
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        check(principal, "audit.read")
        for name, number in (("limit", limit), ("offset", offset)):
            if number is not None and number < 0:
                raise problems.unexpected_value(name, number, "it cannot be negative.")
        rows = await audit_service.find_audits(
            db,
            action=action,
            start=_moment("start", start),
            end=_moment("end", end, end=True),
            limit=limit,
            offset=offset,
        )
        return await audit_rows_out(db, rows, extended=is_extended(extended))


router = Router("/v1", route_handlers=[list_audits], tags=["audits"])
