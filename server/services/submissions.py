"""Submission ingest: new submissions, resent attachments, and edits (deprecatedID).

Bytes reach the BlobStore before the rows that point at them commit; a crash can
leave an orphan blob, never a row without its bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forms.schema import FormSchema
from forms.submission import ParsedSubmission, SubmissionError, binary_values, parse_submission
from server import problems
from server.auth import Principal
from server.db.models import Form, FormDef, Submission, SubmissionAttachment, SubmissionDef
from server.runtime import Runtime
from server.services.audit import now, record
from server.services.blobs import store_blob
from server.services.forms import schema_of

_encode_record = msgspec.json.Encoder().encode

Outcome = Literal["created", "attachments", "edited"]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One submission request as Collect (or the API) sent it."""

    xml: bytes
    files: dict[str, Path]
    content_types: dict[str, str]
    device_id: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: Outcome
    submission: Submission
    missing_attachments: list[str]


# Column widths of the identifiers a submission brings (server/db/models.py).
MAX_ID_LENGTH = 255
MAX_DEVICE_ID_LENGTH = 255
MAX_USER_AGENT_LENGTH = 512


def _parse(xml: bytes, repeat_paths: frozenset[str] = frozenset()) -> ParsedSubmission:
    try:
        parsed = parse_submission(xml, repeat_paths=repeat_paths)
    except SubmissionError as error:
        raise problems.Problem(400.1, f"{error}.") from error
    for what, value in (
        ("instanceID", parsed.instance_id),
        ("deprecatedID", parsed.deprecated_id),
    ):
        if value is not None and len(value) > MAX_ID_LENGTH:
            raise problems.Problem(
                400.1,
                f"The submission's {what} is longer than {MAX_ID_LENGTH} characters: "
                f"{value[:40]!r}...",
            )
    return parsed


def _check_attachment_names(names: Sequence[str]) -> None:
    for name in names:
        if len(name) > MAX_ID_LENGTH:
            raise problems.unexpected_value(
                "attachment name", name[:40] + "...", f"longer than {MAX_ID_LENGTH} characters."
            )


def clean_header_value(value: str | None, limit: int) -> str | None:
    """A device id or user agent fit to store: printable, and cut to its column's width."""
    if value is None:
        return None
    cleaned = "".join(c for c in value if c.isprintable())[:limit]
    return cleaned or None


def _repeat_paths(schema: FormSchema) -> frozenset[str]:
    return frozenset(f.path for f in schema.fields if f.kind == "repeat")


def expected_attachments(schema: FormSchema, parsed: ParsedSubmission) -> list[str]:
    if parsed.encrypted:
        names = [*parsed.encrypted_media]
        if parsed.encrypted_xml_file:
            names.append(parsed.encrypted_xml_file)
        return names
    return binary_values(parsed.record, schema.binary_paths)


async def _form_def_for(db: AsyncSession, form: Form, version: str | None, draft: bool) -> FormDef:
    if draft:
        draft_def = await db.get(FormDef, form.draft_def_id) if form.draft_def_id else None
        if draft_def is None:
            raise problems.draft_gone()
        return draft_def
    wanted = version or ""
    form_def = await db.scalar(
        select(FormDef).where(
            FormDef.form_id == form.id,
            FormDef.version == wanted,
            FormDef.published_at.is_not(None),
        )
    )
    if form_def is None:
        raise problems.form_version_not_found(wanted)
    return form_def


async def ingest_submission(
    rt: Runtime,
    db: AsyncSession,
    *,
    project_id: int,
    incoming: Incoming,
    by: Principal,
    draft: bool = False,
    only_form: str | None = None,
) -> IngestResult:
    parsed = _parse(incoming.xml)
    incoming = dataclasses.replace(
        incoming,
        device_id=clean_header_value(incoming.device_id, MAX_DEVICE_ID_LENGTH),
        user_agent=clean_header_value(incoming.user_agent, MAX_USER_AGENT_LENGTH),
    )
    form = await db.scalar(
        select(Form).where(
            Form.project_id == project_id,
            Form.xml_form_id == parsed.form_id,
            Form.deleted_at.is_(None),
        )
    )
    if form is None or (only_form is not None and form.xml_form_id != only_form):
        raise problems.not_found()
    if not by.can("submission.create", project_id=project_id, form_id=form.id):
        raise problems.insufficient_rights()
    if form.state == "closed" and not draft:
        raise problems.not_accepting_submissions()
    form_def = await _form_def_for(db, form, parsed.version, draft)
    schema = schema_of(form_def)
    repeats = _repeat_paths(schema)
    if repeats:
        parsed = _parse(incoming.xml, repeats)
    _check_attachment_names(expected_attachments(schema, parsed))
    xml_sha = hashlib.sha256(incoming.xml).hexdigest()

    # Any version with this instanceID, not only the first: Collect resends an edit
    # whose answer it never got, and splits an edit's attachments like any other.
    found = (
        await db.execute(
            select(Submission, SubmissionDef)
            .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
            .where(
                Submission.form_id == form.id,
                Submission.draft == draft,
                SubmissionDef.instance_id == parsed.instance_id,
            )
        )
    ).first()
    if found is not None:
        existing, same = found
        if same.xml_sha256 != xml_sha:
            raise problems.xml_conflict()
        missing, updated = await _attach(rt, db, same, incoming)
        if updated:
            # A resend that brings nothing new (Collect retries) is not a write.
            await record(
                db,
                by.actor_id,
                "submission.attachment.update",
                "submission",
                existing.id,
                {"instanceId": parsed.instance_id, "attachments": updated},
            )
        return IngestResult("attachments", existing, missing)

    if parsed.deprecated_id:
        return await _edit(rt, db, form, form_def, schema, parsed, incoming, xml_sha, by, draft)

    submission = Submission(
        form_id=form.id,
        instance_id=parsed.instance_id,
        draft=draft,
        submitter_id=by.actor_id,
        device_id=incoming.device_id,
        user_agent=incoming.user_agent,
        created_at=now(),
    )
    db.add(submission)
    try:
        await db.flush()
    except IntegrityError as error:
        # Two copies of one submission raced; the loser is told to resend.
        raise problems.Problem(
            409.3, "This submission is being received right now. Send it again shortly."
        ) from error
    sub_def = _new_def(submission, form_def, parsed, incoming, xml_sha, by)
    db.add(sub_def)
    await db.flush()
    missing, _ = await _attach(rt, db, sub_def, incoming, expected_attachments(schema, parsed))
    await record(
        db,
        by.actor_id,
        "submission.create",
        "submission",
        submission.id,
        {"instanceId": parsed.instance_id, "form": form.xml_form_id},
    )
    return IngestResult("created", submission, missing)


