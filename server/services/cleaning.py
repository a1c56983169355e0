"""A form's cleaning log: storing, listing and removing entries, and reading it for exports.

Entries never touch the stored submissions; cleaned exports apply them at read
time (exports.cleaning). Every write is audited ("cleaning.create",
"cleaning.delete", target the form). Changes made through Central's
submission edit API are not stored here: the log shows them as entries
derived from the versions (source "edit", reason "edited submission"), so the
versions stay the one record of an edit and the log cannot drift from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import pairwise

import anyio.to_thread
import msgspec
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from exports import ExportOptions
from exports.checks import CheckReport, CheckRound, CheckSettings
from exports.cleaning import (
    CleaningChange,
    CleaningError,
    ProposedChange,
    apply_cleaning,
    check_field,
    value_at,
)
from exports.records import ExportRecord
from forms.schema import FormSchema
from forms.xform import XFormError, bind_constraints
from server import problems
from server.auth import Principal
from server.db.models import (
    Actor,
    CleaningEntry,
    Form,
    FormDef,
    Submission,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services import exports as export_service
from server.services.analysis_export import segment_batches, usable_copy
from server.services.audit import now, record
from server.services.exports import ExportJob
from server.services.forms import schema_of

__all__ = [
    "EDIT_REASON",
    "add_entries",
    "cleaned_export",
    "delete_entry",
    "edit_changes",
    "form_schema",
    "run_form_checks",
    "stored_changes",
]

EDIT_REASON = "edited submission"
_decode = msgspec.json.Decoder(dict[str, object]).decode


async def cleaned_export(db: AsyncSession, form: Form, job: ExportJob) -> ExportJob:
    """The export job with the stored entries to apply and the whole log
    (entries and edits, oldest first) to write beside the data."""
    stored = await stored_changes(db, form)
    edits = await edit_changes(db, form)
    log = sorted([*stored, *edits], key=lambda change: change.when)
    return replace(job, cleaning=tuple(stored), cleaning_log=tuple(log))


async def run_form_checks(rt: Runtime, form: Form, settings: CheckSettings) -> CheckReport:
    """The checks over the form's current submissions, with the cleaning log applied
    (an accepted suggestion is not suggested again; a removed duplicate is gone).
    settings.since limits the suggestions to submissions received from then on.

    Batches are read as an export reads them (the analysis copy, and the row
    store beyond it) and checked in a worker thread as they come, then let go:
    the round holds what the checks need across batches, not the tables. A
    second read happens only when an outlier field has more findings, or the
    duplicate check more people, than the round holds (exports.checks.round).
    """
    async with rt.read() as db:
        if form.current_def_id is None:
            raise problems.not_found()
        form_def = await db.get(FormDef, form.current_def_id)
        if form_def is None:
            raise problems.not_found()
        schema = schema_of(form_def)
        try:
            constraints = bind_constraints(form_def.xml)
        except XFormError:
            constraints = {}
        try:
            checks = CheckRound(schema, settings, constraints)
        except ValueError as error:  # an unknown check or field named in the settings
            raise problems.cleaning_not_possible(str(error)) from error
        job = await export_service.prepare_export(
            db, form, ExportOptions(), (), media=False, spool_dir=rt.settings.data_dir / "tmp"
        )
        log = await stored_changes(db, form)
        # A large form's submissions are read from its analysis copy (Polars, no
        # record decoded) when the copy holds what the checks read.
        copy = await usable_copy(db, form, checks.plan)
    tail = job
    if copy is not None:
        tail = replace(job, where=(*job.where, Submission.id > copy.copied_through), copy=None)

    async def read(take: Callable[[Sequence[ExportRecord]], None]) -> None:
        before: int | None = None
        while True:
            async with rt.read() as db:
                page = await export_service.fetch_page(db, tail, before)
            for cleaned in apply_cleaning([page.records], log):
                await anyio.to_thread.run_sync(take, cleaned)
            if not page.more:
                break
            before = page.last_id
        if copy is not None:
            async for batch in segment_batches(rt, copy, job.where):
                for cleaned in apply_cleaning([batch], log):
                    await anyio.to_thread.run_sync(take, cleaned)

    await read(checks.add)
    if await anyio.to_thread.run_sync(checks.needs_second_pass):
        await read(checks.add_again)
    return await anyio.to_thread.run_sync(checks.report)


async def form_schema(db: AsyncSession, form: Form) -> FormSchema:
    """The fields entries may name: the form's current published version."""
    if form.current_def_id is None:
        raise problems.not_found()
    form_def = await db.get(FormDef, form.current_def_id)
    if form_def is None:
        raise problems.not_found()
    return schema_of(form_def)


