"""Central's CSV exports, streamed from the database: selection, pages, the writer thread.

Rows are the current versions of a form's non-draft, non-deleted submissions,
newest first (Central orders by creation time; our ids grow with it, so
``ORDER BY id DESC`` is the same order and gives a unique, monotonic cursor).
They are read in pages of ``BATCH_SIZE`` by keyset on ``submissions.id``, each
page in a short read transaction of its own: a slow client never pins a pooled
connection or an open snapshot (which would hold back PostgreSQL's vacuum and
SQLite's WAL checkpoints) for the length of a download, and the keyset cursor
still gives every submission at most once.

Why a worker thread: the writers in ``exports`` are synchronous (zipfile,
Polars) and write to a file-like object, while the database and the BlobStore
are async. The writer runs in one worker thread and *pulls* its input from the
event loop one page (or one blob chunk) at a time with
``anyio.from_thread.run``; its output goes in ~64 KiB chunks through a bounded
memory object stream that the response drains. Both directions hold at most a
page and a few chunks, so memory stays flat however many submissions there are,
and a slow client slows the export down instead of filling memory. No page is
fetched before the writer asks for it. (Repeat tables and split select
multiples are spooled to temporary files by the writer itself.) An export to a
file (``homeward export``, export runs) is written by the writer thread itself
(``export_to_file``): handing each chunk to the event loop and back to a thread
for the file made the photos' CSV zip take a third longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import msgspec
from anyio.lowlevel import EventLoopToken
from anyio.streams.memory import MemoryObjectSendStream
from sqlalchemy import ColumnElement, Select, and_, func, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from exports import (
    ExportOptions,
    ExportRecord,
    MediaFile,
    SubmissionMeta,
    check_geojson,
    plan_export,
    write_csv_zip,
    write_geojson,
    write_parquet_zip,
    write_root_csv,
    write_xlsx,
)
from exports.cleaning import CleaningChange, apply_cleaning, protect_personal
from exports.odata import ODataError
from exports.odata import parse_filter as parse_odata_filter
from forms.schema import FormSchema, merge_schemas
from server import problems
from server.db.models import (
    Actor,
    Blob,
    Form,
    FormDef,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services import odata as odata_service
from server.services.analysis_export import (
    BATCH_SUBMISSIONS,
    CopyView,
    segment_batches,
    usable_copy,
)
from server.services.export_slots import ExportSlot, export_slots
from server.services.forms import schema_of
from server.services.stats import page_counts
from storage import BlobNotFound, FilesystemBlobStore

REVIEW_STATES = ("received", "hasIssues", "edited", "approved", "rejected")

__all__ = [
    "BATCH_SIZE",
    "REVIEW_STATES",
    "ExportFormat",
    "ExportJob",
    "Page",
    "claim_export_slot",
    "export_to_file",
    "fetch_page",
    "parse_filter",
    "prepare_export",
    "selection",
    "stream_export",
]

log = logging.getLogger("homeward.exports")

BATCH_SIZE = 1000  # submissions per page (read at call time, so tests may lower it)
# Bytes handed to the response at a time. Each chunk is one hop from the writer
# thread to the event loop: at 64 KB a CSV zip with 600 MB of photos made 9,400 of
# them (with as many for reading the photos) and ran at 45 MB/s.
CHUNK_BYTES = 1024 * 1024
PENDING_CHUNKS = 4  # chunks the writer may run ahead of the client
MEDIA_READ_BYTES = 1024 * 1024  # a media file read from the blob folder at a time
_PROGRESS_SECONDS = 0.25  # between reports of an export to a file's progress
# An export to a file: its small writes (zip headers, deflated blocks) in few system calls.
_FILE_BUFFER_BYTES = 1024 * 1024

T = TypeVar("T")
Where = tuple[ColumnElement[bool], ...]


# --- $filter ---------------------------------------------------------------------


def parse_filter(text: str | None) -> Where:
    """SQL conditions on submissions for OData $filter, read as the OData feed reads it.

    Anything else is refused with Central's 501 codes: a filter we do not
    understand must never silently select the wrong rows.
    """
    try:
        expr = parse_odata_filter(text)
        return () if expr is None else (odata_service.filter_clause(expr),)
    except ODataError as error:
        raise odata_service.problem_of(error) from error


def selection(
    filter_text: str | None, start: str | None, end: str | None, review_state: str | None
) -> Where:
    """SQL conditions for $filter, a submission date range (end exclusive) and review states."""
    where = list(parse_filter(filter_text))
    if start:
        where.append(Submission.created_at >= _moment("start", start))
    if end:
        where.append(Submission.created_at < _moment("end", end))
    if review_state:
        where.extend(_review_states(review_state))
    return tuple(where)


def _moment(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise problems.unexpected_value(
            name, value, "write a date or time as 2026-08-01 or 2026-08-01T10:00:00Z."
        ) from error
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _review_states(value: str) -> Where:
    wanted = [state.strip() for state in value.split(",") if state.strip()]
    unknown = [s for s in wanted if s not in REVIEW_STATES and s != "null"]
    if not wanted or unknown:
        raise problems.unexpected_value(
            "reviewState", value, f"use one or more of {', '.join(REVIEW_STATES)} or null."
        )
    column = Submission.review_state
    named = [s for s in wanted if s != "null"]
    clauses = [column.in_(named)] if named else []
    if "null" in wanted:
        clauses.append(column.is_(None))
    return (or_(*clauses),)


# --- selection and pages --------------------------------------------------------------


class ExportFormat(StrEnum):
    """What an export is written as; the value is the file name's extension."""

    CSV_ZIP = "csv.zip"  # Central's layout: every table, media/ with attachments=true
    CSV = "csv"  # the root table alone, as Central's submissions.csv
    XLSX = "xlsx"  # the same tables as sheets, typed cells, one header row
    PARQUET = "parquet.zip"  # the same tables as typed Parquet files
    GEOJSON = "geojson"  # one table's locations

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    ExportFormat.CSV_ZIP: "application/zip",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.PARQUET: "application/zip",
    ExportFormat.GEOJSON: "application/geo+json",
}
# The formula guard is the CSV's alone: XLSX text cells are never run, and data for
# R, pandas, DuckDB or QGIS stays as typed.
_CSV_FORMATS = frozenset({ExportFormat.CSV_ZIP, ExportFormat.CSV})
# Submissions per batch read from the analysis copy: the writers' memory grows
# with a batch. GeoJSON (its features) holds more per row and keeps a margin under
# 400 MB with smaller ones (a million at 5,000: 363-377 MB, 13.4-13.6 s; at 2,000:
# 308 MB, 15.3 s). XLSX takes the whole 5,000: Polars plans each rendered slice
# in about 4 ms whatever its length (exports.xlsx_part.SLICE_ROWS).
_COPY_BATCH = {ExportFormat.GEOJSON: 2_000}


