"""Retention: personal answers pseudonymised in place once a project's months are up.

A project sets `retentionMonths` (PATCH, null: keep). `homeward retention`
(from cron) and the server's own hourly run take every submission received
more than that many calendar months ago whose personal answers are still
there, and rewrite each of its versions as a viewer sees them: the stored
XML, the parsed record and the stored OData row get keyed pseudonyms (or
nothing, for numbers, dates and locations), the instance name goes, and the
files of personal questions are unlinked and, once no row points at them,
deleted from the blob store. Each submission is marked
(`personal_expired_at`) so it is rewritten once.

The rest of the submission (non-personal answers, dates, review state) stays,
so counts and reports still work. The XML's stored sha256 is kept: it is how a
phone's resend of the same submission is recognised (and answered as a
duplicate instead of a conflict); it is a hash of the whole document, not of
any one answer. Encrypted versions are stored as sent and cannot be read, so
they are left as they are.

What derives from those answers is rewritten or dropped with them: the
cleaning log's old and new values of personal fields get the same
pseudonyms, and the form's analysis copy and kept export-job files (which
hold the answers as they were) are forgotten; the worker writes the copy
again from the rewritten rows.

One audit entry per form and run (`submission.personal.expire`) says how many
submissions were rewritten, never what they held.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import re
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from exports.odata.rendered import render_fields
from forms.personal import (
    INSTANCE_NAME,
    PersonalFields,
    mask_record,
    mask_xml,
    personal_file_names,
    pseudonym,
)
from server.db.models import (
    CheckFinding,
    CleaningEntry,
    Form,
    FormDef,
    Project,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services.analysis import forget_copies
from server.services.audit import now, record
from server.services.export_runs import forget_runs
from server.services.forms import schema_by_id
from server.services.personal import form_personal_fields
from server.services.unused_blobs import remove_unused_files

__all__ = [
    "EXPIRE_ACTION",
    "Expired",
    "expire_personal_answers",
    "months_before",
    "run_retention_periodically",
]

EXPIRE_ACTION = "submission.personal.expire"
BATCH = 200

_decode_record = msgspec.json.Decoder(dict[str, object]).decode
_encode = msgspec.json.Encoder().encode
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Expired:
    submissions: int
    files: int


def months_before(at: datetime, months: int) -> datetime:
    """The same moment `months` calendar months earlier (the 31st becomes the month's last day)."""
    index = at.year * 12 + at.month - 1 - months
    year, month = divmod(index, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)


async def expire_personal_answers(rt: Runtime, *, at: datetime | None = None) -> Expired:
    """Pseudonymise the personal answers every project keeps past its retention."""
    at = at or now()
    async with rt.read() as db:
        projects = (
            await db.execute(
                select(Project.id, Project.retention_months, Project.pseudonym_secret).where(
                    Project.retention_months.is_not(None), Project.deleted_at.is_(None)
                )
            )
        ).all()
    total, files = 0, set[str]()
    for project_id, months, secret in projects:
        cutoff = months_before(at, int(months))
        async with rt.read() as db:
            forms = (await db.scalars(select(Form.id).where(Form.project_id == project_id))).all()
        for form_id in forms:
            done, unlinked = await _expire_form(rt, form_id, cutoff, secret.encode(), at)
            total += done
            files |= unlinked
            if done:
                await _forget_derived(rt, form_id)
                async with rt.transaction() as db:
                    await record(
                        db,
                        None,
                        EXPIRE_ACTION,
                        "form",
                        form_id,
                        {"submissions": done, "retentionMonths": months},
                    )
    removed = await remove_unused_files(rt, files)
    return Expired(total, removed)


async def _forget_derived(rt: Runtime, form_id: int) -> None:
    """The form's analysis copy and kept export files still hold the answers in clear."""
    async with rt.transaction() as db:
        objects = await forget_copies(db, [form_id]) + await forget_runs(db, [form_id])
    for name in objects:
        await rt.blobs.delete_object(name)


async def _expire_form(
    rt: Runtime, form_id: int, cutoff: datetime, key: bytes, at: datetime
) -> tuple[int, set[str]]:
    async with rt.read() as db:
        fields = await form_personal_fields(db, form_id)
    if not fields.any:
        return 0, set()
    done, files = 0, set[str]()
    while True:
        async with rt.transaction() as db:
            due = (
                await db.scalars(
                    select(Submission.id)
                    .where(
                        Submission.form_id == form_id,
                        Submission.created_at < cutoff,
                        Submission.personal_expired_at.is_(None),
                    )
                    .order_by(Submission.id)
                    .limit(BATCH)
                    # Two app processes may run this at once: each takes other rows
                    # (PostgreSQL; SQLite has one writer), so none is rewritten twice.
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for submission_id in due:
                files |= await _expire_submission(db, submission_id, fields, key)
            if due:
                await db.execute(
                    update(Submission).where(Submission.id.in_(due)).values(personal_expired_at=at)
                )
        done += len(due)
        if len(due) < BATCH:
            return done, files


async def _expire_submission(
    db: AsyncSession, submission_id: int, fields: PersonalFields, key: bytes
) -> set[str]:
    """Rewrite every readable version; returns the files it unlinked."""
    first = await db.scalar(select(Submission.instance_id).where(Submission.id == submission_id))
    versions = (
        await db.execute(
            select(SubmissionDef, FormDef.sha256)
            .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
            .where(SubmissionDef.submission_id == submission_id, SubmissionDef.encrypted.is_(False))
        )
    ).all()
    files: set[str] = set()
    for version, xform_sha in versions:
        answers = _decode_record(version.record)
        personal_files = personal_file_names(answers, fields)
        masked = mask_record(answers, fields, key)
        version.xml = mask_xml(version.xml, fields, key)
        version.record = _encode(masked)
        if fields.covers(INSTANCE_NAME):
            version.instance_name = None
        schema = await schema_by_id(db, version.form_def_id, xform_sha)
        version.odata_shape, version.odata_row = render_fields(schema, first or "", masked)
        if personal_files:
            attachments = await db.scalars(
                select(SubmissionAttachment).where(
                    SubmissionAttachment.submission_def_id == version.id,
                    SubmissionAttachment.name.in_(personal_files),
                )
            )
            for attachment in attachments:
                if attachment.blob_sha256 is not None:
                    files.add(attachment.blob_sha256)
                attachment.blob_sha256 = None
    findings = await db.scalars(
        select(CheckFinding).where(CheckFinding.submission_id == submission_id)
    )
    for finding in findings:
        if finding.field is not None and fields.covers(re.sub(r"\[[0-9]+\]", "", finding.field)):
            finding.value = _masked_value(finding.value, finding.field, fields, key)
            finding.suggested_value = _masked_value(
                finding.suggested_value, finding.field, fields, key
            )
            finding.message = f"{finding.kind} finding on a personal answer (expired)"
    entries = await db.scalars(
        select(CleaningEntry).where(CleaningEntry.submission_id == submission_id)
    )
    for entry in entries:
        if entry.field is not None and fields.covers(re.sub(r"\[[0-9]+\]", "", entry.field)):
            entry.old_value = _masked_value(entry.old_value, entry.field, fields, key)
            entry.new_value = _masked_value(entry.new_value, entry.field, fields, key)
    await db.flush()
    return files


def _masked_value(value: str | None, field: str, fields: PersonalFields, key: bytes) -> str | None:
    if not value:
        return value
    path = re.sub(r"\[[0-9]+\]", "", field)
    return None if path in fields.withheld else pseudonym(key, value)


async def run_retention_periodically(rt: Runtime, *, every: float = 3600.0) -> None:
    """The server's own run of the job: hourly, so no cron line is needed (cron may add one)."""
    while True:
        await asyncio.sleep(every)
        try:
            expired = await expire_personal_answers(rt)
        except Exception:  # a failed run is retried at the next one; the server goes on
            log.exception("retention run failed")
            continue
        if expired.submissions:
            log.info("retention: %d submissions pseudonymised", expired.submissions)
