"""Exports as jobs: ask for one, follow its progress, download its file.

    POST /v1/projects/{projectId}/forms/{xmlFormId}/export-jobs?format=csv.zip&...
        -> 201 {"id", "state": "queued", ...}; the download routes' query options
    GET  .../export-jobs/{id}        -> state (queued, running, done, failed,
        expired), progress (`done` of `total` submissions), size, expiresAt
    GET  .../export-jobs/{id}/file   -> the file while it is kept (409.x before)

Everything a download checks is checked when the job is asked for (rights,
options, the personal-data decision), so a job fails later only if the form
goes away or the server does. Who may read the form's submissions may follow
and download its jobs.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from exports import ExportError
from server import problems
from server.api.common import check
from server.api.exports import ExportQuery, export_options, export_query
from server.api.exports import _disposition as disposition
from server.api.shapes import ApiModel, iso
from server.db.models import ExportRun, Form
from server.requests import AnyRequest, require_principal, runtime_of
from server.services import export_runs
from server.services import exports as export_service
from server.services.forms import find_form
from server.services.personal import audit_personal_read, personal_view

_PATH = "/projects/{project_id:int}/forms/{xml_form_id:str}/export-jobs"


class ExportJobOut(ApiModel):
    id: int
    format: str
    state: str
    total: int | None
    done: int
    size: int | None
    error: str | None
    created_at: str | None
    finished_at: str | None
    expires_at: str | None
    file_name: str


def _out(run: ExportRun, form: Form) -> ExportJobOut:
    return ExportJobOut(
        id=run.id,
        format=run.format,
        state=run.state,
        total=run.total,
        done=run.done,
        size=run.size,
        error=run.error,
        created_at=iso(run.created_at),
        finished_at=iso(run.finished_at),
        expires_at=iso(run.expires_at),
        file_name=f"{form.xml_form_id}.{run.format}",
    )


def _format(value: str | None) -> export_service.ExportFormat:
    try:
        return export_service.ExportFormat(value or "csv.zip")
    except ValueError:
        formats = ", ".join(f.value for f in export_service.ExportFormat)
        raise problems.unexpected_value("format", value, f"use one of {formats}.") from None


@post(_PATH, operation_id="createExportJob", status_code=201)
async def create_export_job(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    options: NamedDependency[ExportQuery],
    format: Annotated[str | None, QueryParameter(name="format")] = None,
) -> ExportJobOut:
    """Queue an export; any app process writes it and keeps the file a while."""
    fmt = _format(format)
    rt = runtime_of(request)
    async with rt.transaction() as db:
        principal = await require_principal(request, db)
        form = await find_form(db, project_id, xml_form_id)
        check(principal, "submission.read", project_id=project_id, form_id=form.id)
        view = await personal_view(db, principal, form)
        chosen = export_options(options, view)
        try:  # refuse now what the job would refuse later
            await export_service.prepare_export(
                db,
                form,
                chosen,
                options.where,
                format=fmt,
                media=options.attachments,
                spool_dir=rt.settings.data_dir / "tmp",
                deleted_fields=options.deleted_fields,
                geo_table=options.geo_table,
                geo_field=options.geo_field,
                hidden_files=view.files_left_out(chosen.personal),
            )
        except ExportError as error:
            raise problems.export_not_possible(str(error)) from error
        asked = export_runs.request_for(
            chosen,
            filter=options.filter_text,
            start=options.start,
            end=options.end,
            review_state=options.review_state,
            attachments=options.attachments,
            deleted_fields=options.deleted_fields,
            geo_table=options.geo_table,
            geo_field=options.geo_field,
            cleaned=options.cleaned,
        )
        run = await export_runs.create_run(db, form, principal.actor_id, fmt.value, asked)
        return _out(run, form)


async def _find(
    request: AnyRequest, project_id: int, xml_form_id: str, job_id: int
) -> tuple[ExportRun, Form]:
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        form = await find_form(db, project_id, xml_form_id)
        check(principal, "submission.read", project_id=project_id, form_id=form.id)
        run = await db.get(ExportRun, job_id)
        if run is None or run.form_id != form.id:
            raise problems.not_found()
        return run, form


@get(f"{_PATH}/{{job_id:int}}", operation_id="getExportJob")
async def get_export_job(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    job_id: FromPath[int],
) -> ExportJobOut:
    """The job's state and progress (submissions written of the total)."""
    run, form = await _find(request, project_id, xml_form_id, job_id)
    return _out(run, form)


@get(f"{_PATH}/{{job_id:int}}/file", operation_id="getExportJobFile")
async def get_export_job_file(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    job_id: FromPath[int],
) -> Stream:
    """The finished export, while it is kept."""
    run, form = await _find(request, project_id, xml_form_id, job_id)
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await require_principal(request, db)
        view = await personal_view(db, principal, form)
    if export_runs.kept_personal(run) and view.fields.any:
        # A manager's job that kept personal fields is theirs and other managers' alone.
        if not view.clear:
            raise problems.personal_data_forbidden()
        await audit_personal_read(rt, principal, form, "export", format=run.format, job=run.id)
    if run.state != export_runs.DONE:
        raise problems.export_not_ready(run.state)
    file_name = f"{form.xml_form_id}.{run.format}"
    chunks = runtime_of(request).blobs.open_object(export_runs.file_object(run, file_name))
    media_type = export_service.ExportFormat(run.format).media_type
    return Stream(
        chunks,
        media_type=media_type,
        headers={
            "Content-Type": media_type,
            "Content-Disposition": disposition(file_name),
            "Content-Length": str(run.size),
            "Cache-Control": "no-store",
        },
    )


router = Router(
    "/v1",
    route_handlers=[create_export_job, get_export_job, get_export_job_file],
    dependencies={"options": Provide(export_query)},
    tags=["exports"],
)
