"""Forms, drafts, versions and form attachments, on Central's paths."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

from litestar import Response, Router, delete, get, patch, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api import odata
from server.api.common import ExtendedHeader, actors_by_id, check, is_extended
from server.api.shapes import (
    FormAttachmentOut,
    FormOut,
    FormPatch,
    ReviewStatesOut,
    Success,
    iso,
)
from server.auth import Principal, derive_draft_token
from server.db.models import Blob, Form, FormAttachment, FormDef
from server.openrosa.routes import blob_response, serve_form_attachment, serve_form_xml
from server.requests import AnyRequest, parse_flag, require_principal, runtime_of
from server.services import forms as form_service
from server.services import stats
from server.services.audit import now, record
from server.services.forms import schema_of
from server.services.projects import get_project
from server.services.rendered_rows import render_form_rows_after_publish

IgnoreWarnings = Annotated[str | None, QueryParameter(name="ignoreWarnings")]
FormIdFallback = Annotated[str | None, HeaderParameter(name="X-XlsForm-FormId-Fallback")]


def form_out(form: Form, form_def: FormDef | None, *, draft_secret: str | None = None) -> FormOut:
    """``draft_secret``: the deployment secret, to show a draft's test token."""
    draft_token = (
        derive_draft_token(draft_secret, form.draft_token)
        if draft_secret is not None and form.draft_token
        else None
    )
    return FormOut(
        project_id=form.project_id,
        xml_form_id=form.xml_form_id,
        name=form_def.title if form_def else None,
        version=form_def.version if form_def else "",
        enketo_id=None,
        enketo_once_id=None,
        hash=form_def.md5 if form_def else "",
        key_id=None,
        state=form.state,
        created_at=iso(form.created_at) or "",
        updated_at=iso(form.updated_at),
        published_at=iso(form_def.published_at) if form_def else None,
        draft_token=draft_token,
        entity_related=form_def is not None and schema_of(form_def).entity is not None,
    )


async def _def_of(db: AsyncSession, form: Form) -> FormDef | None:
    def_id = form.current_def_id or form.draft_def_id
    return await db.get(FormDef, def_id) if def_id else None


async def _caller_and_form(
    request: AnyRequest, db: AsyncSession, project_id: int, xml_form_id: str, verb: str
) -> tuple[Principal, Form]:
    principal = await require_principal(request, db)
    form = await form_service.find_form(db, project_id, xml_form_id)
    check(principal, verb, project_id=project_id, form_id=form.id)
    return principal, form


async def forms_out(db: AsyncSession, found: Sequence[Form], *, extended: bool) -> list[FormOut]:
    def_ids = {f.current_def_id or f.draft_def_id for f in found}
    defs = await form_service.form_defs(db, {i for i in def_ids if i is not None})
    shapes = [form_out(f, defs.get(f.current_def_id or f.draft_def_id or 0)) for f in found]
    if extended:
        counts = await stats.form_stats(db, (f.id for f in found))
        creators = await actors_by_id(db, (f.created_by for f in found))
        for form, shape in zip(found, shapes, strict=True):
            numbers = counts.get(form.id, stats.FormStats())
            shape.submissions = numbers.submissions
            shape.last_submission = iso(numbers.last_submission)
            shape.review_states = ReviewStatesOut(
                received=numbers.received, has_issues=numbers.has_issues, edited=numbers.edited
            )
            shape.public_links = numbers.public_links
            shape.created_by = creators.get(form.created_by) if form.created_by else None
            form_def = defs.get(form.current_def_id or form.draft_def_id or 0)
            shape.excel_content_type = (
                _excel_type(form_def.xlsx_name) if form_def and form_def.xlsx_name else None
            )
    return shapes


def _excel_type(name: str) -> str:
    return "application/vnd.ms-excel" if name.endswith(".xls") else XLSX


