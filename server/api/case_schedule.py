"""Homeward's follow-up schedule and an entity's source submissions, for the web app.

`GET /v1/projects/{id}/case-schedule?dataset=returnees[&asOf=YYYY-MM-DD][&limit=N]`
counts every returnee by when their next wave is due and lists the soonest N
(500 unless asked; not a Central route). Reading it
needs `entity.list` on the project, as reading the list itself does; properties
saved from personal fields come pseudonymised to those below manager.

`GET /v1/projects/{id}/datasets/{name}/entities/{uuid}/sources` names the
submissions that created or updated each version, so the web app can link them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from litestar import Router, get
from litestar.params import FromPath, QueryParameter
from sqlalchemy import select

from server import problems
from server.api.common import check
from server.api.shapes import ApiModel, iso
from server.db.models import EntityDef, EntityRow, Form, Submission, SubmissionDef
from server.requests import AnyRequest, require_principal, runtime_of
from server.services import datasets as dataset_service
from server.services.case_schedule import DUE_SOON_DAYS, WAVES, due_cases
from server.services.personal import audit_entity_read, entity_view, personal_view
from server.services.projects import get_project


class DueCaseOut(ApiModel):
    uuid: str
    label: str
    case_id: str | None
    municipality: str | None
    counsellor: str | None
    status: str | None
    last_wave: str | None
    last_contact: str | None
    return_date: str | None
    next_wave: str
    due_date: str
    bucket: str


class ScheduleOut(ApiModel):
    dataset: str
    as_of: str
    due_soon_days: int
    waves: list[str]
    # Every returnee counted; `cases` holds the first `limit` of them, soonest due first.
    counts: dict[str, int]
    total: int
    cases: list[DueCaseOut]


# A page lists the most pressing cases; all of them are counted. A list of 100,000
# returnees is about 30 MB of JSON: no browser table wants that.
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000


class SourceOut(ApiModel):
    version: int
    created_at: str
    xml_form_id: str | None
    instance_id: str | None
    instance_name: str | None


def _as_of(text: str | None) -> date:
    if not text:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise problems.unexpected_value("asOf", text, "it is not a date (YYYY-MM-DD).") from None


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_LIMIT:
        raise problems.unexpected_value("limit", text, f"it is a number from 1 to {MAX_LIMIT}.")
    return int(text)


@get("/projects/{project_id:int}/case-schedule", operation_id="getCaseSchedule")
async def case_schedule(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset: Annotated[str, QueryParameter(name="dataset")] = "returnees",
    as_of: Annotated[str | None, QueryParameter(name="asOf")] = None,
    limit: Annotated[str | None, QueryParameter(name="limit")] = None,
) -> ScheduleOut:
    today = _as_of(as_of)
    shown = _limit(limit)
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await require_principal(request, db)
        await get_project(db, project_id)
        check(principal, "entity.list", project_id=project_id)
        found = await dataset_service.find_dataset(db, project_id, dataset)
        view = await entity_view(db, principal, found)
        cases = await due_cases(db, found, view, today)
    if view.reads_clear:
        await audit_entity_read(rt, principal, found, "case-schedule")
    counts = {"overdue": 0, "week": 0, "later": 0}
    for case in cases:
        counts[case.bucket] += 1
    return ScheduleOut(
        dataset=dataset,
        as_of=today.isoformat(),
        due_soon_days=DUE_SOON_DAYS,
        waves=[name for name, _ in WAVES],
        counts=counts,
        total=len(cases),
        cases=[
            DueCaseOut(
                c.uuid,
                c.label,
                c.case_id,
                c.municipality,
                c.counsellor,
                c.status,
                c.last_wave,
                c.last_contact,
                c.return_date,
                c.next_wave,
                c.due_date,
                c.bucket,
            )
            for c in cases[:shown]
        ],
    )


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/{entity_uuid:str}/sources",
    operation_id="listEntitySources",
)
async def entity_sources(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    entity_uuid: FromPath[str],
) -> list[SourceOut]:
    """Per version, the submission that made it (null fields for API or bulk changes).

    A submission's instance name goes through its form's personal policy, as
    everywhere else; a caller who may not read the form's submissions gets no
    link to them.
    """
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        await get_project(db, project_id)
        check(principal, "entity.read", project_id=project_id)
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        rows = (
            await db.execute(
                select(
                    EntityDef.version,
                    EntityDef.created_at,
                    Form,
                    Submission.instance_id,
                    SubmissionDef,
                )
                .join(EntityRow, EntityRow.id == EntityDef.entity_id)
                .outerjoin(SubmissionDef, SubmissionDef.id == EntityDef.source_submission_def_id)
                .outerjoin(Submission, Submission.id == SubmissionDef.submission_id)
                .outerjoin(Form, Form.id == Submission.form_id)
                .where(EntityRow.dataset_id == dataset.id, EntityRow.uuid == entity_uuid)
                .order_by(EntityDef.version)
            )
        ).all()
        if not rows:
            raise problems.not_found()
        found = []
        for version, created_at, form, instance_id, submission_def in rows:
            if form is None or submission_def is None:
                found.append(SourceOut(version, iso(created_at) or "", None, None, None))
                continue
            if not principal.can("submission.read", project_id=project_id, form_id=form.id):
                found.append(SourceOut(version, iso(created_at) or "", None, None, None))
                continue
            view = await personal_view(db, principal, form)
            found.append(
                SourceOut(
                    version,
                    iso(created_at) or "",
                    form.xml_form_id,
                    instance_id,
                    view.instance_name(submission_def.instance_name),
                )
            )
    return found


router = Router("/v1", route_handlers=[case_schedule, entity_sources])
