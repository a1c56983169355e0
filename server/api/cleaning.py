"""A form's cleaning log over HTTP, in Central's JSON style.

    GET    /v1/projects/{id}/forms/{xmlFormId}/cleaning-log        entries, oldest first
    GET    /v1/projects/{id}/forms/{xmlFormId}/cleaning-log.csv    the same as CSV
    POST   /v1/projects/{id}/forms/{xmlFormId}/cleaning-log        add one entry (JSON)
    POST   /v1/projects/{id}/forms/{xmlFormId}/cleaning-log.csv    add many (a CSV upload)
    DELETE /v1/projects/{id}/forms/{xmlFormId}/cleaning-log/{id}   remove one entry
    POST   /v1/projects/{id}/forms/{xmlFormId}/cleaning-checks     suggestions (exports.checks)

The log belongs to the form, beside its submissions (as Central's
`/submissions` does), not to a submission: analysts read and upload it for a
whole dataset. Whoever may read submissions reads it (viewers too, who see
personal answers only as pseudonyms, as in exports); whoever may change them
(`submission.update`: project managers, administrators) writes it.
Entries derived from edits through the submission API are listed with
`source: "edit"` and no id (`edits=false` leaves them out); they cannot be
deleted here, only by editing the submission again.
"""

from __future__ import annotations

import msgspec
from litestar import Response, Router, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from exports import ExportOptions
from exports.checks import CheckReport, CheckSettings
from exports.cleaning import (
    CleaningChange,
    CleaningError,
    ProposedChange,
    cleaning_log_csv,
    protect_personal,
)
from exports.cleaning.log import read_cleaning_csv
from server import problems
from server.api.shapes import ApiInput, ApiModel, Success, iso
from server.api.submissions import caller_and_form
from server.db.models import Project
from server.requests import AnyRequest, parse_flag, runtime_of
from server.services import cleaning
from server.services.personal import may_see_personal

LOG = "/projects/{project_id:int}/forms/{xml_form_id:str}/cleaning-log"
_CHECK_SOURCES = ("duplicate", "outlier", "constraint", "other", "duration")


class CleaningEntryIn(ApiInput):
    instance_id: str
    reason: str
    # Null (or left out) removes the whole submission from cleaned exports.
    field: str | None = None
    new_value: str | None = None
    old_value: str | None = None
    # "manual", or "check:<kind>" when accepting a cleaning-checks suggestion.
    source: str = "manual"


class CleaningEntryOut(ApiModel):
    id: int | None
    instance_id: str
    field: str | None
    old_value: str | None
    new_value: str | None
    reason: str
    who: str | None
    created_at: str
    source: str


def entry_out(change: CleaningChange) -> CleaningEntryOut:
    return CleaningEntryOut(
        id=change.id,
        instance_id=change.instance_id,
        field=change.field,
        old_value=change.old_value,
        new_value=change.new_value,
        reason=change.reason,
        who=change.who,
        created_at=iso(change.when) or "",
        source=change.source,
    )


def _source(value: str) -> str:
    if value == "manual" or value.removeprefix("check:") in _CHECK_SOURCES:
        return value
    kinds = ", ".join(f"check:{kind}" for kind in _CHECK_SOURCES)
    raise problems.unexpected_value("source", value, f"use manual or one of {kinds}.")


async def _log(
    request: AnyRequest, project_id: int, xml_form_id: str, edits: bool
) -> list[CleaningChange]:
    async with runtime_of(request).read() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.read"
        )
        changes = await cleaning.stored_changes(db, form)
        if edits:
            changes = sorted(
                [*changes, *await cleaning.edit_changes(db, form)], key=lambda c: c.when
            )
        if may_see_personal(principal, project_id):
            return changes
        # As in exports: others see personal answers only as keyed pseudonyms.
        project = await db.get(Project, project_id)
        if project is None:
            raise problems.not_found()
        hidden = ExportOptions(
            personal="pseudonymise", pseudonym_key=project.pseudonym_secret.encode()
        )
        return protect_personal(await cleaning.form_schema(db, form), hidden, changes)


@get(LOG, operation_id="listCleaningLog")
async def list_log(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    edits: FromQuery[str | None] = None,
) -> list[CleaningEntryOut]:
    wanted = parse_flag(edits, default=True, name="edits")
    return [entry_out(c) for c in await _log(request, project_id, xml_form_id, wanted)]


@get(f"{LOG}.csv", operation_id="downloadCleaningLog")
async def download_log(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    edits: FromQuery[str | None] = None,
) -> Response[bytes]:
    wanted = parse_flag(edits, default=True, name="edits")
    changes = await _log(request, project_id, xml_form_id, wanted)
    return Response(
        cleaning_log_csv(changes),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{xml_form_id}-cleaning-log.csv"'},
    )


@post(LOG, operation_id="createCleaningEntry", status_code=200)
async def create_entry(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    data: JSONBody[CleaningEntryIn],
) -> CleaningEntryOut:
    proposed = ProposedChange(
        instance_id=data.instance_id,
        field=data.field or None,
        new_value=data.new_value,
        reason=data.reason,
        old_value=data.old_value,
        source=_source(data.source),
    )
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        [created] = await cleaning.add_entries(db, form, [proposed], principal)
        return entry_out(created)


@post(f"{LOG}.csv", operation_id="uploadCleaningLog", status_code=200)
async def upload_log(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[CleaningEntryOut]:
    """A CSV with instanceId, field, newValue, reason (and optionally oldValue): all or none."""
    body = await request.body()
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        try:
            proposed = [
                ProposedChange(
                    instance_id=p.instance_id,
                    field=p.field,
                    new_value=p.new_value,
                    reason=p.reason,
                    old_value=p.old_value,
                    source="upload",
                )
                for p in read_cleaning_csv(body)
            ]
        except CleaningError as error:
            raise problems.cleaning_not_possible(str(error)) from error
        created = await cleaning.add_entries(db, form, proposed, principal)
        return [entry_out(c) for c in created]


@post(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/cleaning-checks",
    operation_id="runCleaningChecks",
    status_code=200,
)
async def run_checks(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> CheckReport:
    """Suggestions from the data checks, for those who write the cleaning log.

    The body (optional) is CheckSettings: `checks`, `duplicateFields`,
    `duplicateRatio`, `outlierFields`, `outlierFence`, `minMinutes`,
    `otherRatio`, `since`. A suggestion is accepted by posting its
    instanceId, field and a newValue to the cleaning log with
    `source: "check:<kind>"`.
    """
    body = await request.body()
    try:
        settings = _decode_settings(body) if body.strip() else CheckSettings()
    except msgspec.ValidationError as error:
        raise problems.unexpected_value("body", "CheckSettings", str(error)) from error
    except msgspec.DecodeError as error:
        raise problems.unparseable("JSON", str(error)) from error
    rt = runtime_of(request)
    async with rt.read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "submission.update")
    return await cleaning.run_form_checks(rt, form, settings)


_decode_settings = msgspec.json.Decoder(CheckSettings).decode


@delete(f"{LOG}/{{entry_id:int}}", operation_id="deleteCleaningEntry", status_code=200)
async def delete_entry(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    entry_id: FromPath[int],
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        await cleaning.delete_entry(db, form, entry_id, principal)
    return Success()


router = Router(
    "/v1",
    route_handlers=[list_log, download_log, create_entry, upload_log, delete_entry, run_checks],
    tags=["cleaning"],
)