@get("/projects/{project_id:int}/forms", operation_id="listForms")
async def list_forms(
    request: AnyRequest,
    project_id: FromPath[int],
    extended: ExtendedHeader = None,
    deleted: FromQuery[str | None] = None,
) -> list[FormOut]:
    """The project's forms; ``?deleted=true`` lists deleted ones (with the ``id`` restore takes)."""
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        check(principal, "form.list", project_id=project_id)
        await get_project(db, project_id)
        if parse_flag(deleted):
            check(principal, "form.restore", project_id=project_id)
            gone = await form_service.deleted_forms(db, project_id)
            shapes = await forms_out(db, gone, extended=is_extended(extended))
            for form, shape in zip(gone, shapes, strict=True):
                shape.id = form.id
                shape.deleted_at = iso(form.deleted_at)
            return shapes
        found = await form_service.list_forms(db, project_id)
        visible = [
            f for f in found if principal.can("form.read", project_id=project_id, form_id=f.id)
        ]
        return await forms_out(db, visible, extended=is_extended(extended))


@post(
    "/projects/{project_id:int}/forms/{form_id:int}/restore",
    operation_id="restoreForm",
    status_code=200,
)
async def restore_form(
    request: AnyRequest, project_id: FromPath[int], form_id: FromPath[int]
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "form.restore", project_id=project_id)
        await form_service.restore_form(db, project_id, form_id, principal)
    return Success()


def upload_of(
    request: AnyRequest, body: bytes, fallback_header: str | None, *, default_id: str | None = None
) -> form_service.FormUpload:
    # Header values are ASCII, so clients (pyodk, Central's front end) send the
    # fallback id percent-encoded, and Central decodes it: so do we.
    fallback = unquote(fallback_header) if fallback_header else default_id
    return form_service.FormUpload(
        data=body,
        content_type=request.headers.get("content-type", "application/xml"),
        form_id_fallback=fallback,
    )


@post("/projects/{project_id:int}/forms", operation_id="createForm", status_code=200)
async def create_form(
    request: AnyRequest,
    project_id: FromPath[int],
    publish: FromQuery[str | None] = None,
    ignore_warnings: IgnoreWarnings = None,
    form_id_fallback: FormIdFallback = None,
) -> FormOut:
    rt = runtime_of(request)
    body = await request.body()
    if not body:
        raise problems.missing_parameter("form definition (request body)")
    async with rt.transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "form.create", project_id=project_id)
        await get_project(db, project_id)
        form = await form_service.create_form(
            rt,
            db,
            project_id=project_id,
            upload=upload_of(request, body, form_id_fallback),
            publish=parse_flag(publish),
            ignore_warnings=parse_flag(ignore_warnings),
            by=principal,
        )
        return form_out(form, await _def_of(db, form))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@get("/projects/{project_id:int}/forms/{form_ref:str}", operation_id="getForm")
async def get_form(
    request: AnyRequest,
    project_id: FromPath[int],
    form_ref: FromPath[str],
    extended: ExtendedHeader = None,
) -> Any:
    """A form as JSON, its definition (``{id}.xml``, ``.xlsx``, ``.xls``), or its OData
    service document (``{id}.svc``, what Power BI and Excel read first)."""
    if form_ref.endswith(".svc"):
        return await odata.service_document(request, project_id, form_ref.removesuffix(".svc"))
    if form_ref.endswith(".xml"):
        return await serve_form_xml(request, project_id, form_ref.removesuffix(".xml"))
    for extension in (".xlsx", ".xls"):
        if form_ref.endswith(extension):
            return await _xlsform_file(
                request, project_id, form_ref.removesuffix(extension), extension
            )
    async with runtime_of(request).read() as db:
        _, form = await _caller_and_form(request, db, project_id, form_ref, "form.read")
        return (await forms_out(db, [form], extended=is_extended(extended)))[0]


