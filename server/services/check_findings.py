"""The data checks' findings, kept until someone accepts or dismisses them.

Checks run on demand (`run_now`) and on new submissions: a background job in
every app process (`run_check_worker`) looks for forms with submissions beyond
`form_checks.checked_through`, claims the form through the database (as the
analysis copy's worker does), runs the form's checks over all its submissions
with only the new ones reported, and stores what it finds. Ingest does not
wait for any of this. A finding is stored once per (form, submission, check,
answer) whatever becomes of it, so a dismissed finding is never found again.

The cost of a round is a read of the whole form (duplicates and outliers
compare with every submission); the next round of a form waits `PACE` times
as long as the last took, so checks take a bounded share of the machine
however large the form grows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from exports.checks import CHECKS, CheckReport, CheckSettings, Suggestion, run_checks
from exports.cleaning import CleaningChange, ProposedChange
from server import problems
from server.auth import Principal
from server.db.models import Actor, CheckFinding, Form, FormChecks, Submission
from server.runtime import Runtime
from server.services import cleaning
from server.services.audit import now, record

__all__ = [
    "FINDING_STATUSES",
    "Decided",
    "FindingView",
    "accept_finding",
    "dismiss_finding",
    "find_new",
    "form_settings",
    "list_findings",
    "run_check_worker",
    "run_now",
    "store_settings",
    "update_findings",
]

log = logging.getLogger("homeward.checks")

FINDING_STATUSES = ("open", "accepted", "dismissed")
# Submission ids are given out when a transaction inserts, not when it commits:
# only submissions this old are checked, so a smaller id still committing is not
# passed over by `checked_through`.
SETTLE = timedelta(seconds=30)
CLAIM = timedelta(minutes=10)
# A form's next round waits at least this many times its last round's duration.
PACE = 10
WORKER = f"{socket.gethostname()}:{os.getpid()}"

_encode_settings = msgspec.json.Encoder().encode
_decode_settings = msgspec.json.Decoder(CheckSettings).decode
_decode_related = msgspec.json.Decoder(list[str]).decode


@dataclass(frozen=True, slots=True)
class FindingView:
    """A stored finding with the name of whoever decided it."""

    finding: CheckFinding
    decided_by: str | None

    @property
    def related(self) -> list[str]:
        return _decode_related(self.finding.related)


@dataclass(frozen=True, slots=True)
class Decided:
    """An accepted finding and the cleaning log entry it wrote."""

    view: FindingView
    entry: CleaningChange


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- settings -----------------------------------------------------------------


async def form_settings(db: AsyncSession, form_id: int) -> tuple[CheckSettings, bool]:
    """The form's stored settings, or the defaults; and whether they are stored."""
    state = await db.get(FormChecks, form_id)
    if state is None or state.settings is None:
        return CheckSettings(), False
    return _decode_settings(state.settings), True


async def store_settings(
    db: AsyncSession, form: Form, settings: CheckSettings | None, by: Principal
) -> None:
    """Store the form's settings (None: back to the defaults), checked against the form."""
    if settings is not None:
        settings = msgspec.structs.replace(settings, since=None)
        schema = await cleaning.form_schema(db, form)
        try:
            run_checks(schema, [], settings)  # names unknown checks or fields
        except ValueError as error:
            raise problems.cleaning_not_possible(str(error)) from error
    state = await db.get(FormChecks, form.id)
    if state is None:
        state = FormChecks(form_id=form.id, checked_through=0, updated_at=now())
        db.add(state)
    state.settings = None if settings is None else _encode_settings(settings)
    state.updated_at = now()
    await db.flush()
    details = {} if settings is None else msgspec.to_builtins(settings)
    await record(db, by.actor_id, "checks.settings", "form", form.id, details)


# -- running ------------------------------------------------------------------


async def run_now(rt: Runtime, form: Form) -> tuple[CheckReport, int]:
    """Run the form's checks over all its submissions; the report and how many findings are new."""
    async with rt.read() as db:
        settings, _ = await form_settings(db, form.id)
    report = await cleaning.run_form_checks(rt, form, settings)
    async with rt.transaction() as db:
        added = await _store(db, form.id, report.suggestions)
    return report, added


