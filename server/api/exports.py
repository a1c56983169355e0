"""Submission exports: Central's `submissions.csv.zip` (GET and POST) and `submissions.csv`,
and Homeward's `submissions.xlsx`, `submissions.parquet.zip` and `submissions.geojson`.

Everything that can fail with a proper answer (sign-in, rights, the form, the
query options, the first page of rows) is settled before the response starts;
the bytes then stream (see server.services.exports).

Query options as Central names them: `attachments` (default true; the zip only),
`groupPaths` (default true), `splitSelectMultiples` (default false),
`deletedFields` (also the columns of questions older versions had) and
`$filter` (see services.exports.parse_filter). Homeward adds `labels` (choice
labels instead of values), `language`, `personal` (keep, drop or pseudonymise
the fields the XLSForm marks personal), `start` / `end` (submission date range,
ISO dates or times; `end` is exclusive), `reviewState` (a comma-separated
list, `null` for none yet), and for GeoJSON `table` (as named in the CSV zip)
and `geoField` (a question's name or path), `formulaGuard` (CSV only: quote
cells a spreadsheet would run, OWASP's advice; off by default as in Central)
and `labelRow` (XLSX only: a second header row of question labels), and
`cleaned` (the form's cleaning log applied at read time, and written beside the
data: `cleaning-log.csv` in the CSV zip, a "cleaning log" sheet, a
`cleaning-log.parquet` member; the root CSV and GeoJSON have no place for it,
`GET .../cleaning-log.csv` gives it). Every option applies to every format where
it means something.

Personal data (server.services.personal decides): project managers and site
administrators get personal fields as they are unless they ask otherwise;
everyone else who may read submissions gets keyed pseudonyms (or nothing, with
`personal=drop`), and asking for `personal=keep` without the right is refused
(403), never silently downgraded. Unless personal fields are kept, the zip's
`media/` leaves out the files of personal questions. An export that keeps them
is audited (`submission.personal.read`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, get_args
from urllib.parse import quote

from litestar import HttpMethod, Router, get, route
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from exports import ExportError, ExportOptions
from exports.options import PersonalMode
from server import problems
from server.api.common import check
from server.requests import AnyRequest, parse_flag, require_principal, runtime_of
from server.services import cleaning as cleaning_service
from server.services import exports as export_service
from server.services.exports import ExportFormat, Where
from server.services.forms import find_form
from server.services.personal import PersonalView, audit_personal_read, personal_view

_PATH = "/projects/{project_id:int}/forms/{xml_form_id:str}"


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """The query options of an export, checked; who may see what is decided later."""

    attachments: bool
    group_paths: bool
    split_select_multiples: bool
    labels: bool
    language: str | None
    personal: PersonalMode | None
    where: Where
    deleted_fields: bool = False
    geo_table: str | None = None
    geo_field: str | None = None
    formula_guard: bool = False
    label_row: bool = False
    cleaned: bool = False
    # As given, for exports run later as jobs (which select again when they start).
    filter_text: str | None = None
    start: str | None = None
    end: str | None = None
    review_state: str | None = None


def _personal_mode(value: str | None) -> PersonalMode | None:
    if value is None or value == "":
        return None
    modes: tuple[PersonalMode, ...] = get_args(PersonalMode)
    for mode in modes:
        if value == mode:
            return mode
    raise problems.unexpected_value("personal", value, "use keep, drop or pseudonymise.")


async def export_query(
    attachments: Annotated[str | None, QueryParameter(name="attachments")] = None,
    group_paths: Annotated[str | None, QueryParameter(name="groupPaths")] = None,
    split_select_multiples: Annotated[
        str | None, QueryParameter(name="splitSelectMultiples")
    ] = None,
    deleted_fields: Annotated[str | None, QueryParameter(name="deletedFields")] = None,
    filter_text: Annotated[str | None, QueryParameter(name="$filter")] = None,
    labels: Annotated[str | None, QueryParameter(name="labels")] = None,
    language: Annotated[str | None, QueryParameter(name="language")] = None,
    personal: Annotated[str | None, QueryParameter(name="personal")] = None,
    start: Annotated[str | None, QueryParameter(name="start")] = None,
    end: Annotated[str | None, QueryParameter(name="end")] = None,
    review_state: Annotated[str | None, QueryParameter(name="reviewState")] = None,
    table: Annotated[str | None, QueryParameter(name="table")] = None,
    geo_field: Annotated[str | None, QueryParameter(name="geoField")] = None,
    formula_guard: Annotated[str | None, QueryParameter(name="formulaGuard")] = None,
    label_row: Annotated[str | None, QueryParameter(name="labelRow")] = None,
    cleaned: Annotated[str | None, QueryParameter(name="cleaned")] = None,
) -> ExportQuery:
    where = export_service.selection(filter_text, start, end, review_state)
    return ExportQuery(
        attachments=parse_flag(attachments, default=True, name="attachments"),
        group_paths=parse_flag(group_paths, default=True, name="groupPaths"),
        split_select_multiples=parse_flag(split_select_multiples, name="splitSelectMultiples"),
        labels=parse_flag(labels, name="labels"),
        language=language or None,
        personal=_personal_mode(personal),
        where=where,
        deleted_fields=parse_flag(deleted_fields, name="deletedFields"),
        geo_table=table or None,
        geo_field=geo_field or None,
        formula_guard=parse_flag(formula_guard, name="formulaGuard"),
        label_row=parse_flag(label_row, name="labelRow"),
        cleaned=parse_flag(cleaned, name="cleaned"),
        filter_text=filter_text,
        start=start,
        end=end,
        review_state=review_state,
    )


def export_options(query: ExportQuery, view: PersonalView) -> ExportOptions:
    """The writer's options; who sees personal fields is the policy's (services.personal)."""
    try:
        return ExportOptions(
            group_paths=query.group_paths,
            split_select_multiples=query.split_select_multiples,
            labels=query.labels,
            language=query.language,
            personal=view.export_mode(query.personal),
            pseudonym_key=view.key,
            escape_formulas=query.formula_guard,
            label_row=query.label_row,
        )
    except ExportError as error:
        raise problems.export_not_possible(str(error)) from error


async def _export(
    request: AnyRequest,
    project_id: int,
    xml_form_id: str,
    query: ExportQuery,
    format: ExportFormat,
) -> Stream:
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await require_principal(request, db)
        form = await find_form(db, project_id, xml_form_id)
        check(principal, "submission.read", project_id=project_id, form_id=form.id)
        view = await personal_view(db, principal, form)
        options = export_options(query, view)
        try:
            job = await export_service.prepare_export(
                db,
                form,
                options,
                query.where,
                format=format,
                media=query.attachments,
                spool_dir=rt.settings.data_dir / "tmp",
                deleted_fields=query.deleted_fields,
                geo_table=query.geo_table,
                geo_field=query.geo_field,
                hidden_files=view.files_left_out(options.personal),
            )
        except ExportError as error:  # a language the form does not have, no geo question ...
            raise problems.export_not_possible(str(error)) from error
        if query.cleaned:
            job = await cleaning_service.cleaned_export(db, form, job)
        first = await export_service.fetch_page(db, job, None)
    if view.reads_clear and options.personal == "keep":
        await audit_personal_read(rt, principal, form, "export", format=format.value)
    # Last of the checks: a refused export (429) has cost no thread.
    slot = export_service.claim_export_slot(rt)
    file_name = f"{form.xml_form_id}.{format.value}"
    return Stream(
        export_service.stream_export(rt, job, first, slot),
        media_type=format.media_type,
        headers={
            # Explicit: a JSON router's default media type would otherwise win.
            "Content-Type": format.media_type,
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
    options: NamedDependency[ExportQuery],
) -> Stream:
    """GET or POST, as in Central. Central's POST body carries decryption
    passphrases; encrypted forms are not decrypted here, so the body is ignored."""
    return await _export(request, project_id, xml_form_id, options, ExportFormat.CSV_ZIP)


def _download(fmt: ExportFormat, operation_id: str, summary: str) -> HTTPRouteHandler:
    """The GET route of one format; they differ in nothing else."""

    async def download(
        request: AnyRequest,
        project_id: FromPath[int],
        xml_form_id: FromPath[str],
        options: NamedDependency[ExportQuery],
    ) -> Stream:
        return await _export(request, project_id, xml_form_id, options, fmt)

    download.__doc__ = summary
    return get(f"{_PATH}/submissions.{fmt.value}", operation_id=operation_id)(download)


DOWNLOADS = [
    _download(ExportFormat.CSV, "exportSubmissionsCsv", "The root table alone."),
    _download(
        ExportFormat.XLSX,
        "exportSubmissionsXlsx",
        "Every table as a sheet: typed cells, a row of question labels, frozen header.",
    ),
    _download(
        ExportFormat.PARQUET,
        "exportSubmissionsParquet",
        "Every table as a typed Parquet file, in one zip.",
    ),
    _download(
        ExportFormat.GEOJSON,
        "exportSubmissionsGeoJson",
        "One table's locations as a FeatureCollection (`table`, `geoField` choose them).",
    ),
]


router = Router(
    "/v1",
    route_handlers=[csv_zip, *DOWNLOADS],
    dependencies={"options": Provide(export_query)},
    tags=["exports"],
)
