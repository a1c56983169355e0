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

The package is written here part by part (exports.xlsx_package), straight to
`out` as the CSV zip is. Memory stays flat: each table's raw frames wait in
temporary files while batches arrive (exports.xlsx_part); then each sheet's
rows are rendered by Polars (exports.sheetxml) and deflated into the sheet's
zip member as they are rendered. Nothing is written before the last batch has
been read, so a failure while reading writes nothing; a failure while writing
leaves the zip without its central directory, visibly incomplete.

A sheet holds at most 1,048,576 rows (Excel's limit, header rows included). A
longer table continues on sheets named after it, "household (2)",
"household (3)", ..., each with the header rows again and the rows in order.
Sheet names are cut to Excel's 31 characters and kept unique.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import msgspec
import polars as pl

from exports.cleaning.log import CleaningChange, cleaning_log_frame
from exports.csvzip import ByteSink, OutputGuard
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
from exports.sheetxml import inline_string, number_cell, row_columns, text_row
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
from exports.xlsx_package import (
    CONTENT_TYPES,
    ROOT_RELS,
    STYLES,
    WORKBOOK,
    WORKBOOK_RELS,
    SheetLayout,
    Style,
    content_types_xml,
    root_rels_xml,
    sheet_frame,
    sheet_part,
    styles_xml,
    workbook_rels_xml,
    workbook_xml,
)
from exports.xlsx_part import KeptFrames, write_sheet_part
from forms.schema import FormSchema

__all__ = ["CLEANING_LOG_SHEET", "MAX_ROWS", "write_xlsx"]

Batches = Iterable[Sequence[ExportRecord]]
SelectValues = Mapping[str, Sequence[str]]
Shape = Callable[[pl.DataFrame], pl.DataFrame]

# Excel's rows per sheet, header rows included (a module constant so tests can lower it).
MAX_ROWS = 1_048_576
CLEANING_LOG_SHEET = "cleaning log"
_DEFAULT_OPTIONS = ExportOptions()
# The few small parts (workbook, styles, relationships) are deflated by zipfile.
_ZIP_LEVEL = 6
# Characters Excel refuses in sheet names, and its longest name.
_SHEET_NAME_ILLEGAL = str.maketrans({c: "_" for c in "[]:*?/\\"})
_SHEET_NAME_LENGTH = 31
# Excel's serial number of 1900-03-01: earlier dates hit its 1900 leap-year bug.
_FIRST_SAFE_SERIAL = 61.0
_EXCEL_EPOCH = pl.datetime(1899, 12, 30)
_MS_PER_DAY = 86_400_000
# The frame columns that hold each row's number and each cell's number while rendered.
_ROW = "#row"
_NUMBER = "#number:"
_NUMERIC: frozenset[CellType] = frozenset({"int", "float", "bool", "date", "datetime"})
_STYLES: dict[CellType, Style] = {"date": Style.DATE, "datetime": Style.DATETIME}


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

    `select_values` (field path -> sorted values) saves collecting the values of
    split select multiples from the data, as in write_csv_zip. With
    `cleaning_log`, the log follows the tables on a sheet of its own ("cleaning log").
    """
    plan = plan_export(schema, options)
    with ExitStack() as stack:
        kept = {t.name: stack.enter_context(KeptFrames(spool_dir)) for t in plan.tables}
        collect = select_values is None and options.split_select_multiples
        found: dict[str, set[str]] = {}
        for batch in batches:
            if not batch:
                continue
            frames = tabulate_batch(plan, batch)
            for table in plan.tables:
                raw = frames[table.name]
                if collect:
                    collect_select_values(table, raw, found)
                kept[table.name].append(raw)
        values = select_values if select_values is not None else sorted_select_values(found)
        book = _Book(schema, options)
        sheets: list[_Sheet] = []
        for table in plan.tables:
            sheets += _table_rows(book, plan, table, values).sheets(book, kept[table.name])
        if cleaning_log is not None:
            log = cleaning_log_frame(cleaning_log)
            kept_log = stack.enter_context(KeptFrames(spool_dir))
            kept_log.append(log)
            sheets += _log_rows(log.columns).sheets(book, kept_log)
        work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="xlsx-", dir=spool_dir))
        _write_package(sheets, out, Path(work_dir))
    out.flush()


class _Sheet(msgspec.Struct, frozen=True):
    """One sheet part to write: its name, layout, header rows and where its rows come from."""

    name: str
    layout: SheetLayout
    header: bytes
    rows: Callable[[], Iterator[pl.DataFrame]]
    render: Callable[[pl.DataFrame, int], pl.DataFrame]
    columns: int  # of the rendered rows (exports.sheetxml.row_columns)


def _write_package(sheets: Sequence[_Sheet], out: ByteSink, work_dir: Path) -> None:
    guard = OutputGuard(out)
    archive = zipfile.ZipFile(
        guard, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL
    )
    try:
        archive.writestr(_member(CONTENT_TYPES), content_types_xml(len(sheets)))
        archive.writestr(_member(ROOT_RELS), root_rels_xml())
        archive.writestr(_member(WORKBOOK), workbook_xml([sheet.name for sheet in sheets]))
        archive.writestr(_member(WORKBOOK_RELS), workbook_rels_xml(len(sheets)))
        archive.writestr(_member(STYLES), styles_xml())
        for number, sheet in enumerate(sheets, start=1):
            before, after = sheet_frame(sheet.layout)
            write_sheet_part(
                archive,
                _member(sheet_part(number)),
                before + sheet.header,
                sheet.rows(),
                sheet.render,
                after,
                first_row=sheet.layout.header_rows + 1,
                columns=sheet.columns,
                work_dir=work_dir,
            )
        archive.close()
    except BaseException:
        guard.abort()  # no central directory: the workbook is visibly incomplete
        archive.close()
        raise


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


class _Book:
    """Labels in the export's language and the sheet names taken so far."""

    def __init__(self, schema: FormSchema, options: ExportOptions) -> None:
        language = label_language(schema, options.language)
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
        self._taken: set[str] = {"history"}  # Excel reserves "History"
        self.sheets = 0

    def sheet_name(self, table_name: str, part: int) -> str:
        base = table_name.translate(_SHEET_NAME_ILLEGAL).strip("'") or "Sheet"
        suffix = "" if part == 1 else f" ({part})"
        attempt = 1
        while True:
            tail = suffix if attempt == 1 else f"{suffix}~{attempt}"
            name = (base[: _SHEET_NAME_LENGTH - len(tail)].rstrip("'") or "Sheet") + tail
            if name.lower() not in self._taken:
                self._taken.add(name.lower())
                self.sheets += 1
                return name
            attempt += 1

    def label(self, out: OutputColumn, kind: CellType) -> str:
        """A column's label in the label row: the question's, with the part it holds."""
        column = out.column
        if column.kind == SYSTEM:
            return ""
        label = self.labels.get(column.source, "")
        if not label:
            return ""
        if kind == "offset":
            return f"{label} (UTC offset)"
        if column.part is not None:
            return f"{label} ({GEOPOINT_PARTS[column.part]})"
        if out.value is not None:
            choice = self.choices.get(column.choice_list or "", {}).get(out.value)
            return f"{label}: {choice or out.value}"
        return label


class _Cell(msgspec.Struct, frozen=True):
    """A sheet column: the frame column it reads, its cell type, and the number it holds."""

    key: str
    name: str
    kind: CellType
    number: pl.Expr | None = None  # numeric cells: the value as a number's text, null if none


class _Rows:
    """How a table's rows become sheets: its cells, header rows and shaping."""

    def __init__(
        self, name: str, cells: Sequence[_Cell], headers: Sequence[Sequence[str]], shape: Shape
    ) -> None:
        self.name = name
        self.cells = cells
        self.headers = headers
        self.shape = shape
        # Numbers are computed in a first step: referenced twice in one expression
        # (the cell, and the text where there is none) they were computed twice.
        self.numbers = [
            cell.number.alias(_NUMBER + cell.key) for cell in cells if cell.number is not None
        ]
        self.xml = _rows_xml(cells)

    def render(self, frame: pl.DataFrame, first: int) -> pl.DataFrame:
        """The frame's rows as `<row>` XML, numbered from `first`."""
        row = (pl.int_range(pl.len(), dtype=pl.Int64) + first).cast(pl.String)
        return frame.with_columns(row.alias(_ROW), *self.numbers).select(self.xml)

    def sheets(self, book: _Book, kept: KeptFrames) -> list[_Sheet]:
        """The table's sheets: the first, then continuations past Excel's row limit."""
        header_rows = len(self.headers)
        per_sheet = MAX_ROWS - header_rows
        styles = (Style.HEADER, Style.LABEL)
        header = "".join(
            text_row(number, texts, styles[number - 1])
            for number, texts in enumerate(self.headers, start=1)
        ).encode()
        widths = self._widths(kept)
        sheets = []
        start, part = 0, 1
        while part == 1 or start < kept.rows:
            count = min(per_sheet, kept.rows - start)
            layout = SheetLayout(widths, header_rows, header_rows + count, book.sheets == 0)
            name = book.sheet_name(self.name, part)
            rows = _slices(kept, start, count, self.shape)
            sheets.append(_Sheet(name, layout, header, rows, self.render, len(self.xml)))
            start += count
            part += 1
        return sheets

    def _widths(self, kept: KeptFrames) -> list[float]:
        """Column widths from the first rows: wide enough to read, never sprawling."""
        sample = self.shape(kept.first) if kept.first is not None else None
        widths = []
        for cell in self.cells:
            if cell.kind == "datetime":
                width = 20.0
            else:
                longest = None
                if sample is not None and cell.kind != "offset":
                    longest = sample.get_column(cell.key).str.len_chars().max()
                length = longest if isinstance(longest, int) else 0
                width = float(min(max(length, 8), 60) + 2)
            widths.append(max(width, min(len(cell.name), 40) + 2))
        return widths


def _slices(
    kept: KeptFrames, start: int, count: int, shape: Shape
) -> Callable[[], Iterator[pl.DataFrame]]:
    return lambda: kept.slices(start, count, shape)


def _rows_xml(cells: Sequence[_Cell]) -> list[pl.Expr]:
    """A frame's rows as the columns of their SpreadsheetML (built once, run on every slice)."""
    xml = []
    for cell in cells:
        value = to_offset(pl.col(cell.key)) if cell.kind == "offset" else pl.col(cell.key)
        if cell.number is None:
            xml.append(inline_string(pl.when(value != "").then(value)))
            continue
        style = _STYLES.get(cell.kind)
        computed = pl.col(_NUMBER + cell.key)
        number = number_cell(computed, None if style is None else int(style))
        # Text only where the answer is not a number: escaping every row cost more.
        text = inline_string(pl.when(computed.is_null() & (value != "")).then(value))
        xml.append(pl.coalesce(number, text))
    return row_columns(pl.col(_ROW), xml)


def _table_rows(book: _Book, plan: ExportPlan, table: TablePlan, values: SelectValues) -> _Rows:
    cells = []
    headers: list[list[str]] = [[], []]
    for out, kind in with_offsets(output_columns(plan, table, values)):
        number = _number(kind, out) if kind in _NUMERIC else None
        cells.append(_Cell(out.key, out.name, kind, number))
        headers[0].append(out.name)
        headers[1].append(book.label(out, kind))
    shape: Shape = lambda raw: shape_table(plan, table, raw, values)  # noqa: E731
    return _Rows(table.name, cells, headers if plan.options.label_row else headers[:1], shape)


def _log_rows(names: Sequence[str]) -> _Rows:
    """The cleaning log's rows: every cell text."""
    cells = [_Cell(name, name, "string") for name in names]
    return _Rows(CLEANING_LOG_SHEET, cells, [list(names)], lambda frame: frame)


def _number(kind: CellType, out: OutputColumn) -> pl.Expr:
    """A numeric column's value as the text of an Excel number; null if it does not read."""
    value = pl.col(out.key)
    if kind in ("int", "bool"):
        number = to_int(value)
    elif kind == "float":
        number = to_float(value)
    elif kind == "date":
        days = (to_date(value) - _EXCEL_EPOCH.dt.date()).dt.total_days()  # a whole number
        number = pl.when(days >= _FIRST_SAFE_SERIAL).then(days)
    elif kind == "datetime" and out.column.source == SUBMISSION_DATE:
        number = _serial(to_utc_datetime(value).dt.replace_time_zone(None))
    else:
        number = _serial(to_local_datetime(value))
    return number.cast(pl.String)


def _serial(moment: pl.Expr) -> pl.Expr:
    """Excel's serial day number of a naive datetime; null before 1900-03-01."""
    serial = (moment - _EXCEL_EPOCH).dt.total_milliseconds() / _MS_PER_DAY
    return pl.when(serial >= _FIRST_SAFE_SERIAL).then(serial).otherwise(None)
