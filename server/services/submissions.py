"""Submission ingest: new submissions, resent attachments, and edits (deprecatedID).

Bytes reach the BlobStore before the rows that point at them commit; a crash can
leave an orphan blob, never a row without its bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
from sqlalchemy import (
    Boolean,
    Connection,
    DateTime,
    and_,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from exports.odata import render_fields
from forms.schema import FormSchema
from forms.submission import (
    ParsedSubmission,
    SubmissionError,
    binary_values,
    parse_submission,
    with_repeats,
)
from server import problems
from server.auth import Principal
from server.db.models import (
    Form,
    FormDef,
    Project,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services.audit import encode_details, now, record_on
from server.services.blobs import store_blob_on
from server.services.entities import Author
from server.services.entity_ingest import process_edit, process_submission
from server.services.forms import schema_by_id_on
from server.services.submission_statement import create_submission_in_one_statement
from storage import BlobInfo

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
    # Hashes taken while the files arrived; files with one are moved into the store.
    hashes: dict[str, BlobInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: Outcome
    submission_id: int
    instance_id: str
    missing_attachments: list[str]


@dataclass(frozen=True, slots=True)
class Stored:
    """An attachment already in the blob store, waiting for its row."""

    info: BlobInfo
    content_type: str


# Statements of the ingest path, built once: ingest runs them hundreds of times a
# second and SQLAlchemy's statement construction would otherwise dominate.
# The form a submission names, in a project and form that are not deleted.
_LIVE_FORM = (
    Form.project_id == bindparam("project_id"),
    Form.xml_form_id == bindparam("xml_form_id"),
    Form.deleted_at.is_(None),
    Project.deleted_at.is_(None),
)
# Any stored version with the submission's instanceID, joined in so that the read
# phase is one round trip. Found by its instanceID first, in a materialized CTE
# that names no form: PostgreSQL without statistics yet (a new server's first
# minute of submissions) otherwise walked every submission of the form, 5 ms at
# 3,000 submissions.
_OF_SUBMISSION = Submission.id == SubmissionDef.submission_id
_KNOWN_VERSION = (
    select(
        SubmissionDef.id,
        SubmissionDef.xml_sha256,
        SubmissionDef.submission_id,
        # Scalar look-ups by primary key, so no plan can start from the submissions.
        select(Submission.form_id).where(_OF_SUBMISSION).scalar_subquery().label("form_id"),
        select(Submission.draft).where(_OF_SUBMISSION).scalar_subquery().label("draft"),
    )
    .where(SubmissionDef.instance_id == bindparam("instance_id"))
    .cte("known_version")
    .prefix_with("MATERIALIZED")
)
_EXISTING_VERSION = (
    _KNOWN_VERSION,
    and_(_KNOWN_VERSION.c.form_id == Form.id, _KNOWN_VERSION.c.draft == bindparam("draft")),
)
_TARGET_COLUMNS = (
    Form.id,
    Form.state,
    FormDef.id,
    FormDef.sha256,
    _KNOWN_VERSION.c.submission_id,
    _KNOWN_VERSION.c.id,
    _KNOWN_VERSION.c.xml_sha256,
)
_FIND_TARGET = (
    select(*_TARGET_COLUMNS)
    .outerjoin(
        FormDef,
        and_(
            FormDef.form_id == Form.id,
            FormDef.version == bindparam("version"),
            FormDef.published_at.is_not(None),
        ),
    )
    .join(Project, Project.id == Form.project_id)
    .outerjoin(*_EXISTING_VERSION)
    .where(*_LIVE_FORM)
)
_FIND_DRAFT_TARGET = (
    select(*_TARGET_COLUMNS)
    .outerjoin(FormDef, FormDef.id == Form.draft_def_id)
    .join(Project, Project.id == Form.project_id)
    .outerjoin(*_EXISTING_VERSION)
    .where(*_LIVE_FORM)
)
# Written as SQL because SQLAlchemy does not cache compiled ON CONFLICT statements;
# this spelling is valid on both SQLite (3.35+) and PostgreSQL.
_INSERT_SUBMISSION = text(
    "INSERT INTO submissions (form_id, instance_id, draft, submitter_id, device_id,"
    " user_agent, created_at) VALUES (:form_id, :instance_id, :draft, :submitter_id,"
    " :device_id, :user_agent, :created_at)"
    " ON CONFLICT (form_id, draft, instance_id) DO NOTHING RETURNING id"
).bindparams(
    bindparam("draft", type_=Boolean()), bindparam("created_at", type_=DateTime(timezone=True))
)
_INSERT_DEF = insert(SubmissionDef).returning(SubmissionDef.id)
_INSERT_ATTACHMENT = insert(SubmissionAttachment)

# Column widths of the identifiers a submission brings (server/db/models.py).
MAX_ID_LENGTH = 255
MAX_DEVICE_ID_LENGTH = 255
MAX_USER_AGENT_LENGTH = 512


def parse_incoming(xml: bytes) -> ParsedSubmission:
    """The submission XML, read before the form is known (repeats come later)."""
    try:
        parsed = parse_submission(xml)
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


def expected_attachments(schema: FormSchema, parsed: ParsedSubmission) -> list[str]:
    if parsed.encrypted:
        names = [*parsed.encrypted_media]
        if parsed.encrypted_xml_file:
            names.append(parsed.encrypted_xml_file)
        return names
    return binary_values(parsed.record, schema.binary_paths)


@dataclass(frozen=True, slots=True)
class Target:
    """The form version a submission belongs to, found before anything is written."""

    form_id: int
    xml_form_id: str
    form_def_id: int
    schema: FormSchema
    parsed: ParsedSubmission
    expected: list[str]
    # The version already stored under this instanceID: (submission, def, xml sha256).
    existing: tuple[int, int, str] | None


async def find_target(
    db: AsyncSession,
    *,
    project_id: int,
    parsed: ParsedSubmission,
    by: Principal,
    draft: bool = False,
    only_form: str | None = None,
) -> Target:
    """Read phase of ingest inside a caller's own transaction (the API's create and edit)."""
    return await db.run_sync(
        lambda session: find_target_on(
            session.connection(),
            project_id=project_id,
            parsed=parsed,
            by=by,
            draft=draft,
            only_form=only_form,
        )
    )


def find_target_on(
    connection: Connection,
    *,
    project_id: int,
    parsed: ParsedSubmission,
    by: Principal,
    draft: bool = False,
    only_form: str | None = None,
) -> Target:
    """Read phase of ingest: authorise, and find the form version (one query).

    The same query finds the version already stored under this instanceID, if any
    (not only the first version: Collect resends an edit whose answer it never
    got, and splits an edit's attachments like any other). A copy that arrives
    after this read loses the insert race of the write phase and is told to resend.
    """
    version = parsed.version or ""
    row = connection.execute(
        _FIND_DRAFT_TARGET if draft else _FIND_TARGET,
        {
            "project_id": project_id,
            "xml_form_id": parsed.form_id,
            "version": version,
            "draft": draft,
            "instance_id": parsed.instance_id,
        },
    ).first()
    if row is None or (only_form is not None and parsed.form_id != only_form):
        raise problems.not_found()
    form_id, state, form_def_id, xform_sha256, found_id, found_def_id, found_sha = row
    if not by.can("submission.create", project_id=project_id, form_id=form_id):
        raise problems.insufficient_rights()
    if state == "closed" and not draft:
        raise problems.not_accepting_submissions()
    if form_def_id is None:
        raise problems.draft_gone() if draft else problems.form_version_not_found(version)
    schema = schema_by_id_on(connection, form_def_id, xform_sha256)
    parsed = with_repeats(parsed, schema.repeat_paths)
    expected = expected_attachments(schema, parsed)
    _check_attachment_names(expected)
    existing = (found_id, found_def_id, found_sha) if found_id is not None else None
    return Target(form_id, parsed.form_id, form_def_id, schema, parsed, expected, existing)


async def store_attachments(rt: Runtime, target: Target, incoming: Incoming) -> dict[str, Stored]:
    """Blob phase: write the expected files to the store, before any row points at them.

    Runs outside the database transaction so no lock is held while bytes move.
    Files the form does not expect are ignored, as Central does.
    """
    stored: dict[str, Stored] = {}
    for name in target.expected:
        path = incoming.files.get(name)
        if path is not None:
            content_type = incoming.content_types.get(name, "application/octet-stream")
            known = incoming.hashes.get(name)
            info = (
                await rt.blobs.adopt_file(path, known)
                if known is not None
                else await rt.blobs.put_file(path)
            )
            stored[name] = Stored(info, content_type)
    return stored


async def receive_submission(
    rt: Runtime,
    *,
    project_id: int,
    incoming: Incoming,
    by: Principal,
    draft: bool = False,
    only_form: str | None = None,
) -> IngestResult:
    """The whole ingest of one request: parse, read phase, blob phase, write phase.

    Only the write phase waits for SQLite's writer, and it runs there whole
    (Runtime.write).
    """
    parsed = parse_incoming(incoming.xml)
    target = await rt.query(
        lambda connection: find_target_on(
            connection,
            project_id=project_id,
            parsed=parsed,
            by=by,
            draft=draft,
            only_form=only_form,
        )
    )
    stored = await store_attachments(rt, target, incoming)
    return await write_received(
        rt, target=target, incoming=incoming, stored=stored, by=by, draft=draft
    )


async def write_received(
    rt: Runtime,
    *,
    target: Target,
    incoming: Incoming,
    stored: dict[str, Stored],
    by: Principal,
    draft: bool = False,
) -> IngestResult:
    """The write phase of `receive_submission`, in a unit of work of its own."""
    return await rt.write(
        lambda connection: write_submission(
            connection, target=target, incoming=incoming, stored=stored, by=by, draft=draft
        ),
        one_statement=creates_in_one_statement(rt.engine.dialect.name, target),
    )


async def ingest_submission(
    db: AsyncSession,
    *,
    target: Target,
    incoming: Incoming,
    stored: dict[str, Stored],
    by: Principal,
    draft: bool = False,
) -> IngestResult:
    """The write phase inside a caller's own transaction (the API's create and edit).

    The write phase uses Core statements, which the session's identity map does not
    see: the columns it may change on rows the session already holds (an edited
    submission's review state, the replaced version's `current`) are expired, so
    the caller's next query reads them anew.
    """
    result = await db.run_sync(
        lambda session: write_submission(
            session.connection(),
            target=target,
            incoming=incoming,
            stored=stored,
            by=by,
            draft=draft,
        )
    )
    for held in list(db.identity_map.values()):
        columns = _WRITTEN_COLUMNS.get(type(held))
        if columns is not None:
            db.expire(held, columns)
    return result


# What write_submission may change on rows that already exist.
_WRITTEN_COLUMNS: dict[type, list[str]] = {
    Submission: ["review_state", "updated_at"],
    SubmissionDef: ["current"],
    SubmissionAttachment: ["blob_sha256", "content_type"],
}


def write_submission(
    connection: Connection,
    *,
    target: Target,
    incoming: Incoming,
    stored: dict[str, Stored],
    by: Principal,
    draft: bool = False,
) -> IngestResult:
    """Write phase: a new submission, more attachments for a known one, or an edit.

    Synchronous Core statements only, so that SQLite runs it whole on its writer
    thread (server.db.writer). On PostgreSQL a new submission is one statement
    (`creates_in_one_statement`).
    """
    parsed = target.parsed
    device = clean_header_value(incoming.device_id, MAX_DEVICE_ID_LENGTH)
    user_agent = clean_header_value(incoming.user_agent, MAX_USER_AGENT_LENGTH)
    xml_sha = hashlib.sha256(incoming.xml).hexdigest()

    if target.existing is not None:
        submission_id, def_id, same_sha = target.existing
        if same_sha != xml_sha:
            raise problems.xml_conflict()
        _store_blobs(connection, stored)
        missing, updated = _fill_attachments(connection, def_id, stored)
        if updated:
            # A resend that brings nothing new (Collect retries) is not a write.
            record_on(
                connection,
                by.actor_id,
                "submission.attachment.update",
                "submission",
                submission_id,
                {"instanceId": parsed.instance_id, "attachments": updated},
            )
        return IngestResult("attachments", submission_id, parsed.instance_id, missing)

    written = _Written(target, incoming.xml, xml_sha, device, user_agent, by)
    if parsed.deprecated_id:
        _store_blobs(connection, stored)
        return _edit(connection, written, stored, draft)
    return _create(connection, written, stored, draft)


def creates_in_one_statement(dialect: str, target: Target) -> bool:
    """Whether the write phase for `target` is a single statement on this database.

    A new submission on PostgreSQL is (server.services.submission_statement); then
    `Runtime.write` can send it without BEGIN and COMMIT.
    """
    return (
        dialect == "postgresql"
        and target.existing is None
        and not target.parsed.deprecated_id
        and target.schema.entity is None
    )


def _create(
    connection: Connection, written: _Written, stored: dict[str, Stored], draft: bool
) -> IngestResult:
    target = written.target
    parsed = target.parsed
    created = now()
    submission = {
        "form_id": target.form_id,
        "instance_id": parsed.instance_id,
        "draft": draft,
        "submitter_id": written.by.actor_id,
        "device_id": written.device,
        "user_agent": written.user_agent,
        "created_at": created,
    }
    details = {"instanceId": parsed.instance_id, "form": target.xml_form_id}
    attachments = _attachment_rows(target.expected, stored, {})
    if connection.dialect.name == "postgresql" and target.schema.entity is None:
        submission_id = create_submission_in_one_statement(
            connection,
            submission=submission,
            version=_def_values(written, created, parsed.instance_id),
            blobs=[(item.info, item.content_type) for item in stored.values()],
            attachments=[(name, sha, kind) for name, (sha, kind) in attachments.items()],
            audit_details=encode_details(details),
        )
    else:
        _store_blobs(connection, stored)
        submission_id = connection.scalar(_INSERT_SUBMISSION, submission)
        if submission_id is not None:
            def_id = _insert_def(connection, (submission_id, parsed.instance_id), written, created)
            _insert_attachment_rows(connection, def_id, attachments)
            record_on(
                connection,
                written.by.actor_id,
                "submission.create",
                "submission",
                submission_id,
                details,
            )
            if not draft:
                process_submission(
                    connection,
                    form_id=target.form_id,
                    schema=target.schema,
                    parsed=parsed,
                    submission_id=submission_id,
                    submission_def_id=def_id,
                    author=Author(written.by.actor_id, written.user_agent, def_id),
                )
    if submission_id is None:
        # Two copies of one submission raced and the other one won; this copy is
        # told to resend, which then finds it and answers as for any resend.
        raise problems.Problem(
            409.3, "This submission is being received right now. Send it again shortly."
        )
    return IngestResult("created", submission_id, parsed.instance_id, _missing(attachments))


def _store_blobs(connection: Connection, stored: dict[str, Stored]) -> None:
    for item in stored.values():
        store_blob_on(connection, item.info, item.content_type)


@dataclass(frozen=True, slots=True)
class _Written:
    """What a new version's row is made of."""

    target: Target
    xml: bytes
    xml_sha: str
    device: str | None
    user_agent: str | None
    by: Principal


