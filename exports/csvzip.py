"""Central-compatible CSV exports: `submissions.csv.zip` and the root-only `.csv`.

Layout and bytes follow Central (central-backend's briefcase.js with
csv-stringify): UTF-8 without BOM, `\n` line ends, quotes only around cells
holding a comma, quote or line break, empty cells unquoted; members are the root
table `<formId>.csv`, then one `<formId>-<repeat>.csv` per repeat, then
attachments under `media/`. The one deliberate difference is formula escaping
(see exports.formulas).

Memory stays flat: each table's rows are kept batch by batch in temporary
files and written at the end as one member that Polars renders and deflates
(exports.csvmember). When every header is known up front, the root table's
member is sent while it is written, so the first bytes leave at once: Polars'
gzip file is followed as it grows (exports.livemember), or with `stream_root`
(records arriving slowly from the row store) the rows go straight into the
member. The
output may be a pipe or socket; it is never sought. If anything fails midway
the archive is left without its central directory, so a client never mistakes a
truncated export for a complete one.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Protocol

import msgspec
import polars as pl

from exports.cleaning.log import CleaningChange, cleaning_log_frame
from exports.csvmember import RenderedTable, StreamedTable
from exports.deflate import parallel_member
from exports.formulas import formula_escaped
from exports.options import ExportOptions
from exports.plan import ExportPlan, TablePlan, plan_export, sanitize_file_name
from exports.records import ExportRecord
from exports.spool import FrameSpool
from exports.tabulate import (
    collect_select_values,
    header,
    shape_table,
    sorted_select_values,
    tabulate_batch,
)
from forms.schema import FormSchema

__all__ = [
    "CLEANING_LOG_MEMBER",
    "ByteSink",
    "MediaFile",
    "OutputGuard",
    "write_csv_zip",
    "write_root_csv",
]
# The cleaning log's member in a cleaned export's zip.
CLEANING_LOG_MEMBER = "cleaning-log.csv"

Batches = Iterable[Sequence[ExportRecord]]
SelectValues = Mapping[str, Sequence[str]]

_DEFAULT_OPTIONS = ExportOptions()
# Deflate level 1: about a quarter larger than zlib's default level 6 on export
# CSV, and four times faster to write (measured on 100,000 submissions: 1.1 s
# against 4.2 s). Compression was the largest single cost of a big export.
ZIP_LEVEL = 1
_NEEDS_QUOTES = frozenset(',"\n\r')


class ByteSink(Protocol):
    """Where a zip goes: a file, a pipe, a socket's writer (never sought)."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> None: ...


class MediaFile(msgspec.Struct, frozen=True):
    """An attachment to add under media/ (what Central's attachments=true adds)."""

    name: str
    size: int
    chunks: Iterable[bytes]


def write_csv_zip(
    schema: FormSchema,
    batches: Batches,
    out: ByteSink,
    options: ExportOptions = _DEFAULT_OPTIONS,
    *,
    select_values: SelectValues | None = None,
    media: Iterable[MediaFile] = (),
    spool_dir: str | Path | None = None,
    cleaning_log: Sequence[CleaningChange] | None = None,
    stream_root: bool = False,
) -> None:
    """Write Central's CSV zip of `batches` (newest submission first) to `out`.

    With `cleaning_log`, the log is added as `cleaning-log.csv` after the tables.

    Tables are rendered and deflated by Polars (exports.csvmember); with every
    header known, the root table's member is sent while Polars writes it, so a
    long export starts sending at once and no proxy gives up on a silent
    response. When batches come slowly (records read page by page from the
    database), `stream_root` writes the root table's rows into its member as
    they arrive instead.

    `select_values` (field path -> sorted values) lets the root table stream
    even with split_select_multiples; without it the values are collected from
    the data, as Central does, and every table is spooled first.
    """
    plan = plan_export(schema, options)
    guard = OutputGuard(out)
    archive = zipfile.ZipFile(guard, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL)
    try:
        _write_tables(plan, batches, archive, select_values, spool_dir, stream_root=stream_root)
        if cleaning_log is not None:
            frame = cleaning_log_frame(cleaning_log)
            data = _header_line(list(frame.columns)) + _csv_text(plan, frame)
            archive.writestr(_member_info(CLEANING_LOG_MEMBER, len(data)), data)
        _write_media(archive, media)
        archive.close()
    except BaseException:
        guard.abort()  # no central directory: the archive is visibly incomplete
        archive.close()
        raise


