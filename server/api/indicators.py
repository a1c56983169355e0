"""`GET /v1/projects/{id}/indicators`: the programme's counts for the web app's charts.

Not a Central route. It needs `submission.list` on the intake and follow-up
forms (project viewers and managers; data collectors and app users are
refused), and leaves out breakdowns by fields that are personal for the caller.
Which forms are counted can be named (`intakeForm`, `followUpForm`); a project
without one of them counts nothing for it.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Router, get
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.common import check
from server.api.shapes import ApiModel
from server.auth import Principal
from server.requests import AnyRequest, require_principal, runtime_of
from server.services.forms import find_form
from server.services.indicators import (
    FOLLOW_UP_BREAKDOWNS,
    FOLLOW_UP_DATES,
    INTAKE_BREAKDOWNS,
    INTAKE_DATE,
    FormCounts,
    count_form,
    months_between,
)
from server.services.personal import personal_view
from server.services.projects import get_project


class CountOut(ApiModel):
    key: str
    count: int
    labels: dict[str, str]


class BreakdownOut(ApiModel):
    name: str
    xml_form_id: str
    withheld: bool
    counts: list[CountOut]


class MonthOut(ApiModel):
    month: str
    registrations: int
    follow_ups: int


class IndicatorsOut(ApiModel):
    intake_form: str
    follow_up_form: str
    registrations: int
    follow_ups: int
    breakdowns: list[BreakdownOut]
    by_month: list[MonthOut]


async def _counts(
    db: AsyncSession,
    principal: Principal,
    project_id: int,
    xml_form_id: str,
    breakdowns: dict[str, str],
    dates: tuple[str, ...],
) -> FormCounts:
    try:
        form = await find_form(db, project_id, xml_form_id)
    except problems.Problem:
        # No such form in this project: nothing to count, and nothing revealed.
        check(principal, "submission.list", project_id=project_id)
        return FormCounts(xml_form_id)
    check(principal, "submission.list", project_id=project_id, form_id=form.id)
    view = await personal_view(db, principal, form)
    return await count_form(db, form, view, breakdowns, dates)


@get("/projects/{project_id:int}/indicators", operation_id="getIndicators")
async def indicators(
    request: AnyRequest,
    project_id: FromPath[int],
    intake_form: Annotated[str, QueryParameter(name="intakeForm")] = "intake",
    follow_up_form: Annotated[str, QueryParameter(name="followUpForm")] = "follow_up",
) -> IndicatorsOut:
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        await get_project(db, project_id)
        check(principal, "submission.list", project_id=project_id)
        intake = await _counts(
            db, principal, project_id, intake_form, dict(INTAKE_BREAKDOWNS), (INTAKE_DATE,)
        )
        follow_up = await _counts(
            db, principal, project_id, follow_up_form, dict(FOLLOW_UP_BREAKDOWNS), FOLLOW_UP_DATES
        )
    months = sorted(set(intake.by_month) | set(follow_up.by_month))
    timeline = months_between(months[0], months[-1]) if months else []
    return IndicatorsOut(
        intake_form=intake_form,
        follow_up_form=follow_up_form,
        registrations=intake.total,
        follow_ups=follow_up.total,
        breakdowns=[
            BreakdownOut(
                b.name,
                counted.xml_form_id,
                b.withheld,
                [CountOut(k, n, b.labels.get(k, {})) for k, n in b.counts.items()],
            )
            for counted in (intake, follow_up)
            for b in counted.breakdowns
        ],
        by_month=[
            MonthOut(m, intake.by_month.get(m, 0), follow_up.by_month.get(m, 0)) for m in timeline
        ],
    )


router = Router("/v1", route_handlers=[indicators])