@dataclass(frozen=True, slots=True)
class ExportJob:
    """Everything the stream needs, settled (and authorised) before the first byte."""

    form_id: int
    schema: FormSchema
    options: ExportOptions
    where: Where
    media: bool
    format: ExportFormat
    spool_dir: Path
    # GeoJSON only: the table and geo question (None: the writer's default).
    geo_table: str | None = None
    geo_field: str | None = None
    # Told how many submissions each page handed to the writer (the CLI's progress bar).
    on_page: Callable[[int], None] | None = None
    # The files of a version (given its stored record) that the caller may not
    # see: those of personal questions (server.services.personal); None: all shown.
    hidden_files: Callable[[bytes], frozenset[str]] | None = None
    # A cleaned export: the stored cleaning entries applied to every page, and the
    # log (those entries and the submissions' edits) written beside the data.
    cleaning: tuple[CleaningChange, ...] | None = None
    cleaning_log: tuple[CleaningChange, ...] = ()
    # The form's analysis copy when it can serve this export (services.analysis_export).
    copy: CopyView | None = None

    @property
    def root_only(self) -> bool:
        return self.format is ExportFormat.CSV


@dataclass(frozen=True, slots=True)
class Page:
    records: list[ExportRecord]
    last_id: int | None
    more: bool