async def _xlsform_file(
    request: AnyRequest, project_id: int, xml_form_id: str, extension: str
) -> Response[Any]:
    async with runtime_of(request).transaction() as db:
        _, form = await _caller_and_form(request, db, project_id, xml_form_id, "form.read")
        form_def = await _def_of(db, form)
        blob = await db.get(Blob, form_def.xlsx_blob) if form_def and form_def.xlsx_blob else None
    if blob is None:
        raise problems.not_found()
    return await blob_response(request, blob, f"{xml_form_id}{extension}", revalidate=True)


@patch("/projects/{project_id:int}/forms/{xml_form_id:str}", operation_id="updateForm")
async def update_form(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    data: JSONBody[FormPatch],
) -> FormOut:
    async with runtime_of(request).transaction() as db:
        principal, form = await _caller_and_form(
            request, db, project_id, xml_form_id, "form.update"
        )
        if data.state is not None:
            await form_service.set_state(db, form, data.state, principal)
        return form_out(form, await _def_of(db, form))


@delete(
    "/projects/{project_id:int}/forms/{xml_form_id:str}", operation_id="deleteForm", status_code=200
)
async def delete_form(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal, form = await _caller_and_form(
            request, db, project_id, xml_form_id, "form.delete"
        )
        form.deleted_at = now()
        await record(db, principal.actor_id, "form.delete", "form", form.id)
    return Success()


@post(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft",
    operation_id="createDraft",
    status_code=200,
)
async def create_draft(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    ignore_warnings: IgnoreWarnings = None,
    form_id_fallback: FormIdFallback = None,
) -> Success:
    rt = runtime_of(request)
    body = await request.body()
    async with rt.transaction() as db:
        principal, form = await _caller_and_form(
            request, db, project_id, xml_form_id, "form.update"
        )
        upload = (
            upload_of(request, body, form_id_fallback, default_id=xml_form_id) if body else None
        )
        await form_service.replace_draft(
            rt, db, form, upload=upload, ignore_warnings=parse_flag(ignore_warnings), by=principal
        )
    return Success()


@get("/projects/{project_id:int}/forms/{xml_form_id:str}/draft", operation_id="getDraft")
async def get_draft(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> FormOut:
    rt = runtime_of(request)
    async with rt.transaction() as db:
        _, form = await _caller_and_form(request, db, project_id, xml_form_id, "form.read")
        draft = await db.get(FormDef, form.draft_def_id) if form.draft_def_id else None
        if draft is None:
            raise problems.not_found()
        return form_out(form, draft, draft_secret=rt.settings.secret_key)


@post(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/publish",
    operation_id="publishDraft",
    status_code=200,
)
async def publish(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    version: FromQuery[str | None] = None,
) -> Response[Success]:
    rt = runtime_of(request)
    async with rt.transaction() as db:
        principal, form = await _caller_and_form(
            request, db, project_id, xml_form_id, "form.update"
        )
        await form_service.publish_draft(db, form, version=version, by=principal)
    # Rows stored for the old fields would otherwise be written from their
    # records on every OData read (server.services.rendered_rows).
    rewrite = BackgroundTask(render_form_rows_after_publish, rt, form.id)
    return Response(Success(), background=rewrite)


@delete(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft",
    operation_id="deleteDraft",
    status_code=200,
)
async def delete_draft(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal, form = await _caller_and_form(
            request, db, project_id, xml_form_id, "form.update"
        )
        if form.draft_def_id is None:
            raise problems.not_found()
        if form.current_def_id is None:
            raise problems.no_published_version()
        form.draft_def_id = None
        await record(db, principal.actor_id, "form.update.draft.delete", "form", form.id)
    return Success()


@get("/projects/{project_id:int}/forms/{xml_form_id:str}/versions", operation_id="listVersions")
async def list_versions(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[FormOut]:
    async with runtime_of(request).transaction() as db:
        _, form = await _caller_and_form(request, db, project_id, xml_form_id, "form.read")
        defs = await db.scalars(
            select(FormDef)
            .where(FormDef.form_id == form.id, FormDef.published_at.is_not(None))
            .order_by(FormDef.published_at.desc(), FormDef.id.desc())
        )
        return [form_out(form, d) for d in defs]


async def attachments_out(db: AsyncSession, def_id: int | None) -> list[FormAttachmentOut]:
    if def_id is None:
        raise problems.not_found()
    rows = await db.execute(
        select(FormAttachment, Blob.md5)
        .outerjoin(Blob, Blob.sha256 == FormAttachment.blob_sha256)
        .where(FormAttachment.form_def_id == def_id)
        .order_by(FormAttachment.name)
    )
    return [
        FormAttachmentOut(
            name=a.name,
            type=a.kind,
            exists=a.blob_sha256 is not None or a.dataset_id is not None,
            blob_exists=a.blob_sha256 is not None,
            dataset_exists=a.dataset_id is not None,
            updated_at=iso(a.updated_at),
            hash=md5,
        )
        for a, md5 in rows
    ]


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/attachments",
    operation_id="listFormAttachments",
)
async def list_attachments(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[FormAttachmentOut]:
    async with runtime_of(request).transaction() as db:
        _, form = await _caller_and_form(request, db, project_id, xml_form_id, "form.read")
        return await attachments_out(db, form.current_def_id)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/attachments",
    operation_id="listDraftAttachments",
)
async def list_draft_attachments(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[FormAttachmentOut]:
    async with runtime_of(request).transaction() as db:
        _, form = await _caller_and_form(request, db, project_id, xml_form_id, "form.read")
        return await attachments_out(db, form.draft_def_id)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/attachments/{name:str}",
    operation_id="getFormAttachment",
)
async def get_attachment(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    return await serve_form_attachment(request, project_id, xml_form_id, name)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/attachments/{name:str}",
    operation_id="getDraftAttachment",
)
async def get_draft_attachment(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    async with runtime_of(request).transaction() as db:
        _, form = await _caller_and_form(request, db, project_id, xml_form_id, "form.read")
        row = (
            await db.execute(
                select(Blob, FormAttachment.content_type)
                .join(FormAttachment, FormAttachment.blob_sha256 == Blob.sha256)
                .where(FormAttachment.form_def_id == form.draft_def_id, FormAttachment.name == name)
            )
        ).first()
    if row is None:
        raise problems.not_found()
    return await blob_response(request, row[0], name, content_type=row[1], revalidate=True)


@post(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/attachments/{name:str}",
    operation_id="uploadDraftAttachment",
    status_code=200,
)
async def upload_attachment(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str], name: FromPath[str]
) -> FormAttachmentOut:
    rt = runtime_of(request)
    with tempfile.TemporaryDirectory(prefix="homeward-attachment-") as spool:
        path = Path(spool) / "upload"
        with path.open("wb") as sink:
            async for chunk in request.stream():
                sink.write(chunk)
        async with rt.transaction() as db:
            principal, form = await _caller_and_form(
                request, db, project_id, xml_form_id, "form.update"
            )
            await form_service.upload_attachment(
                rt,
                db,
                form,
                name=name,
                path=path,
                content_type=request.headers.get("content-type", "application/octet-stream"),
                by=principal,
            )
            # Central answers with the attachment as it now is (its hash included).
            [stored] = [a for a in await attachments_out(db, form.draft_def_id) if a.name == name]
    return stored


def router(max_body: int) -> Router:
    return Router(
        "/v1",
        route_handlers=[
            list_forms,
            restore_form,
            create_form,
            get_form,
            update_form,
            delete_form,
            create_draft,
            get_draft,
            publish,
            delete_draft,
            list_versions,
            list_attachments,
            list_draft_attachments,
            get_attachment,
            get_draft_attachment,
            upload_attachment,
        ],
        request_max_body_size=max_body,
        tags=["forms"],
    )