async def stored_changes(db: AsyncSession, form: Form) -> list[CleaningChange]:
    """The form's stored entries, oldest first, with who made them.

    Read as columns, not entities: a cleaned export reads the whole log, and
    10,000 ORM objects cost a cleaned export 0.26 CPU s.
    """
    rows = await db.execute(
        select(
            CleaningEntry.id,
            CleaningEntry.instance_id,
            CleaningEntry.field,
            CleaningEntry.old_value,
            CleaningEntry.new_value,
            CleaningEntry.reason,
            Actor.display_name,
            CleaningEntry.created_at,
            CleaningEntry.source,
        )
        .outerjoin(Actor, Actor.id == CleaningEntry.actor_id)
        .join(Submission, Submission.id == CleaningEntry.submission_id)
        .where(CleaningEntry.form_id == form.id, Submission.deleted_at.is_(None))
        .order_by(CleaningEntry.id)
    )
    return [
        CleaningChange(
            id=row[0],
            instance_id=row[1],
            field=row[2],
            old_value=row[3],
            new_value=row[4],
            reason=row[5],
            who=row[6],
            when=row[7],
            source=row[8],
        )
        for row in rows
    ]


def _change(entry: CleaningEntry, who: str | None) -> CleaningChange:
    return CleaningChange(
        id=entry.id,
        instance_id=entry.instance_id,
        field=entry.field,
        old_value=entry.old_value,
        new_value=entry.new_value,
        reason=entry.reason,
        who=who,
        when=entry.created_at,
        source=entry.source,
    )


async def edit_changes(db: AsyncSession, form: Form) -> list[CleaningChange]:
    """Answers changed by edits through the submission API, one entry per changed answer.

    Only submissions with more than one version are read.
    """
    edited = (
        select(SubmissionDef.submission_id)
        .join(Submission, Submission.id == SubmissionDef.submission_id)
        .where(
            Submission.form_id == form.id,
            Submission.draft.is_(False),
            Submission.deleted_at.is_(None),
        )
        .group_by(SubmissionDef.submission_id)
        .having(func.count() > 1)
    )
    rows = await db.execute(
        select(Submission.instance_id, SubmissionDef, Actor.display_name)
        .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
        .outerjoin(Actor, Actor.id == SubmissionDef.submitter_id)
        .where(Submission.id.in_(edited))
        .order_by(Submission.id, SubmissionDef.created_at, SubmissionDef.id)
    )
    versions: dict[str, list[tuple[SubmissionDef, str | None]]] = {}
    for instance_id, version, who in rows:
        versions.setdefault(instance_id, []).append((version, who))
    changes = []
    for instance_id, history in versions.items():
        for (before, _), (after, who) in pairwise(history):
            old, new = _answers(before.record), _answers(after.record)
            for field in [*old, *(f for f in new if f not in old)]:
                if old.get(field) != new.get(field) and field != "/meta/instanceID":
                    changes.append(
                        CleaningChange(
                            instance_id=instance_id,
                            field=field,
                            old_value=old.get(field),
                            new_value=new.get(field),
                            reason=EDIT_REASON,
                            who=who,
                            when=after.created_at,
                            source="edit",
                        )
                    )
    changes.sort(key=lambda change: change.when)
    return changes


