"""Central's submission exports: `submissions.csv.zip` (GET and POST) and `submissions.csv`.

Everything that can fail with a proper answer (sign-in, rights, the form, the
query options, the first page of rows) is settled before the response starts;
the bytes then stream (see server.services.exports).

Query options as Central names them: `attachments` (default true; the zip only),
`groupPaths` (default true), `splitSelectMultiples` (default false),
`deletedFields` (accepted and ignored for now: columns come from the form's
current version only) and `$filter` (see services.exports.parse_filter).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from litestar import HttpMethod, Router, get, route
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from exports import ExportOptions
from server.api.common import check
from server.requests import AnyRequest, parse_flag, require_principal, runtime_of
from server.services import exports as export_service
from server.services.forms import find_form

ZIP = "application/zip"
CSV = "text/csv; charset=utf-8"

Attachments = Annotated[str | None, QueryParameter(name="attachments")]
GroupPaths = Annotated[str | None, QueryParameter(name="groupPaths")]
SplitSelectMultiples = Annotated[str | None, QueryParameter(name="splitSelectMultiples")]
DeletedFields = Annotated[str | None, QueryParameter(name="deletedFields")]
Filter = Annotated[str | None, QueryParameter(name="$filter")]

_PATH = "/projects/{project_id:int}/forms/{xml_form_id:str}"


async def _export(
    request: AnyRequest,
    project_id: int,
    xml_form_id: str,
    *,
    root_only: bool,
    attachments: str | None,
    group_paths: str | None,
    split_select_multiples: str | None,
    deleted_fields: str | None,
    filter_text: str | None,
) -> Stream:
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await require_principal(request, db)
        form = await find_form(db, project_id, xml_form_id)
        check(principal, "submission.read", project_id=project_id, form_id=form.id)
        options = ExportOptions(
            group_paths=parse_flag(group_paths, default=True),
            split_select_multiples=parse_flag(split_select_multiples),
        )
        parse_flag(deleted_fields)  # validated, not yet honoured
        job = await export_service.prepare_export(
            db,
            form,
            options,
            export_service.parse_filter(filter_text),
            media=parse_flag(attachments, default=True) and not root_only,
            root_only=root_only,
            spool_dir=rt.settings.data_dir / "tmp",
        )
        first = await export_service.fetch_page(db, job, None)
    file_name = f"{form.xml_form_id}.csv" if root_only else f"{form.xml_form_id}.csv.zip"
    media_type = CSV if root_only else ZIP
    return Stream(
        export_service.stream_export(rt, job, first),
        media_type=media_type,
        headers={
            # Explicit: a JSON router's default media type would otherwise win.
            "Content-Type": media_type,
            "Content-Disposition": _disposition(file_name),
            "Cache-Control": "no-store",
        },
    )


def _disposition(file_name: str) -> str:
    plain = file_name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(file_name, safe='')}"


@route(
    f"{_PATH}/submissions.csv.zip",
    http_method=[HttpMethod.GET, HttpMethod.POST],
    operation_id=lambda _handler, method, _path: (
        "exportSubmissionsCsvZip" if method == HttpMethod.GET else "exportSubmissionsCsvZipPost"
    ),
    status_code=200,
)
async def csv_zip(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    attachments: Attachments = None,
    group_paths: GroupPaths = None,
    split_select_multiples: SplitSelectMultiples = None,
    deleted_fields: DeletedFields = None,
    filter_text: Filter = None,
) -> Stream:
    """GET or POST, as in Central. Central's POST body carries decryption
    passphrases; encrypted forms are not decrypted here, so the body is ignored."""
    return await _export(
        request,
        project_id,
        xml_form_id,
        root_only=False,
        attachments=attachments,
        group_paths=group_paths,
        split_select_multiples=split_select_multiples,
        deleted_fields=deleted_fields,
        filter_text=filter_text,
    )


@get(f"{_PATH}/submissions.csv", operation_id="exportSubmissionsCsv")
async def get_csv(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    group_paths: GroupPaths = None,
    split_select_multiples: SplitSelectMultiples = None,
    deleted_fields: DeletedFields = None,
    filter_text: Filter = None,
) -> Stream:
    return await _export(
        request,
        project_id,
        xml_form_id,
        root_only=True,
        attachments=None,
        group_paths=group_paths,
        split_select_multiples=split_select_multiples,
        deleted_fields=deleted_fields,
        filter_text=filter_text,
    )


router = Router("/v1", route_handlers=[csv_zip, get_csv], tags=["exports"])