def _insert_def(
    connection: Connection,
    submission: tuple[int, str],
    written: _Written,
    created: datetime,
) -> int:
    """A new version of `submission` (its id and first instanceID)."""
    submission_id, instance_id = submission
    values = _def_values(written, created, instance_id)
    def_id = connection.scalar(_INSERT_DEF, {"submission_id": submission_id, **values})
    assert def_id is not None
    return def_id


def _def_values(written: _Written, created: datetime, instance_id: str) -> dict[str, Any]:
    """A new version's row, but for the submission it belongs to.

    `instance_id` is the submission's, which its OData row is written under.
    """
    parsed = written.target.parsed
    shape, row = (
        (None, None)
        if parsed.encrypted
        else render_fields(written.target.schema, instance_id, parsed.record)
    )
    return {
        "form_def_id": written.target.form_def_id,
        "instance_id": parsed.instance_id,
        "deprecated_id": parsed.deprecated_id,
        "instance_name": parsed.instance_name,
        "xml": written.xml,
        "xml_sha256": written.xml_sha,
        "record": _encode_record(parsed.record),
        "odata_shape": shape,
        "odata_row": row,
        "encrypted": parsed.encrypted,
        "current": True,
        "submitter_id": written.by.actor_id,
        "device_id": written.device,
        "user_agent": written.user_agent,
        "created_at": created,
    }


