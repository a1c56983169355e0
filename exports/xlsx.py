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
`out` as the CSV zip is. Memory stays flat: each sheet's rows are rendered by
Polars (exports.sheetxml) and deflated into a temporary file while batches
arrive, a thread per sheet (exports.xlsx_part); once the last batch is in, each
sheet's head (its size and column widths) is put in front of its rows as the
zip member is written. Split select multiples need every chosen value before
the first row can be shaped: then the raw frames wait in temporary files until
the last batch and are streamed after it. Nothing is written to `out` before
the last batch has been read, so a failure while reading writes nothing; a
failure while writing leaves the zip without its central directory, visibly
incomplete.

A sheet holds at most 1,048,576 rows (Excel's limit, header rows included). A
longer table continues on sheets named after it, "household (2)",
"household (3)", ..., each with the header rows again and the rows in order.
Sheet names are cut to Excel's 31 characters and kept unique.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

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
from exports.sheetxml import (
    inline_string,
    needs_care,
    needs_cut,
    number_cell,
    row_columns,
    text_row,
)
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
from exports.xlsx_part import KeptFrames, SheetBody, StreamedSheet, write_sheet_part
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
_TEXT = "#text:"
_NUMERIC: frozenset[CellType] = frozenset({"int", "float", "bool", "date", "datetime"})
_STYLES: dict[CellType, Style] = {"date": Style.DATE, "datetime": Style.DATETIME}
# Columns parsed in a step of their own, so that the parse runs once.
_PARSED_KINDS: frozenset[CellType] = frozenset({"date", "datetime", "offset"})
_PARSED = "#parsed:"
# Rows of a table's first frame its column widths are measured on.
_WIDTH_SAMPLE = 200


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
    split select multiples from the data, as in write_csv_zip, and lets the
    sheets stream. With `cleaning_log`, the log follows the tables on a sheet of
    its own ("cleaning log").
    """
    plan = plan_export(schema, options)
    book = _Book(schema, options)
    with ExitStack() as stack:
        work_dir = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="xlsx-", dir=spool_dir))
        )
        tables: list[_TableSheets] = []
        if select_values is not None or not options.split_select_multiples:
            values = select_values or {}
            for table in plan.tables:
                rows = _table_rows(book, plan, table, values)
                tables.append(stack.enter_context(_TableSheets(rows, work_dir)))
            for batch in batches:
                if batch:
                    frames = tabulate_batch(plan, batch)
                    for table, sheets in zip(plan.tables, tables, strict=True):
                        sheets.append(frames[table.name])
        else:
            kept = [stack.enter_context(KeptFrames(work_dir)) for _ in plan.tables]
            found: dict[str, set[str]] = {}
            for batch in batches:
                if batch:
                    frames = tabulate_batch(plan, batch)
                    for table, frames_kept in zip(plan.tables, kept, strict=True):
                        collect_select_values(table, frames[table.name], found)
                        frames_kept.append(frames[table.name])
            values = sorted_select_values(found)
            for table, frames_kept in zip(plan.tables, kept, strict=True):
                rows = _table_rows(book, plan, table, values)
                sheets = stack.enter_context(_TableSheets(rows, work_dir))
                for raw in frames_kept.frames():
                    sheets.append(raw)
                frames_kept.close()
                tables.append(sheets)
        if cleaning_log is not None:
            log = cleaning_log_frame(cleaning_log)
            sheets = stack.enter_context(_TableSheets(_log_rows(log.columns), work_dir))
            sheets.append(log)
            tables.append(sheets)
        parts = [sheet for sheets in tables for sheet in sheets.finish(book)]
        _write_package(parts, out)
    out.flush()


class _Sheet(msgspec.Struct, frozen=True):
    """One sheet part to write: its name, layout, header rows and its rendered rows."""

    name: str
    layout: SheetLayout
    header: bytes
    body: SheetBody | None


def _write_package(sheets: Sequence[_Sheet], out: ByteSink) -> None:
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
            info = _member(sheet_part(number))
            write_sheet_part(archive, info, before + sheet.header, sheet.body, after)
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
    parsed: pl.Expr | None = None  # dates, moments and offsets, parsed (_parsed)


class _Rows:
    """How a table's rows become sheets: its cells, header rows and shaping."""

    def __init__(
        self, name: str, cells: Sequence[_Cell], headers: Sequence[Sequence[str]], shape: Shape
    ) -> None:
        self.name = name
        self.cells = cells
        self.headers = headers
        self.shape = shape
        # Numbers are computed in steps of their own: referenced twice in one expression
        # (the cell, and the text where there is none) they were computed twice. Dates
        # and moments are parsed in the step before (Polars' eager select does not
        # share the parse between the serial number and its range check).
        self.parsed = [
            cell.parsed.alias(_parsed_name(cell)) for cell in cells if cell.parsed is not None
        ]
        self.numbers = [
            cell.number.alias(_NUMBER + cell.key) for cell in cells if cell.number is not None
        ]
        # Each cell's text (before escaping) is a column of its own, named by the cell's
        # place (a dateTime and its offset share a key): the checks read it too.
        self.texts = [_text(cell).alias(f"{_TEXT}{i}") for i, cell in enumerate(cells)]
        # What a slice's texts need: escaping and their spaces kept, cutting; two flags
        # per cell.
        self.checks = [
            check(pl.col(f"{_TEXT}{i}")).alias(f"{i}:{j}")
            for i in range(len(cells))
            for j, check in enumerate([needs_care, needs_cut])
        ]
        self.xml = _rows_xml(cells, [(True, True)] * len(cells))
        self._xml_by_needs: dict[tuple[bool, ...], list[pl.Expr]] = {}

    def render(self, frame: pl.DataFrame, first: int) -> pl.DataFrame:
        """The frame's rows as `<row>` XML, numbered from `first`."""
        row = (pl.int_range(pl.len(), dtype=pl.Int64) + first).cast(pl.String)
        if self.parsed:
            frame = frame.with_columns(self.parsed)
        frame = frame.with_columns(row.alias(_ROW), *self.numbers).with_columns(self.texts)
        needs = frame.select(self.checks).row(0) if frame.height else ()
        xml = self._xml_by_needs.get(needs)
        if xml is None:
            pairs = list(zip(needs[::2], needs[1::2], strict=True))
            xml = self._xml_by_needs[needs] = _rows_xml(self.cells, pairs) if pairs else self.xml
        return frame.select(xml)

    def header(self) -> bytes:
        styles = (Style.HEADER, Style.LABEL)
        return "".join(
            text_row(number, texts, styles[number - 1])
            for number, texts in enumerate(self.headers, start=1)
        ).encode()

    def widths(self, first: pl.DataFrame | None) -> list[float]:
        """Column widths from the first raw rows: wide enough to read, never sprawling."""
        sample = self.shape(first) if first is not None else None
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


class _TableSheets:
    """A table's sheets, streamed while its raw frames arrive (exports.xlsx_part).

    A sheet that reaches Excel's row limit is finished and the rows go on on a
    new one; each gets the header rows again. The sheets are named when the
    workbook is written, in table order.
    """

    def __init__(self, rows: _Rows, work_dir: Path) -> None:
        self._rows = rows
        self._work_dir = work_dir
        self._per_sheet = MAX_ROWS - len(rows.headers)
        self._widths: list[float] | None = None
        self._bodies: list[SheetBody] = []
        self._open: StreamedSheet | None = None
        self._filled = 0  # rows on the open sheet

    def append(self, raw: pl.DataFrame) -> None:
        if self._widths is None and raw.height:
            self._widths = self._rows.widths(raw.head(_WIDTH_SAMPLE))
        at = 0
        while at < raw.height:
            if self._open is None:
                self._open = self._started()
            count = min(raw.height - at, self._per_sheet - self._filled)
            self._open.append(raw.slice(at, count))
            self._filled += count
            at += count
            if self._filled == self._per_sheet:
                self._bodies.append(self._open.finish())
                self._open.close()
                self._open = None

    def finish(self, book: _Book) -> list[_Sheet]:
        """The table's sheets: the first (with no rows if the table has none), then the rest."""
        if self._open is not None:
            self._bodies.append(self._open.finish())
            self._open.close()
            self._open = None
        header_rows = len(self._rows.headers)
        header = self._rows.header()
        widths = self._widths or self._rows.widths(None)
        sheets: list[_Sheet] = []
        bodies: list[SheetBody | None] = [*self._bodies] or [None]
        for body in bodies:
            count = 0 if body is None else body.rows
            layout = SheetLayout(widths, header_rows, header_rows + count, book.sheets == 0)
            sheets.append(
                _Sheet(book.sheet_name(self._rows.name, len(sheets) + 1), layout, header, body)
            )
        return sheets

    def _started(self) -> StreamedSheet:
        self._filled = 0
        _, after = sheet_frame(SheetLayout([], 0, 0))  # the closing text: the same for any sheet
        return StreamedSheet(
            self._rows.shape,
            self._rows.render,
            columns=len(self._rows.xml),
            first_row=len(self._rows.headers) + 1,
            after=after,
            path=self._work_dir / f"sheet-{id(self)}-{len(self._bodies)}.xml.gz",
        )

    def close(self) -> None:
        if self._open is not None:
            self._open.close()

    def __enter__(self) -> _TableSheets:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _text(cell: _Cell) -> pl.Expr:
    """The text a cell shows, before escaping; null where it holds a number or nothing."""
    value = pl.col(_parsed_name(cell) if cell.kind == "offset" else cell.key)
    if cell.number is None:
        return pl.when(value != "").then(value)
    # Text only where the answer is not a number: escaping every row cost more.
    return pl.when(pl.col(_NUMBER + cell.key).is_null() & (value != "")).then(value)


def _rows_xml(cells: Sequence[_Cell], needs: Sequence[tuple[bool, bool]]) -> list[pl.Expr]:
    """A frame's rows as the columns of their SpreadsheetML (built once for each `needs`:
    whether a cell's texts need care (exports.sheetxml.needs_care) and cutting)."""
    xml = []
    for i, (cell, (care, cut)) in enumerate(zip(cells, needs, strict=True)):
        string = inline_string(pl.col(f"{_TEXT}{i}"), plain=not (care or cut), cut=cut)
        if cell.number is None:
            xml.append(string)
            continue
        style = _STYLES.get(cell.kind)
        number = number_cell(pl.col(_NUMBER + cell.key), None if style is None else int(style))
        xml.append(pl.coalesce(number, string))
    return row_columns(pl.col(_ROW), xml)


def _parsed_name(cell: _Cell) -> str:
    # A dateTime column and its offset column read the same answer: their parses differ.
    return ("#offset:" if cell.kind == "offset" else _PARSED) + cell.key


def _table_rows(book: _Book, plan: ExportPlan, table: TablePlan, values: SelectValues) -> _Rows:
    cells = []
    headers: list[list[str]] = [[], []]
    for out, kind in with_offsets(output_columns(plan, table, values)):
        number = _number(kind, out) if kind in _NUMERIC else None
        parsed = _parsed(kind, out) if kind in _PARSED_KINDS else None
        cells.append(_Cell(out.key, out.name, kind, number, parsed))
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
    else:
        # Excel's serial day number (of a date, a whole number); null before 1900-03-01.
        serial = pl.col(_PARSED + out.key)
        number = pl.when(serial >= _FIRST_SAFE_SERIAL).then(serial)
    return number.cast(pl.String)


def _parsed(kind: CellType, out: OutputColumn) -> pl.Expr:
    """A date or dateTime column's answers as Excel serial day numbers, early ones included;
    an offset column's UTC offsets."""
    value = pl.col(out.key)
    if kind == "offset":
        return to_offset(value)
    if kind == "date":
        return (to_date(value) - _EXCEL_EPOCH.dt.date()).dt.total_days()  # a whole number
    if out.column.source == SUBMISSION_DATE:
        return _serial(to_utc_datetime(value).dt.replace_time_zone(None))
    return _serial(to_local_datetime(value))


def _serial(moment: pl.Expr) -> pl.Expr:
    """Excel's serial day number of a naive datetime."""
    return (moment - _EXCEL_EPOCH).dt.total_milliseconds() / _MS_PER_DAY