def _answers(stored: bytes | None) -> dict[str, str]:
    """Every answer of a record by field path, repeat instances numbered from 1."""
    found: dict[str, str] = {}

    def walk(node: object, path: str) -> None:
        if isinstance(node, str):
            found[path] = node
        elif isinstance(node, dict):
            for name, child in node.items():
                if isinstance(child, list):
                    for index, item in enumerate(child, start=1):
                        walk(item, f"{path}/{name}[{index}]")
                else:
                    walk(child, f"{path}/{name}")

    walk(_decode(stored) if stored else {}, "")
    found.pop("/meta/deprecatedID", None)
    return found


async def add_entries(
    db: AsyncSession, form: Form, proposed: Sequence[ProposedChange], by: Principal
) -> list[CleaningChange]:
    """Store entries, all or none: each is checked against the form and the submission.

    The old value is read from the submission's current version; an oldValue the
    asker gave must match it (409), so nobody cleans an answer they have not seen.
    """
    schema = await form_schema(db, form)
    wanted = {p.instance_id for p in proposed}
    current = {
        instance_id: (submission_id, stored, encrypted)
        for instance_id, submission_id, stored, encrypted in await db.execute(
            select(
                Submission.instance_id,
                Submission.id,
                SubmissionDef.record,
                SubmissionDef.encrypted,
            )
            .join(
                SubmissionDef,
                (SubmissionDef.submission_id == Submission.id) & SubmissionDef.current.is_(True),
            )
            .where(
                Submission.form_id == form.id,
                Submission.draft.is_(False),
                Submission.deleted_at.is_(None),
                Submission.instance_id.in_(wanted),
            )
        )
    }
    entries = []
    at = now()
    for item in proposed:
        found = current.get(item.instance_id)
        if found is None:
            raise problems.cleaning_not_possible(f"The form has no submission {item.instance_id!r}")
        submission_id, stored, encrypted = found
        if not item.reason.strip():
            raise problems.missing_parameter("reason")
        field, old = None, None
        if item.field is not None:
            if encrypted:
                raise problems.cleaning_not_possible(
                    f"The submission {item.instance_id!r} is encrypted: "
                    "its answers cannot be cleaned"
                )
            try:
                field = check_field(schema, item.field)
            except CleaningError as error:
                raise problems.cleaning_not_possible(str(error)) from error
            old = value_at(_decode(stored) if stored else {}, field)
            if item.old_value is not None and item.old_value != (old or ""):
                raise problems.cleaning_conflict(item.instance_id, field, old)
        entries.append(
            CleaningEntry(
                form_id=form.id,
                submission_id=submission_id,
                instance_id=item.instance_id,
                field=field,
                old_value=old,
                new_value=item.new_value if field is not None else None,
                reason=item.reason.strip(),
                source=item.source,
                actor_id=by.actor_id,
                created_at=at,
            )
        )
    db.add_all(entries)
    await db.flush()
    await record(
        db,
        by.actor_id,
        "cleaning.create",
        "form",
        form.id,
        {"entries": [_audit_details(entry) for entry in entries]},
    )
    who = await db.scalar(select(Actor.display_name).where(Actor.id == by.actor_id))
    return [_change(entry, who) for entry in entries]


def _audit_details(entry: CleaningEntry) -> dict[str, object]:
    # Never the values: the audit log is read by site administrators who may not
    # read personal answers, and erasure does not rewrite it. The log holds them.
    return {
        "id": entry.id,
        "instanceId": entry.instance_id,
        "field": entry.field,
        "reason": entry.reason,
        "source": entry.source,
    }


async def delete_entry(db: AsyncSession, form: Form, entry_id: int, by: Principal) -> None:
    """Remove an entry (cleaned exports stop applying it); the audit keeps what it said."""
    entry = await db.get(CleaningEntry, entry_id)
    if entry is None or entry.form_id != form.id:
        raise problems.not_found()
    details = _audit_details(entry)
    await db.execute(delete(CleaningEntry).where(CleaningEntry.id == entry_id))
    await record(db, by.actor_id, "cleaning.delete", "form", form.id, details)
