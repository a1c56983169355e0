"""Forms: upload (XLSForm or XForm), drafts, publishing, attachments, states."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio.to_thread
import msgspec
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncSession

from forms.form_ids import CONTROL_CHARACTER_REASON, form_id_problem, has_control_character
from forms.schema import FormSchema, decode_schema, encode_schema
from forms.xform import XFormError, read_xform, set_xform_version
from forms.xlsform import XlsFormError, compile_xlsform
from server import problems
from server.auth import Principal
from server.db.models import Form, FormAttachment, FormDef, Project
from server.runtime import Runtime
from server.services import datasets
from server.services.audit import now, record
from server.services.blobs import store_blob

XLSX_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel",
        "application/vnd.ms-excel.sheet.macroenabled.12",
    }
)
XML_TYPES = frozenset({"application/xml", "text/xml"})
EXTERNAL_ITEMSETS = "itemsets.csv"
FORM_STATES = frozenset({"open", "closing", "closed"})


@dataclass(frozen=True, slots=True)
class FormUpload:
    """A form definition as it arrived: its bytes, content type and a name to go by."""

    data: bytes
    content_type: str
    form_id_fallback: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledUpload:
    xml: bytes
    schema: FormSchema
    warnings: list[str]
    xlsx: bytes | None
    xlsx_name: str | None
    # pyxform's CSV of the external_choices sheet: attached as itemsets.csv.
    itemsets_csv: bytes | None = None


async def compile_upload(upload: FormUpload) -> CompiledUpload:
    """Turn an uploaded XLSForm or XForm into XForm bytes and a schema, off the event loop."""
    content_type = upload.content_type.split(";")[0].strip().lower()
    fallback = upload.form_id_fallback
    if fallback is not None and has_control_character(fallback):
        # Caught before pyxform writes it into XML, which cannot hold it at all.
        raise problems.unexpected_value(
            "X-XlsForm-FormId-Fallback", fallback, CONTROL_CHARACTER_REASON
        )
    if content_type in XLSX_TYPES:
        extension = ".xls" if content_type == "application/vnd.ms-excel" else ".xlsx"
        name = f"{upload.form_id_fallback or 'form'}{extension}"
        try:
            compiled = await anyio.to_thread.run_sync(
                lambda: compile_xlsform(
                    upload.data, file_name=name, form_id_fallback=upload.form_id_fallback
                )
            )
        except XlsFormError as error:
            raise problems.xlsform_invalid(str(error)) from error
        xml, warnings, xlsx = compiled.xml, list(compiled.warnings), upload.data
        itemsets = compiled.itemsets_csv
    elif content_type in XML_TYPES:
        xml, warnings, xlsx, name, itemsets = upload.data, [], None, None, None
    else:
        raise problems.Problem(
            415.1,
            f"Forms are uploaded as XLSForm spreadsheets or XForm XML, not {content_type!r}.",
        )
    try:
        schema = await anyio.to_thread.run_sync(read_xform, xml)
    except XFormError as error:
        raise problems.Problem(400.1, f"The XForm could not be read: {error}") from error
    reason = form_id_problem(schema.form_id)
    if reason is not None:
        raise problems.unexpected_value("xmlFormId", schema.form_id, reason)
    return CompiledUpload(xml, schema, warnings, xlsx, name, itemsets)


# Compiled schemas by the sha256 of their XForm: a schema is a pure function of
# the XForm bytes, so an entry can never go stale, whichever database it came from.
_SCHEMAS: dict[str, FormSchema] = {}
_SCHEMA_CACHE_SIZE = 512


def schema_of(form_def: FormDef) -> FormSchema:
    schema = _SCHEMAS.get(form_def.sha256)
    if schema is None:
        schema = _remember(form_def.sha256, decode_schema(form_def.schema))
    return schema


async def schema_by_id(db: AsyncSession, form_def_id: int, xform_sha256: str) -> FormSchema:
    schema = _SCHEMAS.get(xform_sha256)
    if schema is None:
        data = await db.scalar(select(FormDef.schema).where(FormDef.id == form_def_id))
        assert data is not None
        schema = _remember(xform_sha256, decode_schema(data))
    return schema


def schema_by_id_on(connection: Connection, form_def_id: int, xform_sha256: str) -> FormSchema:
    """`schema_by_id` for synchronous units of work (Runtime.query)."""
    schema = _SCHEMAS.get(xform_sha256)
    if schema is None:
        data = connection.scalar(select(FormDef.schema).where(FormDef.id == form_def_id))
        assert data is not None
        schema = _remember(xform_sha256, decode_schema(data))
    return schema


def _remember(xform_sha256: str, schema: FormSchema) -> FormSchema:
    if len(_SCHEMAS) >= _SCHEMA_CACHE_SIZE:
        _SCHEMAS.pop(next(iter(_SCHEMAS)))
    _SCHEMAS[xform_sha256] = schema
    return schema


async def _new_def(rt: Runtime, db: AsyncSession, form: Form, compiled: CompiledUpload) -> FormDef:
    xlsx_sha = None
    if compiled.xlsx is not None:
        info = await rt.blobs.put_bytes(compiled.xlsx)
        await store_blob(db, info, _workbook_type(compiled.xlsx))
        xlsx_sha = info.sha256
    schema = compiled.schema
    form_def = FormDef(
        form_id=form.id,
        version=schema.version or "",
        title=schema.title or schema.form_id,
        xml=compiled.xml,
        md5=hashlib.md5(compiled.xml, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(compiled.xml).hexdigest(),
        xlsx_blob=xlsx_sha,
        xlsx_name=compiled.xlsx_name,
        schema=encode_schema(schema),
        public_key=schema.public_key,
        created_at=now(),
    )
    db.add(form_def)
    await db.flush()
    previous = await _attachments_by_name(db, form.draft_def_id or form.current_def_id)
    generated = await _generated_itemsets(rt, db, compiled)
    for media in schema.media:
        carried = previous.get(media.name)
        blob_sha256: str | None
        updated_at: datetime | None
        if media.name == EXTERNAL_ITEMSETS and generated is not None:
            # The spreadsheet's external_choices sheet is the file, as in Central.
            blob_sha256, updated_at = generated, now()
        else:
            # An attachment of the same name carries over to the new version.
            blob_sha256 = carried.blob_sha256 if carried else None
            updated_at = carried.updated_at if carried else None
        db.add(
            FormAttachment(
                form_def_id=form_def.id,
                name=media.name,
                kind=media.kind,
                blob_sha256=blob_sha256,
                updated_at=updated_at,
                content_type=carried.content_type if carried and blob_sha256 else None,
            )
        )
    await db.flush()
    await datasets.declare_from_form(db, form.project_id, form_def, schema, publish=False)
    await datasets.link_attachments(db, form.project_id, form_def.id)
    return form_def


async def _generated_itemsets(
    rt: Runtime, db: AsyncSession, compiled: CompiledUpload
) -> str | None:
    if compiled.itemsets_csv is None or all(
        media.name != EXTERNAL_ITEMSETS for media in compiled.schema.media
    ):
        return None
    info = await rt.blobs.put_bytes(compiled.itemsets_csv)
    await store_blob(db, info, "text/csv")
    return info.sha256


def _workbook_type(data: bytes) -> str:
    # Researchers rename old .xls files to .xlsx; serve them as what they are.
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/vnd.ms-excel"
    return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _attachments_by_name(db: AsyncSession, def_id: int | None) -> dict[str, FormAttachment]:
    if def_id is None:
        return {}
    rows = await db.scalars(select(FormAttachment).where(FormAttachment.form_def_id == def_id))
    return {row.name: row for row in rows}


def _check_warnings(compiled: CompiledUpload, ignore_warnings: bool) -> None:
    if compiled.warnings and not ignore_warnings:
        raise problems.form_warnings(compiled.warnings)


async def create_form(
    rt: Runtime,
    db: AsyncSession,
    *,
    project_id: int,
    upload: FormUpload,
    publish: bool,
    ignore_warnings: bool,
    by: Principal,
) -> Form:
    compiled = await compile_upload(upload)
    _check_warnings(compiled, ignore_warnings)
    xml_form_id = compiled.schema.form_id
    existing = await db.scalar(
        select(Form.id).where(Form.project_id == project_id, Form.xml_form_id == xml_form_id)
    )
    if existing is not None:
        raise problems.already_exists("xmlFormId", xml_form_id)
    form = Form(
        project_id=project_id,
        xml_form_id=xml_form_id,
        state="open",
        draft_token=secrets.token_hex(16),
        created_by=by.actor_id,
        created_at=now(),
    )
    db.add(form)
    await db.flush()
    form.draft_def_id = (await _new_def(rt, db, form, compiled)).id
    await record(db, by.actor_id, "form.create", "form", form.id, {"xmlFormId": xml_form_id})
    if publish:
        await publish_draft(db, form, version=None, by=by)
    return form


async def replace_draft(
    rt: Runtime,
    db: AsyncSession,
    form: Form,
    *,
    upload: FormUpload | None,
    ignore_warnings: bool,
    by: Principal,
) -> FormDef:
    """``POST .../draft``: a new draft from an upload, or a copy of the published version."""
    if upload is None:
        if form.current_def_id is None:
            raise problems.missing_parameter("form definition")
        current = await db.get(FormDef, form.current_def_id)
        assert current is not None
        compiled = CompiledUpload(current.xml, schema_of(current), [], None, None)
    else:
        compiled = await compile_upload(upload)
        _check_warnings(compiled, ignore_warnings)
        if compiled.schema.form_id != form.xml_form_id:
            raise problems.unexpected_value(
                "xmlFormId",
                compiled.schema.form_id,
                f"the draft must keep the form id '{form.xml_form_id}'.",
            )
    form_def = await _new_def(rt, db, form, compiled)
    form.draft_def_id = form_def.id
    form.draft_token = secrets.token_hex(16)
    form.updated_at = now()
    await record(db, by.actor_id, "form.update.draft.set", "form", form.id)
    return form_def


async def publish_draft(
    db: AsyncSession, form: Form, *, version: str | None, by: Principal
) -> FormDef:
    if form.draft_def_id is None:
        raise problems.not_found()
    draft = await db.get(FormDef, form.draft_def_id)
    assert draft is not None
    if version is not None and version != draft.version:
        _set_version(draft, version)
    clash = await db.scalar(
        select(FormDef.id).where(
            FormDef.form_id == form.id,
            FormDef.version == draft.version,
            FormDef.published_at.is_not(None),
        )
    )
    if clash is not None:
        raise problems.version_conflict(form.xml_form_id, draft.version)
    draft.published_at = now()
    await datasets.declare_from_form(db, form.project_id, draft, schema_of(draft), publish=True)
    await datasets.link_attachments(db, form.project_id, draft.id)
    form.current_def_id = draft.id
    form.draft_def_id = None
    form.draft_token = secrets.token_hex(16)
    form.updated_at = now()
    await record(
        db, by.actor_id, "form.update.publish", "form", form.id, {"version": draft.version}
    )
    return draft


def _set_version(form_def: FormDef, version: str) -> None:
    xml = set_xform_version(form_def.xml, version)
    form_def.xml = xml
    form_def.version = version
    form_def.md5 = hashlib.md5(xml, usedforsecurity=False).hexdigest()
    form_def.sha256 = hashlib.sha256(xml).hexdigest()
    schema = decode_schema(form_def.schema)
    form_def.schema = encode_schema(msgspec.structs.replace(schema, version=version))


async def find_form(db: AsyncSession, project_id: int, xml_form_id: str) -> Form:
    form = await db.scalar(
        select(Form)
        .join(Project, Project.id == Form.project_id)
        .where(
            Form.project_id == project_id,
            Form.xml_form_id == xml_form_id,
            Form.deleted_at.is_(None),
            Project.deleted_at.is_(None),
        )
    )
    if form is None:
        raise problems.not_found()
    return form


async def list_forms(db: AsyncSession, project_id: int) -> Sequence[Form]:
    return (
        await db.scalars(
            select(Form)
            .where(Form.project_id == project_id, Form.deleted_at.is_(None))
            .order_by(Form.xml_form_id)
        )
    ).all()


async def form_defs(db: AsyncSession, ids: set[int]) -> dict[int, FormDef]:
    if not ids:
        return {}
    return {d.id: d for d in await db.scalars(select(FormDef).where(FormDef.id.in_(ids)))}


async def attachments_of(db: AsyncSession, form_def_id: int) -> Sequence[FormAttachment]:
    return (
        await db.scalars(
            select(FormAttachment)
            .where(FormAttachment.form_def_id == form_def_id)
            .order_by(FormAttachment.name)
        )
    ).all()


async def upload_attachment(
    rt: Runtime,
    db: AsyncSession,
    form: Form,
    *,
    name: str,
    path: Path,
    content_type: str,
    by: Principal,
) -> FormAttachment:
    if form.draft_def_id is None:
        raise problems.not_found()
    attachment = await db.scalar(
        select(FormAttachment).where(
            FormAttachment.form_def_id == form.draft_def_id, FormAttachment.name == name
        )
    )
    if attachment is None:
        raise problems.not_found()
    info = await rt.blobs.put_file(path)
    await store_blob(db, info, content_type)
    attachment.blob_sha256 = info.sha256
    attachment.content_type = content_type
    attachment.dataset_id = None  # an uploaded file replaces a linked entity list
    attachment.updated_at = now()
    await record(
        db,
        by.actor_id,
        "form.attachment.update",
        "form",
        form.id,
        {"name": name, "sha": info.sha256},
    )
    return attachment


async def set_state(db: AsyncSession, form: Form, state: str, by: Principal) -> None:
    if state not in FORM_STATES:
        raise problems.unexpected_value("state", state, "use open, closing or closed.")
    form.state = state
    form.updated_at = now()
    await record(db, by.actor_id, "form.update", "form", form.id, {"state": state})


async def deleted_forms(db: AsyncSession, project_id: int) -> Sequence[Form]:
    return (
        await db.scalars(
            select(Form)
            .where(Form.project_id == project_id, Form.deleted_at.is_not(None))
            .order_by(Form.deleted_at.desc(), Form.id.desc())
        )
    ).all()


async def restore_form(db: AsyncSession, project_id: int, form_id: int, by: Principal) -> Form:
    """Undo a deletion; the form comes back with its versions and submissions."""
    form = await db.get(Form, form_id)
    if form is None or form.project_id != project_id or form.deleted_at is None:
        raise problems.not_found()
    form.deleted_at = None
    form.updated_at = now()
    await record(db, by.actor_id, "form.restore", "form", form.id)
    return form