async def prepare_export(
    db: AsyncSession,
    form: Form,
    options: ExportOptions,
    where: Where,
    *,
    format: ExportFormat = ExportFormat.CSV_ZIP,
    media: bool,
    spool_dir: Path,
    deleted_fields: bool = False,
    geo_table: str | None = None,
    geo_field: str | None = None,
    hidden_files: Callable[[bytes], frozenset[str]] | None = None,
) -> ExportJob:
    """The export of `form`'s submissions, laid out by its current published version.

    With `deleted_fields`, fields that only older versions had are merged in
    (Central's deletedFields=true). Raises ExportError (unknown language, no geo
    question ...) before anything is streamed.
    """
    if form.current_def_id is None:
        raise problems.not_found()  # never published: nothing to export
    form_def = await db.get(FormDef, form.current_def_id)
    if form_def is None:
        raise problems.not_found()
    schema = schema_of(form_def)
    if deleted_fields:
        older = (
            await db.scalars(
                select(FormDef)
                .where(
                    FormDef.form_id == form.id,
                    FormDef.published_at.is_not(None),
                    FormDef.id != form_def.id,
                )
                .order_by(FormDef.published_at, FormDef.id)
            )
        ).all()
        schema = merge_schemas(schema, [schema_of(item) for item in older])
    if format not in _CSV_FORMATS:
        options = msgspec.structs.replace(options, escape_formulas=False)
    plan = plan_export(
        schema, options
    )  # an ExportError (unknown language ...) before the first byte
    if format is ExportFormat.GEOJSON:
        check_geojson(schema, options, table=geo_table, geo_field=geo_field)
    selected = (
        Submission.form_id == form.id,
        Submission.draft.is_(False),
        Submission.deleted_at.is_(None),
        *where,
    )
    media = media and format is ExportFormat.CSV_ZIP
    copy = await usable_copy(db, form, plan)
    return ExportJob(
        form.id,
        schema,
        options,
        selected,
        media,
        format,
        spool_dir,
        geo_table,
        geo_field,
        hidden_files=hidden_files,
        copy=copy,
    )


def _page_query(job: ExportJob, before: int | None) -> Select[tuple[object, ...]]:
    query = (
        select(
            Submission.id,
            Submission.instance_id,
            Submission.created_at,
            Submission.submitter_id,
            Actor.display_name,
            Submission.review_state,
            Submission.device_id,
            SubmissionDef.id,
            SubmissionDef.record,
            SubmissionDef.encrypted,
            FormDef.version,
        )
        .join(
            SubmissionDef,
            and_(SubmissionDef.submission_id == Submission.id, SubmissionDef.current.is_(True)),
        )
        .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
        .outerjoin(Actor, Actor.id == Submission.submitter_id)
        .where(*job.where)
        .order_by(Submission.id.desc())
        .limit(BATCH_SIZE)
    )
    if before is not None:
        query = query.where(Submission.id < before)
    return query


async def count_selected(db: AsyncSession, job: ExportJob) -> int:
    """How many submissions the export holds (for progress, not for paging)."""
    return await db.scalar(select(func.count()).select_from(Submission).where(*job.where)) or 0


async def fetch_page(db: AsyncSession, job: ExportJob, before: int | None) -> Page:
    """The next page of export records: submissions with ids below `before`, newest first."""
    rows = (await db.execute(_page_query(job, before))).all()
    if not rows:
        return Page([], None, more=False)
    edited, attached = await page_counts(db, [row[0] for row in rows], [row[7] for row in rows])
    no_files = (0, 0)
    records = []
    for row in rows:
        expected, present = attached.get(row[7], no_files)
        records.append(
            ExportRecord(
                meta=SubmissionMeta(
                    instance_id=row[1],
                    submission_date=_utc(row[2]),
                    submitter_id=row[3],
                    submitter_name=row[4],
                    attachments_present=present,
                    attachments_expected=expected,
                    # Encrypted data is stored as sent; Central says so in this column.
                    status="not decrypted" if row[9] else None,
                    review_state=row[5],
                    device_id=row[6],
                    edits=edited.get(row[0], 1) - 1,
                    form_version=row[10] or "",
                ),
                record=row[8],  # Polars reads the stored JSON itself
            )
        )
    return Page(records, rows[-1][0], more=len(rows) == BATCH_SIZE)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class _Stored:
    id: int
    name: str
    sha256: str
    size: int
    hidden: bool = False


