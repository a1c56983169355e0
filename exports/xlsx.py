"""An Excel workbook of an export: one sheet per table of the CSV zip.

Analysts open exports in Excel; a CSV there loses leading zeros, guesses dates
in the reader's locale and runs formulas. A workbook with typed cells avoids all
three: numbers, dates and moments are real cells, text is always a string cell
(never a formula, so it is written exactly as collected: no formula guard is
needed or applied), and one header row gives the CSV column name, so
`pandas.read_excel` reads numbers and dates as such. `label_row=True` adds a
second header row with the question's label in the chosen language.

Cells (see exports.typed): int and decimal answers, geopoint parts and system
counts are numbers; date answers are Excel dates; dateTime answers are Excel
date-times holding the clock time as recorded on the phone, followed by a
`<name>_offset` text column with the phone's UTC offset ("+01:00");
SubmissionDate is in UTC. An answer that does not read as its type stays as
text, so nothing in the data is lost. Split select multiple columns are 0/1
numbers. Empty answers are empty cells. Excel keeps at most 32,767 characters
in a cell; longer text is cut there.

Memory stays flat: sheets use xlsxwriter's constant_memory mode, whose rows go
to a temporary file as they are written. A batch's rows are rendered at once by
Polars (exports.sheetxml; writing cell by cell through xlsxwriter took more than
twice as long) and appended to that file. The root sheet streams while batches
arrive and repeat tables are spooled (exports.spool) and written afterwards, as
in the CSV zip. The workbook is built in a temporary file (a zip needs seeking)
and only then copied to `out`, which may be a pipe: a failure midway writes
nothing. A table longer than Excel's 1,048,576 rows continues on sheets "name (2)", ...
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
import xlsxwriter.workbook
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from exports.cleaning.log import CleaningChange, cleaning_log_frame
from exports.csvzip import ByteSink
from exports.deflate import parallel_member
from exports.options import ExportOptions
from exports.plan import (
    GEOPOINT_PARTS,
    SUBMISSION_DATE,
    SYSTEM,
    ExportPlan,
    TablePlan,
    label_language,
    pick_label,
    plan_export,
)
from exports.records import ExportRecord
from exports.sheetxml import column_letters, inline_string, number_cell, row_xml
from exports.spool import FrameSpool
from exports.tabulate import (
    OutputColumn,
    collect_select_values,
    output_columns,
    shape_table,
    sorted_select_values,
    tabulate_batch,
)
from exports.typed import (
    CellType,
    to_date,
    to_float,
    to_int,
    to_local_datetime,
    to_offset,
    to_utc_datetime,
    with_offsets,
)
from forms.schema import FormSchema

__all__ = ["CLEANING_LOG_SHEET", "MAX_ROWS", "write_xlsx"]

Batches = Iterable[Sequence[ExportRecord]]
SelectValues = Mapping[str, Sequence[str]]

# Excel's rows per sheet, header rows included (a module constant so tests can lower it).
MAX_ROWS = 1_048_576
CLEANING_LOG_SHEET = "cleaning log"
_DEFAULT_OPTIONS = ExportOptions()
# The workbook's parts are deflated at level 1 on every core (exports.deflate):
# with xlsxwriter's default (zlib level 6, one thread) packaging the zip took
# more than half of an XLSX export's CPU (8.6 of 15.7 s for 100,000 submissions).
PACKAGE_LEVEL = 1


class _PackageZip(zipfile.ZipFile):
    """The zip xlsxwriter packages a workbook in, deflating its parts in parallel blocks."""

    def __init__(self, file: Any, mode: Any = "r", *args: Any, **kwargs: Any) -> None:
        kwargs["compresslevel"] = PACKAGE_LEVEL
        super().__init__(file, mode, *args, **kwargs)

    def open(self, name: Any, mode: Any = "r", pwd: Any = None, **kwargs: Any) -> Any:
        member = super().open(name, mode, pwd, **kwargs)
        if mode == "w" and getattr(member, "_compressor", None) is not None:
            return parallel_member(member, PACKAGE_LEVEL)
        return member


# xlsxwriter names the class in its module when it packages (Workbook._store_workbook);
# only exports build workbooks in this process. Pinned by tests/exports/test_xlsx.py.
xlsxwriter.workbook.ZipFile = _PackageZip
# Characters Excel refuses in sheet names, and its longest name.
_SHEET_NAME_ILLEGAL = str.maketrans({c: "_" for c in "[]:*?/\\"})
_SHEET_NAME_LENGTH = 31
# Excel's serial number of 1900-03-01: earlier dates hit its 1900 leap-year bug.
_FIRST_SAFE_SERIAL = 61.0
_EXCEL_EPOCH = pl.datetime(1899, 12, 30)
_MS_PER_DAY = 86_400_000
# The frame column that holds each row's number while it is rendered.
_ROW = "#row"
_NUMERIC: frozenset[CellType] = frozenset({"int", "float", "bool", "date", "datetime"})


def write_xlsx(
    schema: FormSchema,
    batches: Batches,
    out: ByteSink,
    options: ExportOptions = _DEFAULT_OPTIONS,
    *,
    select_values: SelectValues | None = None,
    spool_dir: str | Path | None = None,
    cleaning_log: Sequence[CleaningChange] | None = None,
) -> None:
    """Write the export of `batches` (newest submission first) as an .xlsx workbook to `out`.

    `select_values` (field path -> sorted values) lets the root sheet stream
    even with split_select_multiples, as in write_csv_zip. With `cleaning_log`,
    the log follows the tables on a sheet of its own ("cleaning log").
    """
    plan = plan_export(schema, options)
    with tempfile.TemporaryFile(dir=spool_dir) as target:
        settings: dict[str, Any] = {"constant_memory": True, "use_zip64": True}
        if spool_dir is not None:
            settings["tmpdir"] = str(spool_dir)
        workbook = xlsxwriter.Workbook(target, settings)
        try:
            book = _Book(workbook, schema, options)
            _write_tables(plan, batches, book, select_values, spool_dir)
            if cleaning_log is not None:
                _write_log(book, cleaning_log)
        finally:
            workbook.close()
        target.seek(0)
        shutil.copyfileobj(target, out, length=1024 * 1024)
    out.flush()


def _write_tables(
    plan: ExportPlan,
    batches: Batches,
    book: _Book,
    select_values: SelectValues | None,
    spool_dir: str | Path | None,
) -> None:
    root = plan.root
    stream_root = select_values is not None or not plan.options.split_select_multiples
    with ExitStack() as stack:
        spools = {
            table.name: stack.enter_context(FrameSpool(spool_dir))
            for table in plan.tables
            if table is not root or not stream_root
        }
        found: dict[str, set[str]] = {}
        root_sheets = _TableSheets(book, plan, root, select_values) if stream_root else None
        for frames in _tabulated(plan, batches):
            for table in plan.tables:
                raw = frames[table.name]
                if root_sheets is not None and table is root:
                    root_sheets.write(raw)
                    continue
                if select_values is None:
                    collect_select_values(table, raw, found)
                spools[table.name].append(raw)
        if root_sheets is not None:
            root_sheets.finish()
        values = select_values if select_values is not None else sorted_select_values(found)
        for table in plan.tables:
            if table.name in spools:
                sheets = _TableSheets(book, plan, table, values)
                for raw in spools[table.name].frames():
                    sheets.write(raw)
                sheets.finish()


def _tabulated(plan: ExportPlan, batches: Batches) -> Iterator[dict[str, pl.DataFrame]]:
    for batch in batches:
        if batch:
            yield tabulate_batch(plan, batch)


class _Book:
    """The workbook, its cell formats and the sheet names taken so far."""

    def __init__(self, workbook: Workbook, schema: FormSchema, options: ExportOptions) -> None:
        language = label_language(schema, options.language)
        self.workbook = workbook
        # Field path -> question label, choice list -> value -> label, in the export's language.
        self.labels = {
            field.path: label
            for field in schema.fields
            if (label := pick_label(field.labels, language))
        }
        self.choices = {
            name: {c.name: label for c in choices if (label := pick_label(c.labels, language))}
            for name, choices in schema.choices.items()
        }
        self.header = workbook.add_format({"bold": True})
        self.label = workbook.add_format({"italic": True})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._taken: set[str] = {"history"}  # Excel reserves "History"

    def add_sheet(self, table_name: str, part: int) -> Worksheet:
        return self.workbook.add_worksheet(self._sheet_name(table_name, part))

    def _sheet_name(self, table_name: str, part: int) -> str:
        base = table_name.translate(_SHEET_NAME_ILLEGAL).strip("'") or "Sheet"
        suffix = "" if part == 1 else f" ({part})"
        attempt = 1
        while True:
            tail = suffix if attempt == 1 else f"{suffix}~{attempt}"
            name = (base[: _SHEET_NAME_LENGTH - len(tail)].rstrip("'") or "Sheet") + tail
            if name.lower() not in self._taken:
                self._taken.add(name.lower())
                return name
            attempt += 1


class _TableSheets:
    """One table's sheets: the first, then continuations when Excel's row limit is hit."""

    def __init__(
        self, book: _Book, plan: ExportPlan, table: TablePlan, values: SelectValues | None
    ) -> None:
        self.book = book
        self.plan = plan
        self.table = table
        self.values = values
        typed = with_offsets(output_columns(plan, table, values))
        self.columns = [out for out, _ in typed]
        self.types = [kind for _, kind in typed]
        self.header_rows = 2 if plan.options.label_row else 1
        self.styles = [self._style(kind) for kind in self.types]
        self.rows = self._rows_xml()
        self.widths: list[float] | None = None
        self.sheet: Worksheet | None = None
        self.parts = 0
        self.row = 0

    def write(self, raw: pl.DataFrame) -> None:
        if raw.height == 0:
            return
        frame = shape_table(self.plan, self.table, raw, self.values)
        if self.widths is None:
            self.widths = self._widths(frame)
        start = 0
        while start < frame.height:
            if self.sheet is None or self.row >= MAX_ROWS:
                self._next_sheet()
            count = min(frame.height - start, MAX_ROWS - self.row)
            self._append(frame.slice(start, count))
            start += count

    def _append(self, frame: pl.DataFrame) -> None:
        sheet = self.sheet
        assert sheet is not None
        first = self.row + 1  # Excel numbers rows from 1
        numbered = frame.with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64) + first).cast(pl.String).alias(_ROW)
        )
        xml = numbered.select(self.rows).item()
        self.row += frame.height
        _append_rows(sheet, xml, self.row)

    def _rows_xml(self) -> pl.Expr:
        """One batch's rows as SpreadsheetML text (built once, run on every batch)."""
        row_number = pl.col(_ROW)
        cells = []
        for index, (kind, out, style) in enumerate(
            zip(self.types, self.columns, self.styles, strict=True)
        ):
            reference = pl.lit(column_letters(index)) + row_number
            value = to_offset(pl.col(out.key)) if kind == "offset" else pl.col(out.key)
            text = inline_string(reference, pl.when(value != "").then(value))
            if kind in _NUMERIC:
                number = self._number(kind, out)
                cell = (
                    pl.when(number.is_not_null())
                    .then(number_cell(reference, number, style))
                    .otherwise(text)
                )
            else:
                cell = text
            cells.append(cell)
        return row_xml(row_number, cells).str.join("")

    def finish(self) -> None:
        if self.sheet is None:
            self._next_sheet()  # an empty table still gets its headers

    def _next_sheet(self) -> None:
        self.parts += 1
        sheet = self.book.add_sheet(self.table.name, self.parts)
        # constant_memory writes rows strictly in order: all of row 0, then row 1.
        for column, out in enumerate(self.columns):
            sheet.write_string(0, column, out.name, self.book.header)
        for column, (out, kind) in enumerate(zip(self.columns, self.types, strict=True)):
            label = self._label(out, kind) if self.header_rows == 2 else ""
            if label:
                sheet.write_string(1, column, label, self.book.label)
            width = self.widths[column] if self.widths else 10.0
            sheet.set_column(column, column, max(width, min(len(out.name), 40) + 2))
        sheet.freeze_panes(self.header_rows, 0)
        sheet._write_single_row(self.header_rows)  # the header rows go to the row file now
        self.sheet = sheet
        self.row = self.header_rows

    def _label(self, out: OutputColumn, kind: CellType) -> str:
        column = out.column
        if column.kind == SYSTEM:
            return ""
        label = self.book.labels.get(column.source, "")
        if kind == "offset":
            return f"{label} (UTC offset)" if label else ""
        if column.part is not None:
            return f"{label} ({GEOPOINT_PARTS[column.part]})" if label else ""
        if out.value is not None:
            choice = self.book.choices.get(column.choice_list or "", {}).get(out.value)
            return f"{label}: {choice or out.value}" if label else ""
        return label

    def _style(self, kind: CellType) -> int | None:
        """The cell format index of a column's numbers (dates need one)."""
        if kind == "date":
            return int(self.book.date._get_xf_index())
        if kind == "datetime":
            return int(self.book.datetime._get_xf_index())
        return None

    def _number(self, kind: CellType, out: OutputColumn) -> pl.Expr:
        value = pl.col(out.key)
        if kind in ("int", "bool"):
            number = to_int(value)
        elif kind == "float":
            number = to_float(value)
        elif kind == "date":
            number = _serial(to_date(value).cast(pl.Datetime("ms")))
        elif kind == "datetime" and out.column.source == SUBMISSION_DATE:
            number = _serial(to_utc_datetime(value).dt.replace_time_zone(None))
        elif kind == "datetime":
            number = _serial(to_local_datetime(value))
        else:
            number = pl.lit(None, dtype=pl.Float64)
        return number.cast(pl.String)

    def _widths(self, frame: pl.DataFrame) -> list[float]:
        """Column widths from the first rows: wide enough to read, never sprawling."""
        sample = frame.head(200)
        widths = []
        for kind, out in zip(self.types, self.columns, strict=True):
            if kind == "datetime":
                widths.append(20.0)
                continue
            longest = sample.get_column(out.key).str.len_chars().max()
            length = longest if isinstance(longest, int) else 0
            widths.append(float(min(max(length, 8), 60) + 2))
        return widths


