"""Keeping each form's analysis copy (exports.analysis) up to date, in any app process.

The copy is derived data: Parquet segments in the BlobStore under
``analysis/<project id>/<xmlFormId>/<table>/<number>.parquet``, listed in
``analysis_segments``, with ``analysis_copies.copied_through`` saying which
submissions they hold. The row store stays the truth: exports read whatever
the copy does not hold yet (or holds in an older version) from it, so a copy
that lags, or is missing, costs speed, never rows.

Work is claimed through the database (a compare-and-set on ``claimed_until``),
so every app process may run the worker and a crashed one's claim simply
expires. A submission joins the copy once it is ``SETTLE`` old: ids are given
out when a transaction inserts, not when it commits, so a young id may still
have an uncommitted smaller neighbour that must not be skipped.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import polars as pl
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from exports.analysis import CopiedRow, copy_plan, layout_key, table_folder, write_segment
from exports.plan import ExportPlan
from forms.schema import FormSchema, merge_schemas
from server.db.models import (
    AnalysisCopy,
    AnalysisSegment,
    Form,
    FormDef,
    Submission,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services.forms import schema_of

__all__ = [
    "SEGMENT_SUBMISSIONS",
    "CopyLayout",
    "compact_copy",
    "copy_layout",
    "extend_copy",
    "forget_copies",
    "rebuild_copy",
    "run_analysis_worker",
    "segment_object",
    "update_copies",
]

log = logging.getLogger("homeward.analysis")

# Submissions per segment: one segment is one batch of an export, so this bounds
# an export's memory as much as it sets the number of files.
SEGMENT_SUBMISSIONS = 25_000
SETTLE = timedelta(seconds=60)
CLAIM = timedelta(minutes=10)
# The worker copies a form once this many settled submissions wait, or once the
# oldest has waited `MAX_LAG`; smaller runs are merged by `compact_copy`.
MIN_RUN = 1_000
MAX_LAG = timedelta(minutes=10)
# Segments smaller than this are merged with their neighbours.
SMALL_SEGMENT = SEGMENT_SUBMISSIONS // 4
WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class CopyLayout:
    """A form's copy: the plan it is written with, and where its objects go."""

    form_id: int
    plan: ExportPlan
    key: str
    prefix: str

    def object_name(self, table_name: str, number: int) -> str:
        table = next(t for t in self.plan.tables if t.name == table_name)
        return f"{self.prefix}/{table_folder(table)}/{number:06d}.parquet"


def segment_object(layout: CopyLayout, table_name: str, number: int) -> str:
    return layout.object_name(table_name, number)


async def merged_schema(db: AsyncSession, form: Form) -> FormSchema | None:
    """Every published version's fields, the current version's layout first."""
    if form.current_def_id is None:
        return None
    current = await db.get(FormDef, form.current_def_id)
    if current is None:
        return None
    older = (
        await db.scalars(
            select(FormDef)
            .where(
                FormDef.form_id == form.id,
                FormDef.published_at.is_not(None),
                FormDef.id != current.id,
            )
            .order_by(FormDef.published_at, FormDef.id)
        )
    ).all()
    return merge_schemas(schema_of(current), [schema_of(item) for item in older])


async def copy_layout(db: AsyncSession, form: Form) -> CopyLayout | None:
    schema = await merged_schema(db, form)
    if schema is None:
        return None
    plan = copy_plan(schema)
    safe_form = table_folder(plan.root)
    return CopyLayout(form.id, plan, layout_key(plan), f"analysis/{form.project_id}/{safe_form}")


def _now() -> datetime:
    return datetime.now(UTC)


async def _claim(rt: Runtime, form_id: int, worker: str) -> CopyLayout | None:
    """The form's layout if this worker now holds its copy; None if another does.

    A copy whose layout no longer matches the form's fields (a version added or
    changed a field) is emptied here and written again from the start.
    """
    stale: list[str] = []
    try:
        layout = await _claim_once(rt, form_id, worker, stale)
    except IntegrityError:
        return None  # another process created the copy's row first, and holds it
    for name in stale:
        await rt.blobs.delete_object(name)
    return layout