async def _media_page(db: AsyncSession, job: ExportJob, before: int | None) -> list[_Stored]:
    """Attachments with bytes of the selected submissions' current versions, newest first.

    Files the caller may not see come marked ``hidden`` (they still count for paging).
    """
    record: Any = SubmissionDef.record if job.hidden_files is not None else null()
    query = (
        select(SubmissionAttachment.id, SubmissionAttachment.name, Blob.sha256, Blob.size, record)
        .join(Blob, Blob.sha256 == SubmissionAttachment.blob_sha256)
        .join(
            SubmissionDef,
            and_(
                SubmissionDef.id == SubmissionAttachment.submission_def_id,
                SubmissionDef.current.is_(True),
            ),
        )
        .join(Submission, Submission.id == SubmissionDef.submission_id)
        .where(*job.where)
        .order_by(SubmissionAttachment.id.desc())
        .limit(BATCH_SIZE)
    )
    if before is not None:
        query = query.where(SubmissionAttachment.id < before)
    hide = job.hidden_files
    return [
        _Stored(row[0], row[1], row[2], row[3], hide is not None and row[1] in hide(row[4]))
        for row in (await db.execute(query)).all()
    ]


# --- the stream ---------------------------------------------------------------------


async def _batches(
    rt: Runtime, job: ExportJob, first: Page
) -> AsyncGenerator[Sequence[ExportRecord], None]:
    """Everything the export holds, newest first: from the row store alone, or
    what the analysis copy does not reach yet followed by the copy's segments."""
    if job.copy is None:
        async for records in _pages(rt, job, first):
            yield records
        return
    beyond = Submission.id > job.copy.copied_through
    tail = dataclasses.replace(job, where=(*job.where, beyond), copy=None)
    async with rt.read() as db:
        first_tail = await fetch_page(db, tail, None)
    async for records in _pages(rt, tail, first_tail):
        yield records
    size = _COPY_BATCH.get(job.format, BATCH_SUBMISSIONS)
    async for batch in segment_batches(rt, job.copy, job.where, job.on_page, size):
        yield batch


async def _pages(
    rt: Runtime, job: ExportJob, first: Page
) -> AsyncGenerator[list[ExportRecord], None]:
    """Pages in order; the next one is read while the writer works on the current one."""

    async def read(before: int | None) -> Page:
        async with rt.read() as db:
            return await fetch_page(db, job, before)

    page = first
    pending: asyncio.Task[Page] | None = None
    try:
        while True:
            if page.more:
                pending = asyncio.ensure_future(read(page.last_id))
            if page.records:
                if job.on_page is not None:
                    job.on_page(len(page.records))
                yield page.records
            if pending is None:
                return
            page = await pending
            pending = None
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


async def _media(
    rt: Runtime, job: ExportJob, bridge: _LoopBridge
) -> AsyncGenerator[MediaFile, None]:
    before: int | None = None
    while True:
        async with rt.read() as db:
            stored = await _media_page(db, job, before)
        for item in stored:
            if item.hidden:
                continue
            yield MediaFile(name=item.name, size=item.size, chunks=_media_chunks(rt, item, bridge))
        if len(stored) < BATCH_SIZE:
            return
        before = stored[-1].id


def _media_chunks(rt: Runtime, item: _Stored, bridge: _LoopBridge) -> Iterator[bytes]:
    """A media file's bytes, for the writer thread.

    From the blob folder the writer reads the file itself: through the store's
    async reader every chunk was two hops between threads and the event loop.
    """
    if isinstance(rt.blobs, FilesystemBlobStore):
        return _file_chunks(rt.blobs.path_for(item.sha256), item.sha256)
    return bridge.iterate(rt.blobs.open(item.sha256, chunk_size=MEDIA_READ_BYTES))


def _file_chunks(path: Path, sha256: str) -> Iterator[bytes]:
    try:
        opened = path.open("rb")
    except FileNotFoundError:
        raise BlobNotFound(sha256) from None
    with opened:
        while chunk := opened.read(MEDIA_READ_BYTES):
            yield chunk


class ExportAbandoned(Exception):  # noqa: N818 - a state, not an error of ours
    """The client went away; the writer thread stops at its next pull or push."""


async def _step(source: AsyncIterator[T]) -> tuple[T] | None:
    try:
        return (await anext(source),)
    except StopAsyncIteration:
        return None


