"""Sheet rows escape, mark and cut only in the columns of a slice that need it, with
the same bytes."""

from __future__ import annotations

import io
import re
import zipfile

import polars as pl
import pytest

import exports.xlsx
import exports.xlsx_part
from exports.options import ExportOptions
from exports.records import ExportRecord
from exports.sheetxml import _XML_SPECIAL, MAX_CELL_CHARS, needs_care, needs_cut
from exports.xlsx import write_xlsx
from tests.exports.conftest import export_record
from tests.exports.survey import SCHEMA, farm_records, farm_xml, hostile_records

TRICKY = [
    "fish & chips",
    "a <b> tag",
    "carriage\rreturn",
    "tab\tand\nnewline",
    "a_x000D_b",
    "snake_x_case",
    "Zoë, 日本語, 🙂",
    "x" * 40_000,
    "x" * (MAX_CELL_CHARS - 1) + " cut after a space",
    "é" * 20_000,  # 40,000 bytes, 20,000 characters: no cut
    "é" * 33_000,
    "12abc",
    "1e5",
    " leading space",
    "trailing tab\t",
    "\nnewline first",
    "",
]
# A text element and its content, in a sheet part.
_TEXT_ELEMENT = re.compile(rb"<t( xml:space=\"preserve\")?>([^<]*)</t>")


def records() -> list[ExportRecord]:
    tricky = [
        export_record(
            SCHEMA,
            farm_xml(
                f"uuid:t{i}",
                plots=[{"crop": text, "path": text}],
                name=text,
                age=text,
                weight=text,
                born=text,
                seen=text,
                home=text,
                fruits=text,
                favourite=text,
            ),
        )
        for i, text in enumerate(TRICKY)
    ]
    plain = [export_record(SCHEMA, farm_xml(f"uuid:p{i}", name="plain")) for i in range(6)]
    return [*plain, *farm_records(), *hostile_records(), *tricky, *plain]


def parts(options: ExportOptions) -> dict[str, bytes]:
    out = io.BytesIO()
    batch = records()
    write_xlsx(SCHEMA, iter([batch[:5], batch[5:]]), out, options)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize(
    "options", [ExportOptions(), ExportOptions(split_select_multiples=True, labels=True)]
)
def test_rows_are_the_same_bytes_as_when_every_text_was_escaped_marked_and_cut(
    monkeypatch: pytest.MonkeyPatch, options: ExportOptions
) -> None:
    # Slices of 4 rows: some need care or cutting in a column, others not.
    monkeypatch.setattr(exports.xlsx_part, "SLICE_ROWS", 4)
    checked = parts(options)
    monkeypatch.setattr(exports.xlsx, "needs_care", lambda text: pl.lit(True))
    monkeypatch.setattr(exports.xlsx, "needs_cut", lambda text: pl.lit(True))
    always = parts(options)

    assert checked == always
    sheet = checked["xl/worksheets/sheet1.xml"]
    assert b"fish &amp; chips" in sheet
    assert b"<t>plain</t>" in sheet
    # Only a text with whitespace at an end is marked to keep it.
    for preserved, text in _TEXT_ELEMENT.findall(sheet):
        edge = text != text.strip(b" \t\n") or any(
            end(b"_x000D_") for end in (text.startswith, text.endswith)
        )
        assert bool(preserved) == edge, text[-40:]
    assert b'<t xml:space="preserve"> leading space</t>' in sheet


@pytest.mark.parametrize("special", _XML_SPECIAL)
def test_any_text_escaping_changes_is_found(special: str) -> None:
    frame = pl.DataFrame({"text": ["plain", None, f"a{special}b"]})
    assert frame.select(needs_care(pl.col("text"))).item() is True


@pytest.mark.parametrize("text", [" a", "a ", "\ta", "a\t", "\na", "a\n", " ", "a b\n"])
def test_whitespace_at_either_end_of_any_text_is_found(text: str) -> None:
    frame = pl.DataFrame({"text": ["plain", None, text, "plain"]})
    assert frame.select(needs_care(pl.col("text"))).item() is True


def test_text_escaping_and_trimming_leave_alone_is_not() -> None:
    texts = [
        "plain",
        None,
        "tab\tin the\nmiddle",
        "Zoë 日本語 🙂",
        "x_y",
        '"quoted"',
        "'",
        "\u00a0nbsp",
    ]
    frame = pl.DataFrame({"text": texts})
    assert frame.select(needs_care(pl.col("text"))).item() is False


@pytest.mark.parametrize(
    ("texts", "cut"),
    [
        (["x" * MAX_CELL_CHARS, None], False),
        (["x" * (MAX_CELL_CHARS + 1)], True),
        ([None, None], False),
        (["é" * MAX_CELL_CHARS], True),  # more bytes than a cell holds: cut (at no character)
    ],
)
def test_a_cut_is_needed_only_past_a_cells_length(texts: list[str | None], cut: bool) -> None:
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
    assert frame.select(needs_cut(pl.col("text"))).item() is cut