async def _claim_once(
    rt: Runtime, form_id: int, worker: str, stale: list[str]
) -> CopyLayout | None:
    now = _now()
    async with rt.transaction() as db:
        form = await db.get(Form, form_id)
        layout = None if form is None else await copy_layout(db, form)
        if layout is None:
            return None
        state = await db.get(AnalysisCopy, form_id)
        if state is None:
            db.add(
                AnalysisCopy(
                    form_id=form_id,
                    layout=layout.key,
                    copied_through=0,
                    claimed_until=now + CLAIM,
                    claimed_by=worker,
                    updated_at=now,
                )
            )
            return layout  # the insert fails at commit if another process won
        claimed = await db.execute(
            update(AnalysisCopy)
            .where(
                AnalysisCopy.form_id == form_id,
                (AnalysisCopy.claimed_until.is_(None))
                | (AnalysisCopy.claimed_until < now)
                | (AnalysisCopy.claimed_by == worker),
            )
            .values(claimed_until=now + CLAIM, claimed_by=worker)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        if state.layout != layout.key:
            stale += await _segment_objects(db, layout, form_id)
            await _forget_segments(db, form_id)
            await db.execute(
                update(AnalysisCopy)
                .where(AnalysisCopy.form_id == form_id)
                .values(layout=layout.key, copied_through=0, updated_at=now)
                .execution_options(synchronize_session=False)
            )
    return layout


async def _segment_objects(db: AsyncSession, layout: CopyLayout, form_id: int) -> list[str]:
    """The objects of the form's segments, named by `layout`'s tables.

    After a layout change the old tables' names are not known any more: files of
    a table the form no longer has stay behind (exports never list objects).
    """
    numbers = (
        await db.scalars(select(AnalysisSegment.number).where(AnalysisSegment.form_id == form_id))
    ).all()
    return [layout.object_name(t.name, n) for n in numbers for t in layout.plan.tables]


async def _forget_segments(db: AsyncSession, form_id: int) -> None:
    """Drop the segment rows (the caller deletes their objects after committing)."""
    await db.execute(delete(AnalysisSegment).where(AnalysisSegment.form_id == form_id))


async def forget_copies(db: AsyncSession, form_ids: Sequence[int]) -> list[str]:
    """Drop these forms' copies (before their forms or submissions are purged).

    Returns the names of the objects to delete once the transaction commits:
    a purged submission must not live on in the copy's files. The copy is
    written again by the next round of the worker.
    """
    names: list[str] = []
    for form_id in form_ids:
        form = await db.get(Form, form_id)
        layout = None if form is None else await copy_layout(db, form)
        if layout is not None:
            names += await _segment_objects(db, layout, form_id)
        await _forget_segments(db, form_id)
        await db.execute(delete(AnalysisCopy).where(AnalysisCopy.form_id == form_id))
    return names


async def _release(rt: Runtime, form_id: int, worker: str) -> None:
    async with rt.transaction() as db:
        await db.execute(
            update(AnalysisCopy)
            .where(AnalysisCopy.form_id == form_id, AnalysisCopy.claimed_by == worker)
            .values(claimed_until=None, claimed_by=None)
            .execution_options(synchronize_session=False)
        )


async def _settled_rows(
    rt: Runtime, form_id: int, after: int, limit: int, settled_before: datetime
) -> list[CopiedRow]:
    async with rt.read() as db:
        rows = (
            await db.execute(
                select(
                    Submission.id,
                    SubmissionDef.id,
                    Submission.instance_id,
                    SubmissionDef.encrypted,
                    SubmissionDef.record,
                    SubmissionDef.form_def_id,
                )
                .join(
                    SubmissionDef,
                    (SubmissionDef.submission_id == Submission.id)
                    & SubmissionDef.current.is_(True),
                )
                .where(
                    Submission.form_id == form_id,
                    Submission.draft.is_(False),
                    Submission.id > after,
                    Submission.created_at < settled_before,
                )
                .order_by(Submission.id)
                .limit(limit)
            )
        ).all()
    return [CopiedRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


async def _next_number(db: AsyncSession, form_id: int) -> int:
    top = await db.scalar(
        select(func.max(AnalysisSegment.number)).where(AnalysisSegment.form_id == form_id)
    )
    return (top or 0) + 1


async def _store_segment(
    rt: Runtime, layout: CopyLayout, tables: dict[str, bytes], number: int
) -> None:
    for name, data in tables.items():
        await rt.blobs.put_object(layout.object_name(name, number), data)


async def extend_copy(rt: Runtime, form_id: int, *, minimum: int = 1, worker: str = WORKER) -> int:
    """Append settled submissions beyond the copy in segments; how many were copied.

    Stops when fewer than `minimum` wait, or when another process holds the copy.
    """
    layout = await _claim(rt, form_id, worker)
    if layout is None:
        return 0
    copied = 0
    try:
        while True:
            async with rt.read() as db:
                state = await db.get(AnalysisCopy, form_id)
                assert state is not None
                after = state.copied_through
            rows = await _settled_rows(rt, form_id, after, SEGMENT_SUBMISSIONS, _now() - SETTLE)
            if len(rows) < max(minimum, 1):
                break
            newest_first = rows[::-1]
            tables = await anyio.to_thread.run_sync(write_segment, layout.plan, newest_first)
            async with rt.transaction() as db:
                number = await _next_number(db, form_id)
            await _store_segment(rt, layout, tables, number)
            async with rt.transaction() as db:
                db.add(
                    AnalysisSegment(
                        form_id=form_id,
                        number=number,
                        first_submission_id=rows[0].submission_id,
                        last_submission_id=rows[-1].submission_id,
                        submissions=len(rows),
                        created_at=_now(),
                    )
                )
                await db.execute(
                    update(AnalysisCopy)
                    .where(AnalysisCopy.form_id == form_id)
                    .values(
                        copied_through=rows[-1].submission_id,
                        claimed_until=_now() + CLAIM,
                        updated_at=_now(),
                    )
                    .execution_options(synchronize_session=False)
                )
            copied += len(rows)
            if len(rows) < SEGMENT_SUBMISSIONS:
                break
        await _compact(rt, layout)
    finally:
        await _release(rt, form_id, worker)
    return copied


async def compact_copy(rt: Runtime, form_id: int, *, worker: str = WORKER) -> int:
    """Merge runs of small segments; how many segments were removed."""
    layout = await _claim(rt, form_id, worker)
    if layout is None:
        return 0
    try:
        return await _compact(rt, layout)
    finally:
        await _release(rt, form_id, worker)


async def _compact(rt: Runtime, layout: CopyLayout) -> int:
    async with rt.read() as db:
        segments = (
            await db.scalars(
                select(AnalysisSegment)
                .where(AnalysisSegment.form_id == layout.form_id)
                .order_by(AnalysisSegment.number)
            )
        ).all()
    removed = 0
    for run in _small_runs(segments):
        await _merge(rt, layout, run)
        removed += len(run) - 1
    return removed


def _small_runs(segments: Sequence[AnalysisSegment]) -> list[list[AnalysisSegment]]:
    """Consecutive small segments whose sum fits one segment, two or more each."""
    runs: list[list[AnalysisSegment]] = []
    current: list[AnalysisSegment] = []
    total = 0
    for segment in segments:
        small = segment.submissions < SMALL_SEGMENT
        if small and total + segment.submissions <= SEGMENT_SUBMISSIONS:
            current.append(segment)
            total += segment.submissions
            continue
        if len(current) > 1:
            runs.append(current)
        current, total = ([segment], segment.submissions) if small else ([], 0)
    if len(current) > 1:
        runs.append(current)
    return runs


async def _merge(rt: Runtime, layout: CopyLayout, run: list[AnalysisSegment]) -> None:
    tables: dict[str, bytes] = {}
    for table in layout.plan.tables:
        parts = [
            await rt.blobs.read_object(layout.object_name(table.name, segment.number))
            for segment in reversed(run)  # newest first, as segments are written
        ]
        tables[table.name] = await anyio.to_thread.run_sync(_concat_parquet, parts)
    async with rt.transaction() as db:
        number = await _next_number(db, layout.form_id)
    await _store_segment(rt, layout, tables, number)
    async with rt.transaction() as db:
        db.add(
            AnalysisSegment(
                form_id=layout.form_id,
                number=number,
                first_submission_id=run[0].first_submission_id,
                last_submission_id=run[-1].last_submission_id,
                submissions=sum(s.submissions for s in run),
                created_at=_now(),
            )
        )
        await db.execute(delete(AnalysisSegment).where(AnalysisSegment.id.in_([s.id for s in run])))
    # Only now that no row names them: an export that listed them has read them
    # already or falls back (services.analysis_export re-reads the list per export).
    for segment in run:
        for table in layout.plan.tables:
            await rt.blobs.delete_object(layout.object_name(table.name, segment.number))


def _concat_parquet(parts: list[bytes]) -> bytes:
    frame = pl.concat([pl.read_parquet(io.BytesIO(part)) for part in parts])
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=1, statistics=True)
    return buffer.getvalue()


async def rebuild_copy(rt: Runtime, form_id: int, *, worker: str = WORKER) -> int:
    """Forget the form's copy and write it again from the row store."""
    stale: list[str] = []
    async with rt.transaction() as db:
        state = await db.get(AnalysisCopy, form_id)
        form = await db.get(Form, form_id)
        layout = None if form is None else await copy_layout(db, form)
        if state is not None:
            if layout is not None:
                stale = await _segment_objects(db, layout, form_id)
            await _forget_segments(db, form_id)
            await db.execute(
                update(AnalysisCopy)
                .where(AnalysisCopy.form_id == form_id)
                .values(copied_through=0, layout="", updated_at=_now())
                .execution_options(synchronize_session=False)
            )
    for name in stale:
        await rt.blobs.delete_object(name)
    return await extend_copy(rt, form_id, worker=worker)


async def _forms_waiting(rt: Runtime) -> list[int]:
    """Forms with enough settled submissions beyond their copy to be worth a run."""
    now = _now()
    async with rt.read() as db:
        waiting = (
            select(
                Submission.form_id,
                func.count().label("waiting"),
                func.min(Submission.created_at).label("oldest"),
            )
            .outerjoin(AnalysisCopy, AnalysisCopy.form_id == Submission.form_id)
            .where(
                Submission.draft.is_(False),
                Submission.created_at < now - SETTLE,
                Submission.id > func.coalesce(AnalysisCopy.copied_through, 0),
            )
            .group_by(Submission.form_id)
        )
        rows = (await db.execute(waiting)).all()
    return [
        form_id
        for form_id, count, oldest in rows
        if count >= MIN_RUN or _aware(oldest) < now - MAX_LAG
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def update_copies(rt: Runtime, *, worker: str = WORKER) -> int:
    """One round of the worker: extend every form's copy that is worth extending."""
    copied = 0
    for form_id in await _forms_waiting(rt):
        copied += await extend_copy(rt, form_id, worker=worker)
    return copied


async def run_analysis_worker(rt: Runtime, interval: float) -> None:
    """Runs until cancelled: a round every `interval` seconds; a failed round is logged."""
    while True:
        await asyncio.sleep(interval)
        try:
            await update_copies(rt)
        except Exception:
            log.exception("extending the analysis copies failed; trying again later")