class _LoopBridge:
    """Lets the writer thread pull items from async generators running on the event loop.

    A source is tracked only while it is being read (so one per media file does
    not pile up), and whatever is left open is closed from the thread when the
    writer is done, on the loop, even after an error.
    """

    def __init__(self, token: EventLoopToken) -> None:
        # Calls into the loop name it explicitly: Polars writes its CSV output from
        # threads of its own, where anyio cannot find the loop by itself.
        self.token = token
        self.abandoned = threading.Event()
        self._open: set[AsyncGenerator[object, None]] = set()

    def iterate(self, source: AsyncGenerator[T, None]) -> Iterator[T]:
        tracked = cast("AsyncGenerator[object, None]", source)
        self._open.add(tracked)
        while True:
            if self.abandoned.is_set():
                raise ExportAbandoned
            item = anyio.from_thread.run(_step, source, token=self.token)
            if item is None:
                self._open.discard(tracked)
                return
            yield item[0]

    def close(self) -> None:
        for source in list(self._open):
            anyio.from_thread.run(source.aclose, token=self.token)
        self._open.clear()


class _ChunkSink:
    """The writer's output: buffered into chunks and handed to the event loop.

    `send` blocks the writer thread while the response's buffer is full, which is
    what keeps a slow client from growing memory.
    """

    def __init__(self, send: MemoryObjectSendStream[bytes], bridge: _LoopBridge) -> None:
        self._send = send
        self._bridge = bridge
        self._buffer = bytearray()

    def write(self, data: bytes, /) -> int:
        if not self._buffer and len(data) >= CHUNK_BYTES and isinstance(data, bytes):
            # A whole chunk already (a GeoJSON batch, a media file's read): handed
            # over as it is, since copying 2.4 GB through the buffer cost seconds.
            # Only bytes: a caller may reuse a bytearray or a view once write returns.
            self._send_chunk(data)
            return len(data)
        self._buffer += data
        if len(self._buffer) >= CHUNK_BYTES:
            self._push()
        return len(data)

    def flush(self) -> None:
        """Chunks go out when full; `finish` sends the rest."""

    def writable(self) -> bool:
        return True

    def finish(self) -> None:
        if self._buffer:
            self._push()

    def _push(self) -> None:
        chunk = bytes(self._buffer)
        self._buffer.clear()
        self._send_chunk(chunk)

    def _send_chunk(self, chunk: bytes) -> None:
        if self._bridge.abandoned.is_set():
            raise ExportAbandoned
        anyio.from_thread.run(self._send.send, chunk, token=self._bridge.token)


def _write(
    rt: Runtime, job: ExportJob, first: Page, sink: _ChunkSink | _FileSink, bridge: _LoopBridge
) -> None:
    """Runs in the worker thread."""
    try:
        batches = bridge.iterate(_batches(rt, job, first))
        schema, options, spool_dir = job.schema, job.options, job.spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)
        log = None
        if job.cleaning is not None:
            # Records and the copy's tables alike (exports.cleaning.columns).
            records = cast(Iterable[Sequence[ExportRecord]], batches)
            batches = apply_cleaning(records, job.cleaning)
            log = protect_personal(schema, options, job.cleaning_log)
        if job.format is ExportFormat.CSV:
            # write_root_csv only ever calls write() on its output.
            out = cast(IO[bytes], sink)
            write_root_csv(schema, batches, out, options, spool_dir=spool_dir)
        elif job.format is ExportFormat.CSV_ZIP:
            media = bridge.iterate(_media(rt, job, bridge)) if job.media else ()
            write_csv_zip(
                schema,
                batches,
                sink,
                options,
                media=media,
                spool_dir=spool_dir,
                cleaning_log=log,
                # Pages from the row store come slowly: the root table streams. A
                # cleaned export from the copy is rendered as a raw one is (its
                # batches are the copy's, cleaned as they tabulate).
                stream_root=job.copy is None,
            )
        elif job.format is ExportFormat.XLSX:
            write_xlsx(schema, batches, sink, options, spool_dir=spool_dir, cleaning_log=log)
        elif job.format is ExportFormat.PARQUET:
            write_parquet_zip(schema, batches, sink, options, spool_dir=spool_dir, cleaning_log=log)
        else:
            write_geojson(
                schema,
                batches,
                sink,
                options,
                table=job.geo_table,
                geo_field=job.geo_field,
                spool_dir=spool_dir,
            )
        sink.finish()
    finally:
        bridge.close()


