"""Exports read from the analysis copy: segments joined with what changed since.

For each segment, newest first, one query reads the selected submissions'
system columns in its id range (the export's filters, deletions and review
states apply there), and the segment's rows are joined to them
(exports.analysis.CopiedBatch). Submissions whose current version the segment
does not hold (edited since, or missed) are read from the row store and put
in their place. What the copy does not reach yet is read page by page from the
row store before the segments, as every export did before (services.exports).
"""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, Row, Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from exports.analysis import DEF, SUBMISSION, CopiedBatch, meta_frame, stored_columns
from exports.plan import ExportPlan
from exports.records import ExportRecord, SubmissionMeta
from server.db.models import (
    Actor,
    AnalysisCopy,
    AnalysisSegment,
    Form,
    FormDef,
    Submission,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services.analysis import CopyLayout, copy_layout
from server.services.stats import page_counts

__all__ = ["BATCH_SUBMISSIONS", "CopyView", "segment_batches", "usable_copy"]

BATCH_SUBMISSIONS = 5_000

Where = tuple[ColumnElement[bool], ...]


@dataclass(frozen=True, slots=True)
class CopyView:
    """The segments an export reads, listed once when it starts."""

    layout: CopyLayout
    copied_through: int
    # (number, first submission id, last submission id), newest first.
    segments: tuple[tuple[int, int, int], ...]


async def usable_copy(db: AsyncSession, form: Form, plan: ExportPlan) -> CopyView | None:
    """The form's copy if it can serve an export planned as `plan`, else None.

    It can when it was written for the form's current fields and holds every
    table and answer column the plan reads; otherwise the export reads the
    row store alone (slower, same bytes).
    """
    state = await db.get(AnalysisCopy, form.id)
    if state is None or state.copied_through == 0:
        return None
    layout = await copy_layout(db, form)
    if layout is None or layout.key != state.layout:
        return None
    for table in plan.tables:
        copied = layout.plan.table_for(table.repeat_path)
        if copied is None:
            return None
        answers = {s for s in table.sources if s.startswith("/")}
        if not answers <= set(stored_columns(copied)):
            return None
    segments = (
        await db.execute(
            select(
                AnalysisSegment.number,
                AnalysisSegment.first_submission_id,
                AnalysisSegment.last_submission_id,
            )
            .where(AnalysisSegment.form_id == form.id)
            .order_by(AnalysisSegment.last_submission_id.desc())
        )
    ).all()
    if not segments:
        return None
    return CopyView(layout, state.copied_through, tuple((s[0], s[1], s[2]) for s in segments))


def _meta_query(where: Where, low: int, high: int) -> Select[tuple[Any, ...]]:
    return (
        select(
            Submission.id,
            SubmissionDef.id,
            Submission.instance_id,
            Submission.created_at,
            Submission.submitter_id,
            Actor.display_name,
            Submission.review_state,
            Submission.device_id,
            SubmissionDef.encrypted,
            FormDef.version,
        )
        .join(
            SubmissionDef,
            and_(SubmissionDef.submission_id == Submission.id, SubmissionDef.current.is_(True)),
        )
        .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
        .outerjoin(Actor, Actor.id == Submission.submitter_id)
        .where(*where, Submission.id.between(low, high))
        .order_by(Submission.id.desc())
    )


async def segment_batches(
    rt: Runtime,
    view: CopyView,
    where: Where,
    on_page: Callable[[int], None] | None = None,
) -> AsyncGenerator[CopiedBatch, None]:
    """One batch per segment, newest first, for the submissions `where` selects."""
    plan = view.layout.plan
    for number, low, high in view.segments:
        tables_data = {
            table.repeat_path: await rt.blobs.read_object(
                view.layout.object_name(table.name, number)
            )
            for table in plan.tables
        }
        async with rt.read() as db:
            rows = (await db.execute(_meta_query(where, low, high))).all()
            if not rows:
                continue
            ids = [row[0] for row in rows]
            def_ids = [row[1] for row in rows]
            edited, attached = await page_counts(db, ids, def_ids)
            held = pl.read_parquet(io.BytesIO(tables_data[None]), columns=[SUBMISSION, DEF])
            missing_defs = _missing(rows, held)
            records = await _records(db, missing_defs) if missing_defs else {}
        no_files = (0, 0)
        files = [attached.get(d, no_files) for d in def_ids]
        meta = meta_frame(
            submission_ids=ids,
            def_ids=def_ids,
            instance_ids=[row[2] for row in rows],
            submitted_at=[_utc(row[3]) for row in rows],
            submitter_ids=[row[4] for row in rows],
            submitter_names=[row[5] for row in rows],
            present=[f[1] for f in files],
            expected=[f[0] for f in files],
            encrypted=[row[8] for row in rows],
            review_states=[row[6] for row in rows],
            device_ids=[row[7] for row in rows],
            edits=[edited.get(i, 1) - 1 for i in ids],
            form_versions=[row[9] or "" for row in rows],
        )
        missing = {
            row[0]: _record(row, records[row[1]], attached.get(row[1], no_files), edited)
            for row in rows
            if row[1] in records
        }
        tables = {path: pl.read_parquet(io.BytesIO(data)) for path, data in tables_data.items()}
        del tables_data
        # A segment is handed over in slices: the writers' memory grows with a batch.
        for start in range(0, len(ids), BATCH_SUBMISSIONS):
            part = meta.slice(start, BATCH_SUBMISSIONS)
            part_ids = ids[start : start + BATCH_SUBMISSIONS]
            part_missing = [(i, missing[i]) for i in part_ids if i in missing]
            if on_page is not None:
                on_page(part.height)
            yield CopiedBatch(tables, part, part_missing)


def _missing(rows: Sequence[Row[Any]], held: pl.DataFrame) -> list[int]:
    """Current versions among `rows` that the segment does not hold."""
    pairs = zip(held.get_column(SUBMISSION).to_list(), held.get_column(DEF).to_list(), strict=True)
    have = set(pairs)
    return [row[1] for row in rows if (row[0], row[1]) not in have]


async def _records(db: AsyncSession, def_ids: list[int]) -> dict[int, bytes]:
    found = await db.execute(
        select(SubmissionDef.id, SubmissionDef.record).where(SubmissionDef.id.in_(def_ids))
    )
    return {row[0]: row[1] for row in found.all()}


def _record(
    row: Row[Any],
    record: bytes,
    files: tuple[int, int],
    edited: dict[int, int],
) -> ExportRecord:
    return ExportRecord(
        meta=SubmissionMeta(
            instance_id=row[2],
            submission_date=_utc(row[3]),
            submitter_id=row[4],
            submitter_name=row[5],
            attachments_present=files[1],
            attachments_expected=files[0],
            status="not decrypted" if row[8] else None,
            review_state=row[6],
            device_id=row[7],
            edits=edited.get(row[0], 1) - 1,
            form_version=row[9] or "",
        ),
        record=record,
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
