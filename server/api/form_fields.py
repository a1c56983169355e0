"""A form's fields (Central's ``/fields``, which ruODK reads), its draft's XForm and
XLSForm, and one published version by its version string with its files."""

from __future__ import annotations

import re
from typing import Any

from litestar import Response, Router, get
from litestar.params import FromPath, FromQuery
from msgspec import UNSET
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forms.schema import FormSchema
from server import problems
from server.api.forms import attachments_out, form_out
from server.api.shapes import FieldOut, FormAttachmentOut, FormOut
from server.api.submissions import caller_and_form
from server.db.models import Blob, Form, FormAttachment, FormDef
from server.openrosa.routes import blob_response
from server.requests import AnyRequest, parse_flag, runtime_of
from server.services.forms import schema_of
from server.services.personal import PersonalView, personal_view

F = "/projects/{project_id:int}/forms/{xml_form_id:str}"
# Central reports selects and ranks by their XForm bind type, "string".
_CENTRAL_TYPES = {"select1": "string", "select": "string", "rank": "string"}
_ODATA_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def fields_out(
    schema: FormSchema, *, odata: bool, view: PersonalView | None = None
) -> list[FieldOut]:
    """The fields as Central lists them; with `view`, those the caller sees masked
    say so (the web app then does not offer them as filters)."""

    def clean(text: str) -> str:
        return _ODATA_UNSAFE.sub("_", text) if odata else text

    return [
        FieldOut(
            name=clean(field.name),
            path="/".join(clean(step) for step in field.path.split("/")),
            type=_CENTRAL_TYPES.get(field.kind, field.kind),
            binary=True if field.kind == "binary" else None,
            select_multiple=True if field.kind == "select" else None,
            masked=True if view and view.masked and view.fields.covers(field.path) else UNSET,
        )
        for field in schema.fields
    ]


async def _version(db: AsyncSession, form: Form, version: str) -> FormDef:
    found = await db.scalar(
        select(FormDef).where(
            FormDef.form_id == form.id,
            FormDef.version == version,
            FormDef.published_at.is_not(None),
        )
    )
    if found is None:
        raise problems.not_found()
    return found


@get(F + "/fields", operation_id="listFormFields")
async def list_fields(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    odata: FromQuery[str | None] = None,
) -> list[FieldOut]:
    return await _fields(request, project_id, xml_form_id, odata, draft=False)


@get(F + "/draft/fields", operation_id="listDraftFields")
async def list_draft_fields(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    odata: FromQuery[str | None] = None,
) -> list[FieldOut]:
    return await _fields(request, project_id, xml_form_id, odata, draft=True)


async def _fields(
    request: AnyRequest, project_id: int, xml_form_id: str, odata: str | None, *, draft: bool
) -> list[FieldOut]:
    async with runtime_of(request).read() as db:
        principal, form = await caller_and_form(request, db, project_id, xml_form_id, "form.read")
        def_id = form.draft_def_id if draft else form.current_def_id
        form_def = await db.get(FormDef, def_id) if def_id else None
        if form_def is None:
            raise problems.not_found()
        view = await personal_view(db, principal, form)
        return fields_out(schema_of(form_def), odata=parse_flag(odata), view=view)


async def _definition(
    request: AnyRequest, form_def: FormDef, xml_form_id: str, extension: str
) -> Response[Any]:
    """The XForm (``.xml``) or the uploaded XLSForm (``.xlsx``/``.xls``) of one version."""
    if extension == ".xml":
        return Response(form_def.xml, media_type="application/xml; charset=utf-8")
    async with runtime_of(request).read() as db:
        blob = await db.get(Blob, form_def.xlsx_blob) if form_def.xlsx_blob else None
    if blob is None:
        raise problems.not_found()
    return await blob_response(request, blob, f"{xml_form_id}{extension}", revalidate=True)


def _split(ref: str) -> tuple[str, str | None]:
    for extension in (".xml", ".xlsx", ".xls"):
        if ref.endswith(extension):
            return ref.removesuffix(extension), extension
    return ref, None


@get(F + "/versions/{version_ref:str}", operation_id="getFormVersion")
async def get_version(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    version_ref: FromPath[str],
) -> Any:
    """One published version as JSON, or its definition as ``{version}.xml`` / ``.xlsx``."""
    version, extension = _split(version_ref)
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "form.read")
        found = await _version(db, form, version)
        if extension is None:
            shape: FormOut = form_out(form, found)
            return shape
    return await _definition(request, found, xml_form_id, extension)


# Static paths, not one {file} parameter: a parameter there would compete with the
# OData feed's {xmlFormId}.svc/... route for every GET below a form.
@get(
    [F + "/draft.xml", F + "/draft.xlsx", F + "/draft.xls"],
    operation_id=lambda _handler, _method, path: (
        "getDraftDefinition" + str(path[-1]).rsplit(".", 1)[-1].capitalize()
    ),
)
async def get_draft_definition(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
) -> Response[Any]:
    """The draft's XForm (``draft.xml``) or XLSForm (``draft.xlsx``, ``draft.xls``)."""
    _, extension = _split(request.url.path.rsplit("/", 1)[-1])
    if extension is None:
        raise problems.not_found()
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "form.read")
        draft = await db.get(FormDef, form.draft_def_id) if form.draft_def_id else None
    if draft is None:
        raise problems.not_found()
    return await _definition(request, draft, xml_form_id, extension)


@get(F + "/versions/{version_ref:str}/attachments", operation_id="listFormVersionAttachments")
async def list_version_attachments(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    version_ref: FromPath[str],
) -> list[FormAttachmentOut]:
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "form.read")
        found = await _version(db, form, version_ref)
        return await attachments_out(db, found.id)


@get(
    F + "/versions/{version_ref:str}/attachments/{name:str}",
    operation_id="getFormVersionAttachment",
)
async def get_version_attachment(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    version_ref: FromPath[str],
    name: FromPath[str],
) -> Response[Any]:
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "form.read")
        found = await _version(db, form, version_ref)
        row = (
            await db.execute(
                select(Blob, FormAttachment.content_type)
                .join(FormAttachment, FormAttachment.blob_sha256 == Blob.sha256)
                .where(FormAttachment.form_def_id == found.id, FormAttachment.name == name)
            )
        ).first()
    if row is None:
        raise problems.not_found()
    return await blob_response(request, row[0], name, content_type=row[1], revalidate=True)


@get(F + "/versions/{version_ref:str}/fields", operation_id="listFormVersionFields")
async def list_version_fields(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    version_ref: FromPath[str],
    odata: FromQuery[str | None] = None,
) -> list[FieldOut]:
    async with runtime_of(request).read() as db:
        principal, form = await caller_and_form(request, db, project_id, xml_form_id, "form.read")
        found = await _version(db, form, version_ref)
        view = await personal_view(db, principal, form)
        return fields_out(schema_of(found), odata=parse_flag(odata), view=view)


router = Router(
    "/v1",
    route_handlers=[
        list_fields,
        list_draft_fields,
        get_version,
        get_draft_definition,
        list_version_fields,
        list_version_attachments,
        get_version_attachment,
    ],
    tags=["forms"],
)