async def _run_writer(
    rt: Runtime,
    job: ExportJob,
    first: Page,
    send: MemoryObjectSendStream[bytes],
    bridge: _LoopBridge,
    limiter: anyio.CapacityLimiter,
) -> None:
    async with send:  # closing it ends the response once the last chunk is out
        sink = _ChunkSink(send, bridge)
        # The export's own limiter: its thread never takes one of the default
        # tokens that its media reads (and the rest of the app) need.
        await anyio.to_thread.run_sync(_write, rt, job, first, sink, bridge, limiter=limiter)


class _FileSink:
    """The writer's output straight into a file, from the writer thread."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.written = 0  # read by the event loop for progress

    def write(self, data: bytes, /) -> int:
        self._out.write(data)
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    def writable(self) -> bool:
        return True

    def finish(self) -> None:
        self._out.flush()


async def export_to_file(
    rt: Runtime,
    job: ExportJob,
    first: Page,
    path: Path,
    slot: ExportSlot | None = None,
    on_written: Callable[[int], None] | None = None,
) -> int:
    """Write the export to a new file at `path`; the bytes written.

    `slot` as for stream_export. `on_written` is called on the event loop a few
    times a second with the bytes written so far. A failure (or a cancellation,
    which stops the writer at its next pull) leaves what was written at `path`:
    the caller discards it.
    """
    slots = export_slots(rt.settings.max_exports)
    slot = slot or slots.claim()
    bridge = _LoopBridge(anyio.lowlevel.current_token())
    try:
        with path.open("wb", buffering=_FILE_BUFFER_BYTES) as out:
            sink = _FileSink(out)
            writer = asyncio.ensure_future(
                anyio.to_thread.run_sync(
                    _write, rt, job, first, sink, bridge, limiter=slots.limiter
                )
            )
            try:
                while not writer.done():
                    await asyncio.wait({writer}, timeout=_PROGRESS_SECONDS)
                    if on_written is not None:
                        on_written(sink.written)
            finally:
                if not writer.done():
                    bridge.abandoned.set()
                    with anyio.CancelScope(shield=True):
                        await asyncio.wait({writer})
            writer.result()  # the writer's failure, if any
    finally:
        slot.release()
    return sink.written


def claim_export_slot(rt: Runtime) -> ExportSlot:
    """A place among the exports running now, or a 429 problem (services.export_slots)."""
    return export_slots(rt.settings.max_exports).claim()


async def stream_export(
    rt: Runtime, job: ExportJob, first: Page, slot: ExportSlot | None = None
) -> AsyncGenerator[bytes, None]:
    """The export's bytes, for a streaming response; `first` was fetched before it.

    `slot` (from `claim_export_slot`, taken before the response started) is
    released when the export ends; without one, a slot is claimed here.

    A failure after the first byte ends the response with an error, so the server
    drops the connection: the client sees a broken download (a zip without its
    central directory), never an error message inside the file.
    """
    slots = export_slots(rt.settings.max_exports)
    slot = slot or slots.claim()
    try:
        async for chunk in _stream(rt, job, first, slots.limiter):
            yield chunk
    finally:
        slot.release()


async def _stream(
    rt: Runtime, job: ExportJob, first: Page, limiter: anyio.CapacityLimiter
) -> AsyncGenerator[bytes, None]:
    send, receive = anyio.create_memory_object_stream[bytes](max_buffer_size=PENDING_CHUNKS)
    bridge = _LoopBridge(anyio.lowlevel.current_token())
    writer = asyncio.ensure_future(_run_writer(rt, job, first, send, bridge, limiter))
    finished = False
    try:
        async with receive:
            async for chunk in receive:
                yield chunk
        finished = True
    finally:
        bridge.abandoned.set()
        receive.close()  # a writer blocked on a full buffer wakes up and stops
        with anyio.CancelScope(shield=True):
            await asyncio.wait({writer})
        failure = None if writer.cancelled() else writer.exception()
        expected = ExportAbandoned | anyio.BrokenResourceError
        if failure is not None and not finished and not isinstance(failure, expected):
            log.warning("export abandoned by the client also failed: %r", failure)
    if finished and failure is not None:
        raise failure
