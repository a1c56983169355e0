"""Values exactly as collected, in every format: offsets, formulas, lists, languages."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime

import openpyxl
import polars as pl
import pytest

from exports.csvzip import write_csv_zip
from exports.geojson import write_geojson
from exports.options import ExportOptions
from exports.parquet import write_parquet_zip
from exports.plan import label_language, plan_export
from exports.tabulate import shape_table, tabulate_batch
from exports.xlsx import write_xlsx
from tests.exports.conftest import export_record, schema_from_markdown

FORM = """
| survey |
|        | type     | name    | label::English (en) | label::Shqip (sq) |
|        | start    | start   |                     |                   |
|        | end      | end     |                     |                   |
|        | text     | address | Address             | Adresa            |
|        | geopoint | spot    | Spot                | Vendi             |
| settings |
|          | form_id |
|          | visits  |
"""
SCHEMA = schema_from_markdown(FORM, "visits")
START = "2026-08-01T09:20:00.000+01:00"
END = "2026-08-01T09:45:10.500+0100"


def visit(instance: str, address: str, start: str = START, end: str = END) -> bytes:
    return (
        f'<visits id="visits"><start>{start}</start><end>{end}</end>'
        f"<address>{address}</address><spot>42.66 21.16 650 4.5</spot>"
        f"<meta><instanceID>{instance}</instanceID></meta></visits>"
    ).encode()


RECORDS = [
    export_record(SCHEMA, visit("uuid:1", "=HYPERLINK(&quot;http://x&quot;)")),
    export_record(SCHEMA, visit("uuid:2", "-", start="2026-08-01T07:00:00Z")),
]


def csv_root(options: ExportOptions | None = None) -> list[dict[str, str]]:
    out = io.BytesIO()
    write_csv_zip(SCHEMA, [RECORDS], out, options or ExportOptions())
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        text = archive.read("visits.csv").decode()
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_keeps_offsets_and_values_as_sent() -> None:
    first, second = csv_root()

    assert (first["start"], first["end"]) == (START, END)
    assert first["address"] == '=HYPERLINK("http://x")'  # as Central writes it
    assert second["address"] == "-"


def test_csv_formula_guard_is_an_option_and_never_touches_a_lone_dash() -> None:
    first, second = csv_root(ExportOptions(escape_formulas=True))

    assert first["address"] == '\'=HYPERLINK("http://x")'
    assert second["address"] == "-"
    assert first["start"] == START


def test_xlsx_keeps_the_phones_clock_and_offset_and_text_unchanged() -> None:
    out = io.BytesIO()
    write_xlsx(SCHEMA, [RECORDS], out, ExportOptions(escape_formulas=True))
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue()))["visits"]
    header = [cell.value for cell in sheet[1]]
    first = dict(zip(header, sheet[2], strict=True))
    second = dict(zip(header, sheet[3], strict=True))

    assert header[:5] == ["SubmissionDate", "start", "start_offset", "end", "end_offset"]
    assert first["start"].value == datetime(2026, 8, 1, 9, 20)
    assert first["start_offset"].value == "+01:00"
    assert first["end_offset"].value == "+01:00"
    assert second["start"].value == datetime(2026, 8, 1, 7, 0)
    assert second["start_offset"].value == "+00:00"
    # A typed string is never run by Excel: written unchanged, whatever the CSV's guard.
    assert first["address"].value == '=HYPERLINK("http://x")'
    assert first["address"].data_type == "s"
    assert second["address"].value == "-"


def test_parquet_has_utc_moments_and_the_offset_beside_them() -> None:
    out = io.BytesIO()
    write_parquet_zip(SCHEMA, [RECORDS], out, ExportOptions(escape_formulas=True))
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        frame = pl.read_parquet(archive.read("visits.parquet"))

    assert frame.get_column("start").to_list() == [
        datetime(2026, 8, 1, 8, 20, tzinfo=UTC),
        datetime(2026, 8, 1, 7, 0, tzinfo=UTC),
    ]
    assert frame.get_column("start_offset").to_list() == ["+01:00", "+00:00"]
    # The phone's clock time comes back from the two columns.
    local = frame.select(
        (
            pl.col("start").dt.replace_time_zone(None)
            + pl.duration(
                hours=pl.col("start_offset").str.slice(0, 3).cast(pl.Int32),
                minutes=pl.col("start_offset").str.slice(4, 2).cast(pl.Int32),
            )
        ).alias("local")
    )
    assert local.item(0, 0) == datetime(2026, 8, 1, 9, 20)
    assert frame.get_column("address").to_list() == ['=HYPERLINK("http://x")', "-"]


def test_geojson_keeps_offsets_and_gives_accuracy_and_altitude() -> None:
    out = io.BytesIO()
    write_geojson(SCHEMA, [RECORDS], out, ExportOptions(escape_formulas=True))
    first = json.loads(out.getvalue())["features"][0]["properties"]

    assert first["start"] == START
    assert "start_offset" not in first  # the text already holds it
    assert first["spot-Accuracy"] == 4.5
    assert first["spot-Altitude"] == 650
    assert first["address"] == '=HYPERLINK("http://x")'


@pytest.mark.parametrize("asked", ["Shqip (sq)", "sq", "SQ", "Shqip", " shqip (SQ) "])
def test_a_language_is_found_by_full_name_code_or_name(asked: str) -> None:
    assert label_language(SCHEMA, asked) == "Shqip (sq)"
    plan = plan_export(SCHEMA, ExportOptions(labels=True, language=asked))
    frame = shape_table(plan, plan.root, tabulate_batch(plan, RECORDS)["visits"])
    assert frame.height == 2


def test_a_language_code_the_form_lacks_is_still_refused() -> None:
    with pytest.raises(ValueError, match='no language "de"'):
        label_language(SCHEMA, "de")