def write_root_csv(
    schema: FormSchema,
    batches: Batches,
    out: IO[bytes],
    options: ExportOptions = _DEFAULT_OPTIONS,
    *,
    select_values: SelectValues | None = None,
    spool_dir: str | Path | None = None,
) -> None:
    """Write the root table alone as CSV (Central's `submissions.csv`)."""
    plan = plan_export(schema, options, root_only=True)
    root = plan.root
    if select_values is not None or not options.split_select_multiples:
        out.write(_header_line(header(plan, root, select_values)))
        for batch in batches:
            _write_rows(plan, root, tabulate_batch(plan, batch)[root.name], out, select_values)
        return
    with FrameSpool(spool_dir) as spool:
        found: dict[str, set[str]] = {}
        for batch in batches:
            raw = tabulate_batch(plan, batch)[root.name]
            collect_select_values(root, raw, found)
            spool.append(raw)
        values = sorted_select_values(found)
        out.write(_header_line(header(plan, root, values)))
        for raw in spool.frames():
            _write_rows(plan, root, raw, out, values)


def _write_tables(
    plan: ExportPlan,
    batches: Batches,
    archive: zipfile.ZipFile,
    select_values: SelectValues | None,
    spool_dir: str | Path | None,
    *,
    stream_root: bool,
) -> None:
    """Every table as one member (exports.csvmember), in plan order."""
    known = select_values is not None or not plan.options.split_select_multiples
    root = plan.root
    with ExitStack() as stack:
        rendered: dict[str, RenderedTable] = {}
        if known and stream_root:
            values: SelectValues = select_values or {}
            for table in plan.tables[1:]:
                rendered[table.name] = stack.enter_context(RenderedTable(spool_dir))
            # Size unknown until the end: zip64 headers keep >4 GiB members valid.
            with archive.open(root.file_name, "w", force_zip64=True) as opened:
                member = parallel_member(opened, ZIP_LEVEL)
                member.write(_header_line(header(plan, root, values)))
                for frames in _tabulated(plan, batches):
                    _write_rows(plan, root, frames[root.name], member, values)
                    for table in plan.tables[1:]:
                        rendered[table.name].append(_cells(plan, table, frames[table.name], values))
        elif known:
            values = select_values or {}
            # Every header is known: Polars renders each table while batches arrive,
            # the tables side by side.
            for table in plan.tables:
                streamed = StreamedTable(header(plan, table, values), spool_dir)
                rendered[table.name] = stack.enter_context(streamed)
                if table is root:
                    # The first member leaves as it is rendered: the first bytes go out at once.
                    streamed.send_live(archive, _member_info(root.file_name, 0))
            for frames in _tabulated(plan, batches):
                for table in plan.tables:
                    rendered[table.name].append(_cells(plan, table, frames[table.name], values))
        else:
            # The 0/1 columns need every chosen value first: raw frames wait in spools.
            for table in plan.tables:
                rendered[table.name] = stack.enter_context(RenderedTable(spool_dir))
            spools = {
                table.name: stack.enter_context(FrameSpool(spool_dir)) for table in plan.tables
            }
            found: dict[str, set[str]] = {}
            for frames in _tabulated(plan, batches):
                for table in plan.tables:
                    raw = frames[table.name]
                    collect_select_values(table, raw, found)
                    spools[table.name].append(raw)
            values = sorted_select_values(found)
            for table in plan.tables:
                for raw in spools[table.name].frames():
                    rendered[table.name].append(_cells(plan, table, raw, values))
                spools[table.name].close()
        for table in plan.tables:
            if table.name in rendered:
                info = _member_info(table.file_name, 0)
                rendered[table.name].write_member(archive, info, header(plan, table, values))
                rendered[table.name].close()