def _write_log(book: _Book, log: Sequence[CleaningChange]) -> None:
    """The cleaning log as text cells, one entry a row (it is never long)."""
    sheet = book.add_sheet(CLEANING_LOG_SHEET, 1)
    frame = cleaning_log_frame(log)
    for column, name in enumerate(frame.columns):
        sheet.write_string(0, column, name, book.header)
        sheet.set_column(column, column, 24)
    sheet.freeze_panes(1, 0)
    for row, values in enumerate(frame.iter_rows(), start=1):
        for column, value in enumerate(values):
            if value:
                sheet.write_string(row, column, value)


def _serial(moment: pl.Expr) -> pl.Expr:
    """Excel's serial day number of a naive datetime; null before 1900-03-01."""
    serial = (moment - _EXCEL_EPOCH).dt.total_milliseconds() / _MS_PER_DAY
    return pl.when(serial >= _FIRST_SAFE_SERIAL).then(serial).otherwise(None)


def _append_rows(sheet: Worksheet, xml: str, rows_after: int) -> None:
    """Add rendered rows to a constant_memory sheet, as its own row writer would.

    Uses xlsxwriter internals (pinned in uv.lock; the XLSX tests read every
    sheet back): the row file, the dimension and the next row it expects.
    """
    assert sheet.constant_memory
    assert sheet.row_data_fh is not None
    sheet.row_data_fh.write(xml)
    sheet.dim_rowmax = rows_after - 1
    sheet.previous_row = rows_after
