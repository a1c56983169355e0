"""A form's cleaning log over HTTP, in Central's JSON style.

    GET    /v1/projects/{id}/forms/{xmlFormId}/cleaning-log        entries, oldest first
    GET    /v1/projects/{id}/forms/{xmlFormId}/cleaning-log.csv    the same as CSV
    POST   /v1/projects/{id}/forms/{xmlFormId}/cleaning-log        add one entry (JSON)
    POST   /v1/projects/{id}/forms/{xmlFormId}/cleaning-log.csv    add many (a CSV upload)
    DELETE /v1/projects/{id}/forms/{xmlFormId}/cleaning-log/{id}   remove one entry
    POST   /v1/projects/{id}/forms/{xmlFormId}/cleaning-checks     suggestions (exports.checks)
    GET    /v1/projects/{id}/forms/{xmlFormId}/cleaning-findings   stored findings (paged)
    POST   .../cleaning-findings/{id}/accept                         a cleaning entry from it
    POST   .../cleaning-findings/{id}/dismiss                        decided: left as collected
    POST   .../cleaning-findings/run                                 run the checks now, store
    GET|PUT|DELETE .../cleaning-check-settings                       the form's CheckSettings

Findings (services.check_findings) are what the checks found, kept until
someone decides: the automatic checks on new submissions store them, and so
does `run`. Findings and settings are for those who write the log
(`submission.update`).

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

import re
from typing import TypeVar

import msgspec
from litestar import Response, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from exports import ExportOptions
from exports.checks import CheckReport, CheckSettings, NotEvaluated
from exports.cleaning import (
    CleaningChange,
    CleaningError,
    ProposedChange,
    cleaning_log_csv,
    protect_personal,
)
from exports.cleaning.log import read_cleaning_csv
from forms.personal import PersonalFields, personal_fields
from forms.schema import REPEAT, STRUCTURE, FormSchema
from server import problems
from server.api.shapes import ApiInput, ApiModel, Success, iso
from server.api.submissions import caller_and_form
from server.auth import Principal
from server.db.models import Form, Project
from server.requests import AnyRequest, parse_flag, runtime_of
from server.services import check_findings, cleaning
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
        return await _as_seen_by(db, principal, project_id, form, changes)


async def _as_seen_by(
    db: AsyncSession,
    principal: Principal,
    project_id: int,
    form: Form,
    changes: list[CleaningChange],
) -> list[CleaningChange]:
    """Entries as the caller may read them: as in exports, those who may not see
    personal answers get them as keyed pseudonyms."""
    if may_see_personal(principal, project_id):
        return changes
    project = await db.get(Project, project_id)
    if project is None:
        raise problems.not_found()
    hidden = ExportOptions(personal="pseudonymise", pseudonym_key=project.pseudonym_secret.encode())
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
    settings = _read_settings(await request.body())
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


FINDINGS = "/projects/{project_id:int}/forms/{xml_form_id:str}/cleaning-findings"
SETTINGS = "/projects/{project_id:int}/forms/{xml_form_id:str}/cleaning-check-settings"
_MAX_PAGE = 1000
_Body = TypeVar("_Body", "AcceptIn", "DismissIn")


class FindingOut(ApiModel):
    id: int
    instance_id: str
    kind: str
    field: str | None
    repeat_key: str | None
    value: str | None
    suggested_value: str | None
    message: str
    related: list[str]
    status: str
    created_at: str
    decided_by: str | None
    decided_at: str | None
    dismiss_reason: str | None
    cleaning_entry_id: int | None


class AcceptIn(ApiInput):
    new_value: str | None = None
    reason: str | None = None


class DismissIn(ApiInput):
    reason: str | None = None


class AcceptedOut(ApiModel):
    finding: FindingOut
    entry: CleaningEntryOut


class RunOut(ApiModel):
    checked: int
    added: int
    not_evaluated: list[NotEvaluated]


class SettingsQuestion(ApiModel):
    """A question the settings may name, with its labels for the web app's pickers."""

    path: str
    name: str
    kind: str
    # The enclosing repeat's path; duplicates compare only questions outside repeats.
    repeat: str | None
    personal: bool
    labels: dict[str, str]


class SettingsOut(ApiModel, omit_defaults=True):
    stored: bool
    settings: CheckSettings
    # On GET only: the current version's questions (not groups, repeats or metadata).
    questions: list[SettingsQuestion] | None = None


def settings_questions(schema: FormSchema) -> list[SettingsQuestion]:
    return [
        SettingsQuestion(
            path=field.path,
            name=field.name,
            kind=field.kind,
            repeat=field.parent_repeat,
            personal=field.personal,
            labels=field.labels,
        )
        for field in schema.fields
        if field.kind not in (STRUCTURE, REPEAT) and not field.path.startswith("/meta/")
    ]


def finding_out(view: check_findings.FindingView, hidden: PersonalFields | None) -> FindingOut:
    found = view.finding
    value, suggested, message = found.value, found.suggested_value, found.message
    if hidden is not None and hidden.covers(re.sub(r"\[[0-9]+\]", "", found.field or "")):
        # Viewers of pseudonyms only: the answers and the message quoting them go.
        value = suggested = None
        message = f"{found.kind} finding on a personal answer"
    return FindingOut(
        id=found.id,
        instance_id=found.instance_id,
        kind=found.kind,
        field=found.field,
        repeat_key=found.repeat_key,
        value=value,
        suggested_value=suggested,
        message=message,
        related=view.related,
        status=found.status,
        created_at=iso(found.created_at) or "",
        decided_by=view.decided_by,
        decided_at=iso(found.decided_at),
        dismiss_reason=found.dismiss_reason,
        cleaning_entry_id=found.cleaning_entry_id,
    )