def _tabulated(plan: ExportPlan, batches: Batches) -> Iterator[dict[str, pl.DataFrame]]:
    for batch in batches:
        if batch:
            yield tabulate_batch(plan, batch)


def _cells(
    plan: ExportPlan, table: TablePlan, raw: pl.DataFrame, select_values: SelectValues
) -> pl.DataFrame:
    """A raw frame's rows as the text cells of its table (formula guard if asked, blanks null)."""
    frame = shape_table(plan, table, raw, select_values)
    escape = plan.options.escape_formulas
    cells = [formula_escaped(name) if escape else pl.col(name) for name in frame.columns]
    # Blank cells become nulls, which are written unquoted like csv-stringify does.
    return frame.select(
        pl.when(cell != "").then(cell).otherwise(pl.lit(None, dtype=pl.String)).alias(name)
        for cell, name in zip(cells, frame.columns, strict=True)
    )


def _write_media(archive: zipfile.ZipFile, media: Iterable[MediaFile]) -> None:
    written: set[str] = set()
    for item in media:
        name = sanitize_file_name(item.name)
        if not name or name in written:
            continue  # names are unique per submission only; the first one wins
        written.add(name)
        # Stored, not deflated: photos, audio and video are compressed already, and
        # deflating them again cost CPU for a few percent at best.
        info = _member_info(f"media/{name}", item.size, compress_type=zipfile.ZIP_STORED)
        with archive.open(info, "w") as member:
            for chunk in item.chunks:
                member.write(chunk)


def _member_info(
    name: str, size: int, *, compress_type: int = zipfile.ZIP_DEFLATED
) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.compress_type = compress_type
    # A ZipInfo passed to ZipFile.open keeps its own level, not the archive's.
    info._compresslevel = ZIP_LEVEL  # type: ignore[attr-defined]
    info.file_size = size
    return info


def _write_rows(
    plan: ExportPlan,
    table: TablePlan,
    raw: pl.DataFrame,
    out: IO[bytes],
    select_values: SelectValues | None,
) -> None:
    if raw.height == 0:
        return
    _write_frame(plan, shape_table(plan, table, raw, select_values), out)


def _csv_text(plan: ExportPlan, frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    if frame.height:
        _write_frame(plan, frame, out)
    return out.getvalue()


def _write_frame(plan: ExportPlan, frame: pl.DataFrame, out: IO[bytes]) -> None:
    """Rows of text columns as Central writes them (the formula guard if asked)."""
    escape = plan.options.escape_formulas
    cells = [formula_escaped(name) if escape else pl.col(name) for name in frame.columns]
    # Blank cells become nulls, which Polars writes unquoted like csv-stringify does.
    frame = frame.select(
        pl.when(cell != "").then(cell).otherwise(pl.lit(None, dtype=pl.String)).alias(name)
        for cell, name in zip(cells, frame.columns, strict=True)
    )
    # Rendered whole, then written once: the zip member deflates it in blocks side by side.
    rendered = io.BytesIO()
    frame.write_csv(
        rendered,
        include_header=False,
        separator=",",
        line_terminator="\n",
        quote_char='"',
        quote_style="necessary",
        null_value="",
    )
    out.write(rendered.getvalue())


def _header_line(names: Sequence[str]) -> bytes:
    return (",".join(_quoted(name) for name in names) + "\n").encode("utf-8")


def _quoted(cell: str) -> str:
    if _NEEDS_QUOTES.isdisjoint(cell):
        return cell
    return '"' + cell.replace('"', '""') + '"'


class OutputGuard:
    """A write-only, unseekable view of the output that can be cut off after a failure."""

    def __init__(self, out: ByteSink) -> None:
        self._out = out
        self._aborted = False

    def write(self, data: bytes) -> int:
        if not self._aborted:
            self._out.write(data)
        return len(data)

    def flush(self) -> None:
        if not self._aborted:
            self._out.flush()

    def close(self) -> None:
        """The output belongs to the caller, who closes it."""

    def abort(self) -> None:
        self._aborted = True