async def _store(db: AsyncSession, form_id: int, found: Sequence[Suggestion]) -> int:
    """Store the findings not stored before (in any status); how many were new."""
    if not found:
        return 0
    wanted = {s.instance_id for s in found}
    submissions: dict[str, int] = {
        instance_id: submission_id
        for instance_id, submission_id in await db.execute(
            select(Submission.instance_id, Submission.id).where(
                Submission.form_id == form_id,
                Submission.draft.is_(False),
                Submission.instance_id.in_(wanted),
            )
        )
    }
    known = {
        (instance_id, kind, field_key)
        for instance_id, kind, field_key in await db.execute(
            select(CheckFinding.instance_id, CheckFinding.kind, CheckFinding.field_key).where(
                CheckFinding.form_id == form_id, CheckFinding.instance_id.in_(wanted)
            )
        )
    }
    at = now()
    added = 0
    # Oldest submission first (pages are read newest first), so ids follow arrival.
    in_order = sorted(found, key=lambda s: submissions.get(s.instance_id, 0))
    for suggestion in in_order:
        target = (suggestion.instance_id, suggestion.check, suggestion.field or "")
        submission_id = submissions.get(suggestion.instance_id)
        if target in known or submission_id is None:
            continue
        known.add(target)
        db.add(
            CheckFinding(
                form_id=form_id,
                submission_id=submission_id,
                instance_id=suggestion.instance_id,
                kind=suggestion.check,
                field=suggestion.field,
                field_key=suggestion.field or "",
                repeat_key=suggestion.repeat_key,
                value=suggestion.value,
                suggested_value=suggestion.suggested_value,
                message=suggestion.reason,
                related=msgspec.json.encode(suggestion.related).decode(),
                status="open",
                created_at=at,
            )
        )
        added += 1
    await db.flush()
    return added


async def _claim(rt: Runtime, form_id: int, worker: str) -> bool:
    at = _now()
    try:
        async with rt.transaction() as db:
            if await db.get(FormChecks, form_id) is None:
                db.add(
                    FormChecks(
                        form_id=form_id,
                        checked_through=0,
                        claimed_by=worker,
                        claimed_until=at + CLAIM,
                        updated_at=at,
                    )
                )
                return True  # the insert fails at commit if another process won
            claimed = await db.execute(
                update(FormChecks)
                .where(
                    FormChecks.form_id == form_id,
                    (FormChecks.claimed_until.is_(None))
                    | (FormChecks.claimed_until < at)
                    | (FormChecks.claimed_by == worker),
                )
                .values(claimed_until=at + CLAIM, claimed_by=worker)
                .execution_options(synchronize_session=False)
            )
            return claimed.rowcount == 1  # type: ignore[attr-defined, no-any-return]
    except IntegrityError:
        return False