async def _hidden(
    db: AsyncSession, principal: Principal, project_id: int, form: Form
) -> PersonalFields | None:
    if may_see_personal(principal, project_id):
        return None
    return personal_fields([await cleaning.form_schema(db, form)])


def _page_number(name: str, value: int | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not low <= value <= high:
        raise problems.unexpected_value(name, value, f"use {low} to {high}.")
    return value


@get(FINDINGS, operation_id="listCheckFindings")
async def list_findings(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    status: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    offset: FromQuery[int | None] = None,
) -> Response[list[FindingOut]]:
    """The form's findings, oldest first; `X-Total-Count` counts all that match."""
    size = _page_number("limit", limit, 100, 1, _MAX_PAGE)
    skip = _page_number("offset", offset, 0, 0, 2**62)
    async with runtime_of(request).read() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        views, total = await check_findings.list_findings(
            db, form, status=status or None, kind=kind or None, limit=size, offset=skip
        )
        hidden = await _hidden(db, principal, project_id, form)
    return Response(
        [finding_out(view, hidden) for view in views], headers={"X-Total-Count": str(total)}
    )


@post(f"{FINDINGS}/{{finding_id:int}}/accept", operation_id="acceptCheckFinding", status_code=200)
async def accept_finding(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    finding_id: FromPath[int],
) -> AcceptedOut:
    """A cleaning log entry from the finding (`newValue` overrides its suggestion)."""
    data = await _optional_body(request, AcceptIn)
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        decided = await check_findings.accept_finding(
            db, form, finding_id, principal, new_value=data.new_value, reason=data.reason
        )
        hidden = await _hidden(db, principal, project_id, form)
        [entry] = await _as_seen_by(db, principal, project_id, form, [decided.entry])
        return AcceptedOut(finding_out(decided.view, hidden), entry_out(entry))


@post(f"{FINDINGS}/{{finding_id:int}}/dismiss", operation_id="dismissCheckFinding", status_code=200)
async def dismiss_finding(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    finding_id: FromPath[int],
) -> FindingOut:
    """Leave the answer as collected; the finding is not raised again."""
    data = await _optional_body(request, DismissIn)
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        view = await check_findings.dismiss_finding(
            db, form, finding_id, principal, reason=data.reason
        )
        return finding_out(view, await _hidden(db, principal, project_id, form))


@post(f"{FINDINGS}/run", operation_id="runCheckFindings", status_code=200)
async def run_findings(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> RunOut:
    """The form's checks over all its submissions now; new findings are stored."""
    rt = runtime_of(request)
    async with rt.read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "submission.update")
    try:
        report, added = await check_findings.run_now(rt, form)
    except ValueError as error:
        raise problems.cleaning_not_possible(str(error)) from error
    return RunOut(checked=report.checked, added=added, not_evaluated=report.not_evaluated)


@get(SETTINGS, operation_id="getCheckSettings")
async def get_settings(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> SettingsOut:
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "submission.update")
        settings, stored = await check_findings.form_settings(db, form.id)
        questions = settings_questions(await cleaning.form_schema(db, form))
    return SettingsOut(stored=stored, settings=settings, questions=questions)


@put(SETTINGS, operation_id="storeCheckSettings", status_code=200)
async def put_settings(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> SettingsOut:
    """The body is CheckSettings (as for cleaning-checks); `"checks": []` turns them off."""
    body = await request.body()
    settings = _read_settings(body)
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        await check_findings.store_settings(db, form, settings, principal)
        stored, _ = await check_findings.form_settings(db, form.id)
    return SettingsOut(stored=True, settings=stored)


@delete(SETTINGS, operation_id="resetCheckSettings", status_code=200)
async def reset_settings(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        await check_findings.store_settings(db, form, None, principal)
    return Success()


def _read_settings(body: bytes) -> CheckSettings:
    try:
        return _decode_settings(body) if body.strip() else CheckSettings()
    except msgspec.ValidationError as error:
        raise problems.unexpected_value("body", "CheckSettings", str(error)) from error
    except msgspec.DecodeError as error:
        raise problems.unparseable("JSON", str(error)) from error


async def _optional_body(request: AnyRequest, shape: type[_Body]) -> _Body:
    body = await request.body()
    try:
        return msgspec.json.decode(body if body.strip() else b"{}", type=shape)
    except msgspec.ValidationError as error:
        raise problems.unexpected_value("body", shape.__name__, str(error)) from error
    except msgspec.DecodeError as error:
        raise problems.unparseable("JSON", str(error)) from error


router = Router(
    "/v1",
    route_handlers=[
        list_log,
        download_log,
        create_entry,
        upload_log,
        delete_entry,
        run_checks,
        list_findings,
        accept_finding,
        dismiss_finding,
        run_findings,
        get_settings,
        put_settings,
        reset_settings,
    ],
    tags=["cleaning"],
)
