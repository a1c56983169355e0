"""A zip of Parquet files, one per table of the CSV zip, with typed columns.

For analysts who load exports into Polars, pandas, R (arrow), DuckDB or a
warehouse: columns keep their types, so nobody re-parses dates or numbers, and
files are a fraction of the CSV's size. Members are named like the CSV zip's
(`<formId>.parquet`, `<formId>-<repeat>.parquet`) and hold the same rows and
columns, so KEY/PARENT_KEY joins work the same.

Column types (exports.typed): int answers, system counts and SubmitterID are
Int64; decimal answers and geopoint parts Float64; date answers Date; dateTime
answers and SubmissionDate Datetime(ms, UTC) (offsets applied; a value without
offset is taken as UTC), each dateTime answer followed by a String column
`<name>_offset` with the phone's UTC offset as sent ("+01:00"), so no offset is
lost; select multiple answers List(String) of their values (or labels with
labels=True; an empty list when nothing was chosen), without the
space-separated string as well since `list.join(" ")` gives it back; split
select multiple columns Boolean;
everything else String. A value that does not parse as its column's type (say
"abc" in an int field, from an older form version) is null, as is an empty
answer. Column names repeated in the CSV (group paths off) get " (2)", " (3)".
Text is written exactly as collected: no formula guard (Parquet is not run).

Memory stays flat: each table's raw frames are spooled (exports.spool) while
batches arrive, then typed one spooled batch at a time and streamed by Polars
into a Parquet file (row groups as they fill), which is copied into the zip.
Parquet members are stored, not deflated: they are compressed inside (zstd).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import polars as pl
from polars.io.plugins import register_io_source

from exports.cleaning.log import CleaningChange, cleaning_log_frame
from exports.csvzip import ByteSink, OutputGuard
from exports.options import ExportOptions
from exports.plan import ExportPlan, TablePlan, plan_export
from exports.records import ExportRecord
from exports.spool import FrameSpool
from exports.tabulate import collect_select_values, sorted_select_values, tabulate_batch
from exports.typed import typed_columns, typed_schema, typed_table
from forms.schema import FormSchema

__all__ = ["CLEANING_LOG_PARQUET", "parquet_member_name", "write_parquet_zip"]
CLEANING_LOG_PARQUET = "cleaning-log.parquet"

Batches = Iterable[Sequence[ExportRecord]]
SelectValues = Mapping[str, Sequence[str]]

_DEFAULT_OPTIONS = ExportOptions()
# Rows a Parquet row group holds: the writer buffers one group, so this bounds memory
# (100,000 rows of a 40-question form took 430 MB; 25,000 keep it under 300 MB).
_ROW_GROUP_ROWS = 25_000


def write_parquet_zip(
    schema: FormSchema,
    batches: Batches,
    out: ByteSink,
    options: ExportOptions = _DEFAULT_OPTIONS,
    *,
    select_values: SelectValues | None = None,
    spool_dir: str | Path | None = None,
    cleaning_log: Sequence[CleaningChange] | None = None,
) -> None:
    """Write a zip of one Parquet file per table of `batches` to `out` (never sought).

    With `cleaning_log`, the log is added as `cleaning-log.parquet` (text columns).

    `select_values` (field path -> sorted values) fixes the split select
    multiple columns; without it they are the values found in the data.
    If anything fails midway the zip has no central directory.
    """
    plan = plan_export(schema, options)
    guard = OutputGuard(out)
    archive = zipfile.ZipFile(guard, "w", compression=zipfile.ZIP_STORED)
    try:
        with ExitStack() as stack:
            spools = {t.name: stack.enter_context(FrameSpool(spool_dir)) for t in plan.tables}
            found: dict[str, set[str]] = {}
            for batch in batches:
                if not batch:
                    continue
                frames = tabulate_batch(plan, batch)
                for table in plan.tables:
                    if select_values is None:
                        collect_select_values(table, frames[table.name], found)
                    spools[table.name].append(frames[table.name])
            values = select_values if select_values is not None else sorted_select_values(found)
            for table in plan.tables:
                _copy_table(plan, table, spools[table.name], archive, values, spool_dir)
        if cleaning_log is not None:
            data = io.BytesIO()
            cleaning_log_frame(cleaning_log).write_parquet(data, compression="zstd")
            info = zipfile.ZipInfo(CLEANING_LOG_PARQUET, date_time=time.gmtime()[:6])
            archive.writestr(info, data.getvalue(), compress_type=zipfile.ZIP_STORED)
        archive.close()
    except BaseException:
        guard.abort()  # no central directory: the archive is visibly incomplete
        archive.close()
        raise


def parquet_member_name(table: TablePlan) -> str:
    """The CSV zip's member name with .parquet for .csv."""
    stem = table.file_name.removesuffix(".csv")
    return f"{stem}.parquet"


def _copy_table(
    plan: ExportPlan,
    table: TablePlan,
    spool: FrameSpool,
    archive: zipfile.ZipFile,
    select_values: SelectValues,
    spool_dir: str | Path | None,
) -> None:
    columns = typed_columns(plan, table, select_values)
    schema = typed_schema(columns)

    def typed_frames(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        remaining = n_rows
        for raw in spool.frames():
            frame = typed_table(plan, table, raw, columns, select_values)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if predicate is not None:
                frame = frame.filter(predicate)
            if remaining is not None:
                frame = frame.head(remaining)
                remaining -= frame.height
            yield frame
            if remaining == 0:
                return

    frames = register_io_source(typed_frames, schema=schema, validate_schema=True)
    with tempfile.TemporaryDirectory(dir=spool_dir) as directory:
        path = Path(directory) / "table.parquet"
        if spool.rows:
            frames.sink_parquet(path, compression="zstd", row_group_size=_ROW_GROUP_ROWS)
        else:
            pl.DataFrame(schema=schema).write_parquet(path, compression="zstd")
        info = zipfile.ZipInfo(parquet_member_name(table), date_time=time.gmtime()[:6])
        info.compress_type = zipfile.ZIP_STORED
        info.file_size = path.stat().st_size
        with path.open("rb") as source, archive.open(info, "w") as member:
            shutil.copyfileobj(source, member, length=1024 * 1024)