def _new_def(
    submission: Submission,
    form_def: FormDef,
    parsed: ParsedSubmission,
    incoming: Incoming,
    xml_sha: str,
    by: Principal,
) -> SubmissionDef:
    return SubmissionDef(
        submission_id=submission.id,
        form_def_id=form_def.id,
        instance_id=parsed.instance_id,
        deprecated_id=parsed.deprecated_id,
        instance_name=parsed.instance_name,
        xml=incoming.xml,
        xml_sha256=xml_sha,
        record=_encode_record(parsed.record),
        encrypted=parsed.encrypted,
        current=True,
        submitter_id=by.actor_id,
        device_id=incoming.device_id,
        user_agent=incoming.user_agent,
        created_at=now(),
    )


async def _edit(
    rt: Runtime,
    db: AsyncSession,
    form: Form,
    form_def: FormDef,
    schema: FormSchema,
    parsed: ParsedSubmission,
    incoming: Incoming,
    xml_sha: str,
    by: Principal,
    draft: bool,
) -> IngestResult:
    assert parsed.deprecated_id is not None
    row = (
        await db.execute(
            select(Submission, SubmissionDef)
            .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
            .where(
                Submission.form_id == form.id,
                Submission.draft == draft,
                SubmissionDef.instance_id == parsed.deprecated_id,
            )
        )
    ).first()
    if row is None:
        raise problems.deprecated_id_not_found(parsed.deprecated_id)
    submission, old = row
    if not old.current:
        raise problems.deprecating_old_version(parsed.deprecated_id)
    taken = await db.scalar(
        select(SubmissionDef.id)
        .join(Submission, Submission.id == SubmissionDef.submission_id)
        .where(
            Submission.form_id == form.id,
            Submission.draft == draft,
            SubmissionDef.instance_id == parsed.instance_id,
        )
    )
    if taken is not None:
        raise problems.instance_id_conflict()
    # Check and set in one statement: of two phones editing the same version at
    # once, the second one's UPDATE waits for the first to commit and then finds
    # nothing current to replace (on PostgreSQL and on SQLite alike).
    replaced = await db.scalar(
        update(SubmissionDef)
        .where(SubmissionDef.id == old.id, SubmissionDef.current.is_(True))
        .values(current=False)
        .returning(SubmissionDef.id)
    )
    if replaced is None:
        raise problems.deprecating_old_version(parsed.deprecated_id)
    sub_def = _new_def(submission, form_def, parsed, incoming, xml_sha, by)
    db.add(sub_def)
    submission.updated_at = now()
    submission.review_state = "edited"
    await db.flush()
    expected = expected_attachments(schema, parsed)
    # Files the phone does not resend keep the bytes of the version it edited.
    carried = {
        a.name: a.blob_sha256
        for a in await db.scalars(
            select(SubmissionAttachment).where(SubmissionAttachment.submission_def_id == old.id)
        )
    }
    missing, _ = await _attach(rt, db, sub_def, incoming, expected, carried)
    await record(
        db,
        by.actor_id,
        "submission.update.version",
        "submission",
        submission.id,
        {"instanceId": parsed.instance_id, "deprecatedId": parsed.deprecated_id},
    )
    return IngestResult("edited", submission, missing)


async def _attach(
    rt: Runtime,
    db: AsyncSession,
    sub_def: SubmissionDef,
    incoming: Incoming,
    expected: Sequence[str] | None = None,
    carried: dict[str, str | None] | None = None,
) -> tuple[list[str], list[str]]:
    """Store the files this request carries for ``sub_def``.

    Returns the names still missing and the names whose bytes this request changed.

    With ``expected`` the attachment rows are created (a new version); without it the
    existing rows are filled in (a resend or the next part of a split upload).
    Files the form does not expect are ignored, as Central does.
    """
    if expected is not None:
        rows = {
            name: SubmissionAttachment(
                submission_def_id=sub_def.id,
                name=name,
                blob_sha256=(carried or {}).get(name),
            )
            for name in dict.fromkeys(expected)
        }
        db.add_all(rows.values())
    else:
        rows = {
            a.name: a
            for a in await db.scalars(
                select(SubmissionAttachment).where(
                    SubmissionAttachment.submission_def_id == sub_def.id
                )
            )
        }
    updated: list[str] = []
    for name, path in incoming.files.items():
        row = rows.get(name)
        if row is None:
            continue
        info = await rt.blobs.put_file(path)
        await store_blob(db, info, incoming.content_types.get(name, "application/octet-stream"))
        if row.blob_sha256 != info.sha256:
            row.blob_sha256 = info.sha256
            updated.append(name)
    await db.flush()
    missing = sorted(name for name, row in rows.items() if row.blob_sha256 is None)
    return missing, updated