def _edit(
    connection: Connection, written: _Written, stored: dict[str, Stored], draft: bool
) -> IngestResult:
    target = written.target
    parsed = target.parsed
    assert parsed.deprecated_id is not None
    row = connection.execute(
        select(Submission.id, Submission.instance_id, SubmissionDef.id, SubmissionDef.current)
        .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
        .where(
            Submission.form_id == target.form_id,
            Submission.draft == draft,
            SubmissionDef.instance_id == parsed.deprecated_id,
        )
    ).first()
    if row is None:
        raise problems.deprecated_id_not_found(parsed.deprecated_id)
    submission_id, submission_instance_id, old_def_id, old_current = row
    if not old_current:
        raise problems.deprecating_old_version(parsed.deprecated_id)
    # Check and set in one statement: of two phones editing the same version at
    # once, the second one's UPDATE waits for the first to commit and then finds
    # nothing current to replace (on PostgreSQL and on SQLite alike).
    replaced = connection.scalar(
        update(SubmissionDef)
        .where(SubmissionDef.id == old_def_id, SubmissionDef.current.is_(True))
        .values(current=False)
        .returning(SubmissionDef.id)
    )
    if replaced is None:
        raise problems.deprecating_old_version(parsed.deprecated_id)
    edited = now()
    connection.execute(
        update(Submission)
        .where(Submission.id == submission_id)
        .values(updated_at=edited, review_state="edited")
    )
    def_id = _insert_def(connection, (submission_id, submission_instance_id), written, edited)
    # Files the phone does not resend keep the bytes of the version it edited.
    rows = connection.execute(
        select(
            SubmissionAttachment.name,
            SubmissionAttachment.blob_sha256,
            SubmissionAttachment.content_type,
        ).where(SubmissionAttachment.submission_def_id == old_def_id)
    )
    carried = {name: (sha, content_type) for name, sha, content_type in rows}
    attachments = _attachment_rows(target.expected, stored, carried)
    _insert_attachment_rows(connection, def_id, attachments)
    record_on(
        connection,
        written.by.actor_id,
        "submission.update.version",
        "submission",
        submission_id,
        {"instanceId": parsed.instance_id, "deprecatedId": parsed.deprecated_id},
    )
    if not draft:
        process_edit(
            connection,
            form_id=target.form_id,
            schema=target.schema,
            parsed=parsed,
            submission_id=submission_id,
            submission_def_id=def_id,
            author=Author(written.by.actor_id, written.user_agent, def_id),
        )
    return IngestResult("edited", submission_id, parsed.instance_id, _missing(attachments))


