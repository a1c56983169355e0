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

import asyncio
import contextlib
import io
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, Select, String, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.util import find_tables
from sqlalchemy.types import TypeDecorator

from exports.analysis import (
    DEF,
    ENCRYPTED,
    FORM_DEF,
    SUBMISSION,
    CopiedBatch,
    meta_frame,
    stored_columns,
)
from exports.plan import ExportPlan
from exports.records import ExportRecord, SubmissionMeta
from server.db.models import (
    Actor,
    AnalysisCopy,
    AnalysisSegment,
    Form,
    FormDef,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services.analysis import CopyLayout, copy_layout

__all__ = ["BATCH_SUBMISSIONS", "CopyView", "segment_batches", "usable_copy"]

BATCH_SUBMISSIONS = 5_000
# The next segment is read while the writer works on this many batches of the current
# one: from the first batch on, two segments were held at once (a million-row XLSX
# peaked 12-14 MB higher, no faster).
READ_AHEAD = 2
# Ids bound at a time in an IN list (PostgreSQL's driver takes at most 32,767).
_IN_LIST = 10_000

Where = tuple[ColumnElement[bool], ...]


@dataclass(frozen=True, slots=True)
class CopyView:
    """The segments an export reads, listed once when it starts."""

    layout: CopyLayout
    copied_through: int
    # (number, first submission id, last submission id), newest first.
    segments: tuple[tuple[int, int, int], ...]
    # The answer columns read from each table the plan reads, by repeat path (None:
    # the root); a check round reads a few of them.
    answers: Mapping[str | None, frozenset[str]]


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
    wanted: dict[str | None, frozenset[str]] = {}
    for table in plan.tables:
        copied = layout.plan.table_for(table.repeat_path)
        if copied is None:
            return None
        answers = frozenset(s for s in table.sources if s.startswith("/"))
        if not answers <= set(stored_columns(copied)):
            return None
        wanted[table.repeat_path] = answers
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
    listed = tuple((s[0], s[1], s[2]) for s in segments)
    return CopyView(layout, state.copied_through, listed, wanted)


def _meta_query(where: Where, low: int, high: int) -> Select[tuple[Any, ...]]:
    """What changes about the selected submissions of a segment, from `submissions` alone.

    The version rows (XML and record, kilobytes each) are not touched: which
    version is current, and what never changes about it, come from the copy,
    except for the few submissions edited since or missing from it.
    """
    query = select(
        Submission.id,
        Submission.instance_id,
        _StoredMoment(Submission.created_at),
        Submission.submitter_id,
        Submission.review_state,
        Submission.device_id,
    )
    if any(SubmissionDef.__table__ in find_tables(clause) for clause in where):
        current = and_(SubmissionDef.submission_id == Submission.id, SubmissionDef.current)
        query = query.join(SubmissionDef, current)
    return query.where(*where, Submission.id.between(low, high)).order_by(Submission.id.desc())


class _AsStored(TypeDecorator[Any]):
    """A column read without the dialect's conversion."""

    impl = String
    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> None:
        return None


class _StoredMoment(FunctionElement[Any]):
    """A moment as Polars reads a column of them at once, not one datetime object each
    (which cost ~1.4 CPU s a million on PostgreSQL): SQLite's stored text as it is,
    PostgreSQL's as microseconds since 1970 (UTC)."""

    type = _AsStored()
    inherit_cache = True
    name = "homeward_stored_moment"


@compiles(_StoredMoment, "postgresql")
def _stored_moment_postgresql(element: _StoredMoment, compiler: Any, **kw: Any) -> str:
    moment = compiler.process(element.clauses, **kw)
    # EXTRACT gives an exact numeric (PostgreSQL 14+): no float rounding of the µs.
    return f"CAST(EXTRACT(EPOCH FROM {moment}) * 1000000 AS BIGINT)"


@compiles(_StoredMoment)
def _stored_moment_sqlite(element: _StoredMoment, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


_SQLITE_MOMENT = "%Y-%m-%d %H:%M:%S%.f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moments(values: Sequence[Any]) -> pl.Series:
    """Submission dates (a `_StoredMoment` column) as UTC datetimes."""
    if values and isinstance(values[0], int):
        return pl.Series(values, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    if values and isinstance(values[0], str):
        parsed = pl.Series(values, dtype=pl.String).str.to_datetime(
            _SQLITE_MOMENT, time_unit="us", strict=False
        )
        if parsed.null_count() == 0:
            return parsed
    return pl.Series([_moment(value) for value in values], dtype=pl.Datetime("us", "UTC"))


async def segment_batches(
    rt: Runtime,
    view: CopyView,
    where: Where,
    on_page: Callable[[int], None] | None = None,
    batch_submissions: int = BATCH_SUBMISSIONS,
) -> AsyncGenerator[CopiedBatch, None]:
    """Batches of up to `batch_submissions`, newest first, for the submissions `where` selects.

    The next segment is read while the writer works on the current one's last
    READ_AHEAD batches.
    """
    pending: asyncio.Task[_Segment | None] | None = None
    segments = list(view.segments)
    try:
        for index in range(len(segments)):
            if pending is None:
                segment = await _read_segment(rt, view, where, segments[index])
            else:
                segment = await pending
                pending = None
            following = segments[index + 1] if index + 1 < len(segments) else None
            if segment is None:
                if following is not None:
                    pending = asyncio.ensure_future(_read_segment(rt, view, where, following))
                continue
            tables, meta, missing = segment
            ids = meta.get_column(SUBMISSION)
            # A segment is handed over in slices: the writers' memory grows with a batch.
            starts = range(0, meta.height, batch_submissions)
            for start in starts:
                part = meta.slice(start, batch_submissions)
                part_missing = (
                    [(i, missing[i]) for i in ids.slice(start, batch_submissions) if i in missing]
                    if missing
                    else []
                )
                if on_page is not None:
                    on_page(part.height)
                if following is not None and start == starts[max(len(starts) - READ_AHEAD, 0)]:
                    pending = asyncio.ensure_future(_read_segment(rt, view, where, following))
                yield CopiedBatch(tables, part, part_missing)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


# The segment's frames by repeat path, its selected submissions' system columns
# (meta_frame), and the submissions it lacks as records from the row store.
_Segment = tuple[dict[str | None, pl.DataFrame], pl.DataFrame, dict[int, ExportRecord]]


async def _read_segment(
    rt: Runtime, view: CopyView, where: Where, segment: tuple[int, int, int]
) -> _Segment | None:
    number, low, high = segment
    plan = view.layout.plan
    async with rt.read() as db:
        connection = await db.connection()
        rows = (await connection.execute(_meta_query(where, low, high))).all()
        if not rows:
            return None
        tables = {
            table.repeat_path: _read_table(
                await rt.blobs.read_object(view.layout.object_name(table.name, number)),
                view.answers[table.repeat_path],
            )
            for table in plan.tables
            if table.repeat_path in view.answers
        }
        columns = list(zip(*rows, strict=True))
        ids = pl.Series(SUBMISSION, columns[0], dtype=pl.Int64)
        held = tables[None].select(SUBMISSION, DEF, FORM_DEF, ENCRYPTED)
        edited = await _versions(connection, low, high)
        unsure = set(edited) | set(
            ids.filter(~ids.is_in(held.get_column(SUBMISSION).implode())).to_list()
        )
        current = await _current_versions(connection, sorted(unsure)) if unsure else {}
        versions = _version_frame(ids, held, current)
        def_ids = versions.get_column(DEF)
        attached = await _attachments(connection, def_ids)
        form_versions = await _form_versions(connection, view.layout.form_id)
        names = await _names(connection, [i for i in set(columns[3]) if i is not None])
        held_pairs = set(
            held.filter(pl.col(SUBMISSION).is_in(list(current))).select(SUBMISSION, DEF).rows()
        )
        fresh = {s: c for s, c in current.items() if (s, c[0]) not in held_pairs}
        records = await _records(db, [c[0] for c in fresh.values()]) if fresh else {}
    submitters = pl.Series(columns[3], dtype=pl.Int64)
    meta = meta_frame(
        submission_ids=ids,
        def_ids=def_ids,
        instance_ids=pl.Series(columns[1], dtype=pl.String),
        submitted_at=_moments(columns[2]),
        submitter_ids=submitters,
        submitter_names=submitters.replace_strict(names, default=None, return_dtype=pl.String),
        present=attached.get_column("present"),
        expected=attached.get_column("expected"),
        encrypted=versions.get_column(ENCRYPTED),
        review_states=pl.Series(columns[4], dtype=pl.String),
        device_ids=pl.Series(columns[5], dtype=pl.String),
        edits=ids.replace_strict(edited, default=1, return_dtype=pl.Int64) - 1,
        form_versions=versions.get_column(FORM_DEF).replace_strict(
            form_versions, default="", return_dtype=pl.String
        ),
    )
    missing: dict[int, ExportRecord] = {}
    if records:
        files = {
            row[0]: (row[1], row[2])
            for row in attached.filter(pl.col(DEF).is_in([c[0] for c in fresh.values()])).rows()
        }
        for row in rows:
            version = fresh.get(row[0])
            if version is None or version[0] not in records:
                continue
            def_id, form_def_id, encrypted = version
            expected, present = files.get(def_id, (0, 0))
            missing[row[0]] = ExportRecord(
                meta=SubmissionMeta(
                    instance_id=row[1],
                    submission_date=_moment(row[2]),
                    submitter_id=row[3],
                    submitter_name=names.get(row[3]) if row[3] is not None else None,
                    attachments_present=present,
                    attachments_expected=expected,
                    status="not decrypted" if encrypted else None,
                    review_state=row[4],
                    device_id=row[5],
                    edits=edited.get(row[0], 1) - 1,
                    form_version=form_versions.get(form_def_id, ""),
                ),
                record=records[def_id],
            )
    return tables, meta, missing


def _read_table(data: bytes, answers: frozenset[str]) -> pl.DataFrame:
    """A segment's table with its system columns and only the `answers` asked for.

    A check round reads a few of a form's answers: decoding them all cost a
    round over a million about 1.5 s and 30-40 MB.
    """
    source = io.BytesIO(data)
    names = [n for n in pl.read_parquet_schema(source) if not n.startswith("/") or n in answers]
    source.seek(0)
    return pl.read_parquet(source, columns=names)


def _version_frame(
    ids: pl.Series, held: pl.DataFrame, current: dict[int, tuple[int, int, bool]]
) -> pl.DataFrame:
    """Each selected submission's current version: from the copy, or from `current`."""
    frame = ids.to_frame().join(held.unique(SUBMISSION), on=SUBMISSION, how="left")
    if not current:
        return frame
    changed = pl.DataFrame(
        {
            SUBMISSION: list(current),
            "_def": [c[0] for c in current.values()],
            "_form_def": [c[1] for c in current.values()],
            "_encrypted": [c[2] for c in current.values()],
        },
        schema={
            SUBMISSION: pl.Int64,
            "_def": pl.Int64,
            "_form_def": pl.Int64,
            "_encrypted": pl.Boolean,
        },
    )
    return (
        frame.join(changed, on=SUBMISSION, how="left")
        .with_columns(
            pl.coalesce("_def", DEF).alias(DEF),
            pl.coalesce("_form_def", FORM_DEF).alias(FORM_DEF),
            pl.coalesce("_encrypted", ENCRYPTED).alias(ENCRYPTED),
        )
        .select(SUBMISSION, DEF, FORM_DEF, ENCRYPTED)
    )


async def _versions(connection: AsyncConnection, low: int, high: int) -> dict[int, int]:
    """Versions per submission, for those with more than one (edited)."""
    query = (
        select(SubmissionDef.submission_id, func.count())
        .where(SubmissionDef.submission_id.between(low, high))
        .group_by(SubmissionDef.submission_id)
        .having(func.count() > 1)
    )
    return {row[0]: row[1] for row in (await connection.execute(query)).all()}


async def _current_versions(
    connection: AsyncConnection, submission_ids: list[int]
) -> dict[int, tuple[int, int, bool]]:
    """(version id, form version id, encrypted) of each submission's current version."""
    found: dict[int, tuple[int, int, bool]] = {}
    for start in range(0, len(submission_ids), _IN_LIST):
        part = submission_ids[start : start + _IN_LIST]
        query = select(
            SubmissionDef.submission_id,
            SubmissionDef.id,
            SubmissionDef.form_def_id,
            SubmissionDef.encrypted,
        ).where(SubmissionDef.submission_id.in_(part), SubmissionDef.current.is_(True))
        for row in (await connection.execute(query)).all():
            found[row[0]] = (row[1], row[2], row[3])
    return found


async def _attachments(connection: AsyncConnection, def_ids: pl.Series) -> pl.DataFrame:
    """(expected, present) attachments per version, in the order of `def_ids`."""
    low, high = def_ids.min(), def_ids.max()
    query = (
        select(
            SubmissionAttachment.submission_def_id,
            func.count(),
            func.count(SubmissionAttachment.blob_sha256),
        )
        .where(SubmissionAttachment.submission_def_id.between(low, high))
        .group_by(SubmissionAttachment.submission_def_id)
    )
    rows = (await connection.execute(query)).all()
    counted = pl.DataFrame(
        list(zip(*rows, strict=True)) if rows else [[], [], []],
        schema={DEF: pl.Int64, "expected": pl.Int64, "present": pl.Int64},
        orient="col",
    )
    return (
        def_ids.to_frame(DEF).join(counted, on=DEF, how="left", maintain_order="left").fill_null(0)
    )


async def _form_versions(connection: AsyncConnection, form_id: int) -> dict[int, str]:
    query = select(FormDef.id, FormDef.version).where(FormDef.form_id == form_id)
    return {row[0]: row[1] or "" for row in (await connection.execute(query)).all()}


async def _names(connection: AsyncConnection, actor_ids: list[int]) -> dict[int, str | None]:
    if not actor_ids:
        return {}
    query = select(Actor.id, Actor.display_name).where(Actor.id.in_(actor_ids))
    return {row[0]: row[1] for row in (await connection.execute(query)).all()}


async def _records(db: AsyncSession, def_ids: list[int]) -> dict[int, bytes]:
    found = await db.execute(
        select(SubmissionDef.id, SubmissionDef.record).where(SubmissionDef.id.in_(def_ids))
    )
    return {row[0]: row[1] for row in found.all()}


def _moment(value: int | str) -> datetime:
    """One `_StoredMoment` value as a UTC datetime."""
    if isinstance(value, int):
        return _EPOCH + timedelta(microseconds=value)
    return _utc(datetime.fromisoformat(value))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