async def find_new(
    rt: Runtime,
    form_id: int,
    *,
    worker: str = WORKER,
    settle: timedelta = SETTLE,
    pace: float = PACE,
) -> int:
    """Check the form's settled submissions beyond `checked_through`; how many findings
    were stored. Returns 0 without work when another process holds the form."""
    if not await _claim(rt, form_id, worker):
        return 0
    began = time.monotonic()
    added = 0
    through: int | None = None
    try:
        async with rt.read() as db:
            form = await db.get(Form, form_id)
            state = await db.get(FormChecks, form_id)
            assert state is not None
            after = state.checked_through
            settings, _ = await form_settings(db, form_id)
            # Counted, not listed: the first round after an upgrade may find a million.
            waiting, through, oldest = (
                await db.execute(
                    select(
                        func.count(), func.max(Submission.id), func.min(Submission.created_at)
                    ).where(
                        Submission.form_id == form_id,
                        Submission.draft.is_(False),
                        Submission.deleted_at.is_(None),
                        Submission.id > after,
                        Submission.created_at < _now() - settle,
                    )
                )
            ).one()
        if not waiting:
            return 0
        if form is not None and form.current_def_id is not None and settings.checks:
            report = await cleaning.run_form_checks(rt, form, _reported_from(settings, oldest))
            async with rt.transaction() as db:
                added = await _store(db, form_id, report.suggestions)
    except problems.Problem as problem:  # settings naming a field a new version dropped
        log.warning("checks of form %s not run: %s", form_id, problem.message)
    finally:
        took = time.monotonic() - began
        async with rt.transaction() as db:
            values: dict[str, object] = {
                "claimed_until": None,
                "claimed_by": None,
                "updated_at": _now(),
            }
            if through is not None:
                values["checked_through"] = through
                values["due_at"] = _now() + timedelta(seconds=took * pace)
            await db.execute(
                update(FormChecks)
                .where(FormChecks.form_id == form_id, FormChecks.claimed_by == worker)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    return added


def _reported_from(settings: CheckSettings, oldest: datetime) -> CheckSettings:
    """The settings with suggestions for submissions received from `oldest` on.

    Received times and ids grow together, so that is the new submissions (and,
    at most, an already checked one received in the same millisecond: findings
    are stored once whatever their status). A moment, not the list of instance
    ids, so a round over a million new submissions holds no list of them.
    Stored settings never hold a `since` of their own (store_settings).
    """
    # The export's SubmissionDate, which the checks compare, has milliseconds.
    start = _aware(oldest).replace(microsecond=oldest.microsecond // 1000 * 1000)
    return msgspec.structs.replace(settings, since=start)


async def _forms_waiting(rt: Runtime, settle: timedelta) -> list[int]:
    """Forms with settled submissions beyond their checked ones, and due."""
    at = _now()
    async with rt.read() as db:
        rows = await db.execute(
            select(Submission.form_id, func.min(FormChecks.due_at))
            .outerjoin(FormChecks, FormChecks.form_id == Submission.form_id)
            .where(
                Submission.draft.is_(False),
                Submission.deleted_at.is_(None),
                Submission.created_at < at - settle,
                Submission.id > func.coalesce(FormChecks.checked_through, 0),
            )
            .group_by(Submission.form_id)
        )
        return [form_id for form_id, due in rows if due is None or _aware(due) <= at]


async def update_findings(
    rt: Runtime, *, worker: str = WORKER, settle: timedelta = SETTLE, pace: float = PACE
) -> int:
    """One round of the worker: check new submissions of every form due; findings stored."""
    added = 0
    for form_id in await _forms_waiting(rt, settle):
        added += await find_new(rt, form_id, worker=worker, settle=settle, pace=pace)
    return added


async def run_check_worker(rt: Runtime, interval: float) -> None:
    """Runs until cancelled: a round every `interval` seconds; a failed round is logged."""
    while True:
        await asyncio.sleep(interval)
        try:
            await update_findings(rt)
        except Exception:
            log.exception("checking new submissions failed; trying again later")


# -- reading and deciding -----------------------------------------------------


def _views(rows: Sequence[tuple[CheckFinding, str | None]]) -> list[FindingView]:
    return [FindingView(finding, name) for finding, name in rows]


async def list_findings(
    db: AsyncSession,
    form: Form,
    *,
    status: str | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> tuple[list[FindingView], int]:
    """A page of the form's findings (oldest first) and how many match in all."""
    if status is not None and status not in FINDING_STATUSES:
        raise problems.unexpected_value("status", status, f"use {', '.join(FINDING_STATUSES)}.")
    if kind is not None and kind not in CHECKS:
        raise problems.unexpected_value("kind", kind, f"use {', '.join(CHECKS)}.")
    where = [
        CheckFinding.form_id == form.id,
        Submission.deleted_at.is_(None),
        *([CheckFinding.status == status] if status else []),
        *([CheckFinding.kind == kind] if kind else []),
    ]
    live = Submission.id == CheckFinding.submission_id
    total = await db.scalar(
        select(func.count()).select_from(CheckFinding).join(Submission, live).where(*where)
    )
    rows = await db.execute(
        select(CheckFinding, Actor.display_name)
        .join(Submission, live)
        .outerjoin(Actor, Actor.id == CheckFinding.decided_by)
        .where(*where)
        .order_by(CheckFinding.id)
        .limit(limit)
        .offset(offset)
    )
    return _views(rows.tuples().all()), total or 0


async def _open_finding(db: AsyncSession, form: Form, finding_id: int) -> CheckFinding:
    finding = await db.get(CheckFinding, finding_id)
    if finding is None or finding.form_id != form.id:
        raise problems.not_found()
    submission = await db.get(Submission, finding.submission_id)
    if submission is None or submission.deleted_at is not None:
        raise problems.not_found()
    if finding.status != "open":
        raise problems.finding_decided(finding.status)
    return finding


async def _decide(
    db: AsyncSession, finding: CheckFinding, status: str, by: Principal, **values: object
) -> FindingView:
    """Mark the finding decided, only if it is still open (two people deciding at once)."""
    decided = await db.execute(
        update(CheckFinding)
        .where(CheckFinding.id == finding.id, CheckFinding.status == "open")
        .values(status=status, decided_by=by.actor_id, decided_at=now(), **values)
        .execution_options(synchronize_session=False)
    )
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        raise problems.finding_decided("decided")
    await db.refresh(finding)
    who = await db.scalar(select(Actor.display_name).where(Actor.id == by.actor_id))
    return FindingView(finding, who)


async def accept_finding(
    db: AsyncSession,
    form: Form,
    finding_id: int,
    by: Principal,
    *,
    new_value: str | None,
    reason: str | None,
) -> Decided:
    """Write the finding's cleaning log entry (source "check:<kind>") and mark it accepted.

    The entry's oldValue is the answer the check saw: if it has changed since,
    the cleaning log refuses (409) and the finding stays open.
    """
    finding = await _open_finding(db, form, finding_id)
    value = None
    if finding.field is not None:
        value = new_value if new_value is not None else finding.suggested_value
        if value is None:
            raise problems.missing_parameter("newValue")
    proposed = ProposedChange(
        instance_id=finding.instance_id,
        field=finding.field,
        new_value=value,
        reason=(reason or "").strip() or finding.message,
        old_value=finding.value if finding.field is not None else None,
        source=f"check:{finding.kind}",
    )
    [entry] = await cleaning.add_entries(db, form, [proposed], by)
    view = await _decide(db, finding, "accepted", by, cleaning_entry_id=entry.id)
    return Decided(view, entry)


async def dismiss_finding(
    db: AsyncSession, form: Form, finding_id: int, by: Principal, *, reason: str | None
) -> FindingView:
    """Mark the finding dismissed, with why: the answer stays as collected."""
    if reason is None or not reason.strip():
        raise problems.missing_parameter("reason")
    finding = await _open_finding(db, form, finding_id)
    view = await _decide(db, finding, "dismissed", by, dismiss_reason=reason.strip())
    await record(
        db,
        by.actor_id,
        "checks.dismiss",
        "form",
        form.id,
        {"finding": finding.id, "instanceId": finding.instance_id, "kind": finding.kind},
    )
    return view