# Per expected file of a new version: its blob and declared type (None, None: not received).
AttachmentRows = dict[str, tuple[str | None, str | None]]


def _attachment_rows(
    expected: Sequence[str],
    stored: dict[str, Stored],
    carried: dict[str, tuple[str | None, str | None]],
) -> AttachmentRows:
    """The blob and type of each expected file of a new version, by name."""
    return {
        name: (stored[name].info.sha256, stored[name].content_type)
        if name in stored
        else carried.get(name, (None, None))
        for name in dict.fromkeys(expected)
    }


def _insert_attachment_rows(
    connection: Connection, def_id: int, attachments: AttachmentRows
) -> None:
    if attachments:
        connection.execute(
            _INSERT_ATTACHMENT,
            [
                {
                    "submission_def_id": def_id,
                    "name": name,
                    "blob_sha256": sha,
                    "content_type": content_type,
                }
                for name, (sha, content_type) in attachments.items()
            ],
        )


def _missing(attachments: AttachmentRows) -> list[str]:
    return sorted(name for name, (sha, _) in attachments.items() if sha is None)


def _fill_attachments(
    connection: Connection, def_id: int, stored: dict[str, Stored]
) -> tuple[list[str], list[str]]:
    """A resend or the next part of a split upload: fill in the files it carries.

    Returns the names still missing and the names whose bytes this request changed.
    """
    rows = connection.execute(
        select(SubmissionAttachment.id, SubmissionAttachment.name, SubmissionAttachment.blob_sha256)
        .where(SubmissionAttachment.submission_def_id == def_id)
        .order_by(SubmissionAttachment.id)
    ).all()
    missing: list[str] = []
    updated: list[str] = []
    for row_id, name, sha in rows:
        item = stored.get(name)
        if item is not None and sha != item.info.sha256:
            connection.execute(
                update(SubmissionAttachment)
                .where(SubmissionAttachment.id == row_id)
                .values(blob_sha256=item.info.sha256, content_type=item.content_type)
            )
            sha = item.info.sha256
            updated.append(name)
        if sha is None:
            missing.append(name)
    return sorted(missing), updated
