"""The XLSX writer: same tables as the CSV zip, typed cells, labels, hostile text, row limit."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta

import openpyxl
import pandas
import polars as pl
import pytest
from lxml import etree as lxml_etree
from openpyxl.cell.cell import Cell
from openpyxl.utils.escape import unescape
from openpyxl.worksheet.worksheet import Worksheet

import exports.xlsx
from exports.options import ExportOptions
from exports.records import ExportRecord
from exports.sheetxml import column_letters
from exports.tabulate import pseudonym
from exports.xlsx import write_xlsx
from tests.exports.conftest import export_record, schema_from_markdown
from tests.exports.survey import (
    HOSTILE,
    SCHEMA,
    csv_tables,
    farm_records,
    farm_xml,
    hostile_records,
)

KEY = b"k" * 32
OPTIONS = [
    ExportOptions(),
    ExportOptions(split_select_multiples=True),
    ExportOptions(labels=True, language="French (fr)"),
    ExportOptions(group_paths=False, labels=True, split_select_multiples=True),
    ExportOptions(personal="drop"),
    ExportOptions(personal="pseudonymise", pseudonym_key=KEY),
    ExportOptions(escape_formulas=False),
]


class PipeLike:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def workbook(records: list[ExportRecord], options: ExportOptions) -> openpyxl.Workbook:
    pipe = PipeLike()
    write_xlsx(SCHEMA, iter([records[:1], records[1:]]), pipe, options)
    return openpyxl.load_workbook(io.BytesIO(b"".join(pipe.chunks)))


def rows(sheet: Worksheet) -> list[list[object]]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def as_csv_text(cell: object, csv_cell: str) -> bool:
    """Whether a typed cell holds what the CSV shows as text."""
    if cell is None:
        return csv_cell == ""
    if isinstance(cell, bool):
        return False
    if isinstance(cell, int | float):
        return float(csv_cell) == cell
    if isinstance(cell, datetime):
        # The CSV keeps offsets and milliseconds; the cell holds the clock time.
        return csv_cell[:19] == cell.isoformat()[:19] or csv_cell == cell.date().isoformat()
    return cell == csv_cell


@pytest.mark.parametrize("options", OPTIONS)
def test_sheets_hold_the_csv_zips_tables_cell_for_cell(options: ExportOptions) -> None:
    records = farm_records()
    expected = csv_tables(records, options)

    book = workbook(records, options)

    assert book.sheetnames == list(expected)
    for name, csv_rows in expected.items():
        sheet_rows = rows(book[name])
        # The CSV's columns, with each dateTime answer's offset column beside it.
        header = list(sheet_rows[0])
        assert [n for n in header if n not in csv_rows[0]] == [
            f"{n}_offset" for n in csv_rows[0] if n == "seen"
        ]
        kept = [header.index(n) for n in csv_rows[0]]
        assert len(sheet_rows) == len(csv_rows)  # one header row
        for sheet_row, csv_row in zip(sheet_rows[1:], csv_rows[1:], strict=True):
            mismatches = [
                (column, sheet_row[index], text)
                for column, index, text in zip(csv_rows[0], kept, csv_row, strict=True)
                if not as_csv_text(sheet_row[index], text)
            ]
            assert mismatches == []


def test_cells_are_typed_from_the_question_kinds() -> None:
    book = workbook(farm_records(), ExportOptions(split_select_multiples=True))
    sheet = book["farm"]
    header = [cell.value for cell in sheet[1]]
    first = {name: cell for name, cell in zip(header, sheet[2], strict=True)}
    second = {name: cell for name, cell in zip(header, sheet[3], strict=True)}

    assert first["age"].value == 34
    assert first["weight"].value == -61.5
    assert first["home-Latitude"].value == -1.286
    assert first["home-Accuracy"].value == 4.2
    assert first["born"].value == datetime(1992, 2, 29)
    assert first["born"].number_format == "yyyy-mm-dd"
    # The phone's clock time, and beside it the phone's offset as text.
    seen = first["seen"].value
    assert isinstance(seen, datetime)
    assert abs(seen - datetime(2026, 8, 1, 10, 30, 0, 250_000)) < timedelta(milliseconds=1)
    assert first["seen_offset"].value == "+03:00"
    assert first["seen_offset"].data_type == "s"
    assert second["seen_offset"].value == "+00:00"
    # SubmissionDate in UTC.
    assert first["SubmissionDate"].value == datetime(2026, 8, 1, 10, 0)
    assert (first["fruits/apple"].value, first["fruits/pear"].value) == (1, 0)
    assert first["Edits"].value == 0
    assert first["SubmitterID"].value == 5
    assert first["FormVersion"].value == "4"
    assert first["FormVersion"].data_type == "s"
    # Answers that do not read as their type stay as the text that was sent.
    assert second["age"].value == "abc"
    assert second["born"].value == "not a date"
    assert second["seen"].value == datetime(2026, 1, 15, 23, 0)
    assert second["weight"].value is None


def test_dates_and_moments_before_1900_03_01_stay_text_and_later_ones_are_cells() -> None:
    # Excel's serial numbers before 1900-03-01 meet its 1900 leap-year bug.
    answers = [
        ("1900-02-28", "1900-02-28T23:59:59.000+01:00"),
        ("1900-03-01", "1900-03-01T00:00:00.000+01:00"),
        ("2026-08-01", "2026-08-01T10:30:00.000Z"),
    ]
    records = [
        export_record(SCHEMA, farm_xml(f"uuid:d{i}", born=born, seen=seen))
        for i, (born, seen) in enumerate(answers)
    ]

    sheet = workbook(records, ExportOptions())["farm"]

    header = [cell.value for cell in sheet[1]]
    born, seen = header.index("born"), header.index("seen")
    values = [(row[born].value, row[seen].value) for row in sheet.iter_rows(min_row=2)]
    assert values == [
        answers[0],
        (datetime(1900, 3, 1), datetime(1900, 3, 1)),
        (datetime(2026, 8, 1), datetime(2026, 8, 1, 10, 30)),
    ]


def test_label_row_option_adds_question_labels_in_the_chosen_language() -> None:
    english = workbook(farm_records(), ExportOptions(split_select_multiples=True, label_row=True))
    french = workbook(farm_records(), ExportOptions(language="French (fr)", label_row=True))

    labels = rows(english["farm"])[1]
    assert labels[:7] == [None, "Name", "Age", "Weight", "Born", "Seen", "Seen (UTC offset)"]
    assert labels[7:15] == [
        "Home (Latitude)",
        "Home (Longitude)",
        "Home (Altitude)",
        "Home (Accuracy)",
        "Fruits",
        "Fruits: Apple",
        "Fruits: Big fig",
        "Fruits: Pear",
    ]
    assert rows(french["farm-plot"])[1] == ["Culture", "Limite", "Chemin", None, None]
    assert english["farm"].freeze_panes == "A3"


def test_one_header_row_by_default_so_readers_get_numbers_and_dates() -> None:
    pipe = PipeLike()
    write_xlsx(SCHEMA, [farm_records()[:1]], pipe)
    data = b"".join(pipe.chunks)

    # pandas.read_excel takes row 1 as the header and types the rest.
    frame = pandas.read_excel(io.BytesIO(data), sheet_name="farm")
    assert len(frame) == 1
    assert pandas.api.types.is_integer_dtype(frame["age"])
    assert frame["age"].tolist() == [34]
    assert pandas.api.types.is_datetime64_any_dtype(frame["SubmissionDate"])
    assert frame["SubmissionDate"][0] == pandas.Timestamp("2026-08-01T10:00")
    assert frame["born"][0] == pandas.Timestamp("1992-02-29")
    assert frame["seen_offset"].tolist() == ["+03:00"]
    plots = pandas.read_excel(io.BytesIO(data), sheet_name="farm-plot")
    assert list(plots.columns) == ["crop", "boundary", "path", "PARENT_KEY", "KEY"]
    # Polars reads it the same way.
    polars_frame = pl.read_excel(io.BytesIO(data), sheet_name="farm", engine="openpyxl")
    assert polars_frame.schema["age"].is_numeric()
    assert polars_frame.schema["SubmissionDate"] == pl.Datetime("us")


def test_choice_labels_replace_values_with_labels_on() -> None:
    book = workbook(farm_records(), ExportOptions(labels=True, language="French (fr)"))
    header, first, second, _ = rows(book["farm"])

    assert first[header.index("fruits")] == "Pomme; Grosse figue"
    assert first[header.index("favourite")] == "Poire"
    assert second[header.index("fruits")] == "Poire"


def test_personal_answers_are_dropped_or_pseudonymised() -> None:
    dropped = workbook(farm_records(), ExportOptions(personal="drop"))
    hidden = workbook(farm_records(), ExportOptions(personal="pseudonymise", pseudonym_key=KEY))

    assert "name" not in rows(dropped["farm"])[0]
    header, first, *_ = rows(hidden["farm"])
    assert first[header.index("name")] == pseudonym(KEY, "Arta Hoxha")


@pytest.mark.parametrize("escape", [True, False])
def test_hostile_text_is_a_string_cell_exactly_as_collected(escape: bool) -> None:
    # Text cells are never run, so the CSV's formula guard never changes them.
    book = workbook(hostile_records(), ExportOptions(escape_formulas=escape))
    expected = HOSTILE

    root = book["farm"]
    header = [cell.value for cell in root[1]]
    for column in ("name", "favourite"):
        cells = [row[header.index(column)] for row in root.iter_rows(min_row=2)]
        assert [text_of(cell) for cell in cells] == expected
        assert {cell.data_type for cell in cells} == {"s"}  # never a formula
    crops = [row[0] for row in book["farm-plot"].iter_rows(min_row=2)]
    assert [text_of(cell) for cell in crops] == expected
    assert {cell.data_type for cell in crops} == {"s"}


def text_of(cell: Cell) -> object:
    """The cell's text as Excel shows it: OOXML writes control characters as _xHHHH_
    (xlsxwriter does, openpyxl does not decode them in inline strings)."""
    return unescape(cell.value) if isinstance(cell.value, str) else cell.value


def many_records(count: int) -> list[ExportRecord]:
    return [
        export_record(SCHEMA, farm_xml(f"uuid:{n}", plots=[{"crop": f"c{n}"}], age=str(n)))
        for n in range(count)
    ]


def test_a_table_longer_than_a_sheet_continues_on_numbered_sheets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports.xlsx, "MAX_ROWS", 4)  # one header row, three data rows
    records = many_records(8)

    book = workbook(records, ExportOptions())

    assert book.sheetnames == [
        "farm",
        "farm (2)",
        "farm (3)",
        "farm-plot",
        "farm-plot (2)",
        "farm-plot (3)",
    ]
    ages: list[object] = []
    for name in ("farm", "farm (2)", "farm (3)"):
        sheet_rows = rows(book[name])
        assert sheet_rows[0][:3] == ["SubmissionDate", "name", "age"]
        assert len(sheet_rows) <= 4
        ages.extend(row[2] for row in sheet_rows[1:])
    assert ages == list(range(8))
    crops = [row[0] for name in book.sheetnames[3:] for row in rows(book[name])[1:]]
    assert crops == [f"c{n}" for n in range(8)]


def test_continued_sheets_repeat_the_header_rows_and_read_back_whole_with_pandas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports.xlsx, "MAX_ROWS", 5)  # two header rows, three data rows
    records = many_records(7)
    out = io.BytesIO()
    # Batches of 2 and 5 rows: sheets end inside a batch and between batches.
    write_xlsx(SCHEMA, [records[:2], records[2:]], out, ExportOptions(label_row=True))

    sheets = pandas.read_excel(io.BytesIO(out.getvalue()), sheet_name=None, skiprows=[1])
    assert list(sheets) == [
        "farm",
        "farm (2)",
        "farm (3)",
        "farm-plot",
        "farm-plot (2)",
        "farm-plot (3)",
    ]
    farm = pandas.concat([sheets["farm"], sheets["farm (2)"], sheets["farm (3)"]])
    assert farm["age"].tolist() == list(range(7))
    assert farm["KEY"].tolist() == [f"uuid:{n}" for n in range(7)]
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    for name in ("farm (2)", "farm (3)"):
        assert rows(book[name])[1][1:3] == ["Name", "Age"]  # the label row again
        assert book[name].freeze_panes == "A3"
    assert [len(rows(book[name])) for name in book.sheetnames[:3]] == [5, 5, 3]


def test_each_sheet_states_its_own_size_although_its_rows_were_written_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports.xlsx, "MAX_ROWS", 4)  # one header row, three data rows
    out = io.BytesIO()
    write_xlsx(SCHEMA, [many_records(2), many_records(5)], out, ExportOptions())

    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as package:
        assert package.testzip() is None
        sheets = [package.read(f"xl/worksheets/sheet{n}.xml").decode() for n in (1, 2, 3)]
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()), read_only=True)
    for sheet, name, rows_in_it in zip(sheets, book.sheetnames, [4, 4, 2], strict=False):
        width = len(next(book[name].iter_rows(values_only=True)))
        assert f'<dimension ref="A1:{column_letters(width - 1)}{rows_in_it}" />' in sheet
        assert book[name].max_row == rows_in_it
    assert "<cols>" in sheets[0]  # widths from the first batch, put in front at the end


LONG_REPEATS = """
| survey |
|        | type         | name                                        | label |
|        | begin repeat | a_very_long_repeat_name_that_excel_cuts_one | One   |
|        | text         | x                                           | X     |
|        | end repeat   |                                             |       |
|        | begin repeat | a_very_long_repeat_name_that_excel_cuts_two | Two   |
|        | text         | y                                           | Y     |
|        | end repeat   |                                             |       |
| settings |
|          | form_id |
|          | history |
"""


def test_sheet_names_are_cut_to_31_characters_and_unique() -> None:
    schema = schema_from_markdown(LONG_REPEATS, "history")
    out = io.BytesIO()

    write_xlsx(schema, [], out)

    names = openpyxl.load_workbook(io.BytesIO(out.getvalue())).sheetnames
    assert names == [
        "history~2",
        "history-a_very_long_repeat_name",
        "history-a_very_long_repeat_na~2",
    ]
    assert all(len(name) <= 31 for name in names)


def test_no_submissions_still_gives_every_sheet_with_headers() -> None:
    out = io.BytesIO()

    write_xlsx(SCHEMA, [], out, ExportOptions(split_select_multiples=True, label_row=True))

    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    assert book.sheetnames == ["farm", "farm-plot"]
    assert rows(book["farm-plot"]) == [
        ["crop", "boundary", "path", "PARENT_KEY", "KEY"],
        ["Crop", "Boundary", "Path", None, None],
    ]


def test_a_failure_midway_writes_nothing() -> None:
    def batches() -> Iterator[list[ExportRecord]]:
        yield farm_records()
        raise RuntimeError("database went away")

    pipe = PipeLike()
    with pytest.raises(RuntimeError, match="database went away"):
        write_xlsx(SCHEMA, batches(), pipe)
    assert pipe.chunks == []


def test_text_that_looks_like_an_ooxml_escape_and_very_long_text_survive() -> None:
    tricky = ["a_x000D_b", "snake_x_case", "_x", "x" * 40_000]
    records = [
        export_record(SCHEMA, farm_xml(f"uuid:t{i}", name=text)) for i, text in enumerate(tricky)
    ]

    sheet = workbook(records, ExportOptions())["farm"]

    names = [text_of(row[1]) for row in sheet.iter_rows(min_row=2)]
    # Excel keeps at most 32,767 characters in a cell.
    assert names == [*tricky[:3], "x" * 32_767]


@pytest.mark.parametrize(
    ("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")]
)
def test_column_letters_follow_excel(index: int, letters: str) -> None:
    assert column_letters(index) == letters


def test_the_package_has_every_part_excel_needs_and_every_part_checks_out() -> None:
    out = io.BytesIO()
    write_xlsx(SCHEMA, [farm_records()], out, cleaning_log=[])
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as package:
        assert package.testzip() is None  # every part's CRC-32 and length match
        assert package.namelist() == [
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
            "xl/worksheets/sheet2.xml",
            "xl/worksheets/sheet3.xml",
        ]
        types = package.read("[Content_Types].xml").decode()
        sheet = package.read("xl/worksheets/sheet1.xml").decode()
    assert types.count("spreadsheetml.worksheet+xml") == 3
    assert '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"' in sheet
    # Every part is well-formed XML (the sheets are rendered as text).
    for part in ("xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"):
        lxml_etree.fromstring(zipfile.ZipFile(io.BytesIO(out.getvalue())).read(part))
