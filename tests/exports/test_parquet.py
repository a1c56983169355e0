"""The Parquet zip: the CSV zip's tables, typed, read back by Polars, pyarrow and DuckDB."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from exports.options import ExportOptions
from exports.parquet import write_parquet_zip
from exports.records import ExportRecord
from exports.tabulate import pseudonym
from exports.typed import to_utc_datetime
from tests.exports.conftest import export_record, schema_from_markdown
from tests.exports.survey import (
    HOSTILE,
    SCHEMA,
    csv_tables,
    farm_records,
    hostile_records,
)

KEY = b"k" * 32
OPTIONS = [
    ExportOptions(),
    ExportOptions(split_select_multiples=True),
    ExportOptions(labels=True, language="French (fr)", split_select_multiples=True),
    ExportOptions(personal="drop"),
    ExportOptions(personal="pseudonymise", pseudonym_key=KEY),
    ExportOptions(escape_formulas=False),
]


def parquet_members(records: list[ExportRecord], options: ExportOptions) -> dict[str, bytes]:
    out = io.BytesIO()
    write_parquet_zip(SCHEMA, iter([records[:1], records[1:]]), out, options)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def tables(records: list[ExportRecord], options: ExportOptions) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(data) for name, data in parquet_members(records, options).items()}


def as_csv_text(value: object, csv_cell: str, labels: bool) -> bool:
    """Whether a typed value says what the CSV's text says (null: empty or unreadable)."""
    if value is None:
        return True  # empty, or not readable as the column's type: checked elsewhere
    if isinstance(value, bool):
        return csv_cell == ("1" if value else "0")
    if isinstance(value, int | float):
        return float(csv_cell) == value
    if isinstance(value, datetime):
        return datetime.fromisoformat(csv_cell.replace("Z", "+00:00")) == value
    if isinstance(value, date):
        return csv_cell == value.isoformat()
    if isinstance(value, list):
        return (("; " if labels else " ").join(value)) == csv_cell
    return value == csv_cell


@pytest.mark.parametrize("options", OPTIONS)
def test_members_hold_the_csv_zips_tables_with_typed_values(options: ExportOptions) -> None:
    records = farm_records()
    expected = csv_tables(records, options)

    found = tables(records, options)

    assert list(found) == [f"{stem}.parquet" for stem in expected]
    for stem, csv_rows in expected.items():
        typed = found[f"{stem}.parquet"]
        # The CSV's columns, with each dateTime answer's offset column beside it.
        offsets = [name for name in typed.columns if name not in csv_rows[0]]
        assert offsets == [f"{name}_offset" for name in csv_rows[0] if name == "seen"]
        frame = typed.drop(offsets)
        assert frame.columns == csv_rows[0]
        assert frame.height == len(csv_rows) - 1
        for row, csv_row in zip(frame.iter_rows(), csv_rows[1:], strict=True):
            mismatches = [
                (name, value, text)
                for name, value, text in zip(frame.columns, row, csv_row, strict=True)
                if not as_csv_text(value, text, options.labels)
            ]
            assert mismatches == []
        # Null only where the CSV is empty or the text is not of the column's type.
        for name, text in zip(frame.columns, zip(*csv_rows[1:], strict=True), strict=True):
            column = frame.get_column(name)
            nulls = [t for t, v in zip(text, column.to_list(), strict=True) if v is None]
            if column.dtype == pl.String:
                assert nulls == [""] * len(nulls)


def test_columns_are_typed_from_the_question_kinds() -> None:
    root = tables(farm_records(), ExportOptions(split_select_multiples=True))["farm.parquet"]

    assert dict(root.schema) == {
        "SubmissionDate": pl.Datetime("ms", "UTC"),
        "name": pl.String,
        "age": pl.Int64,
        "weight": pl.Float64,
        "born": pl.Date,
        "seen": pl.Datetime("ms", "UTC"),
        "seen_offset": pl.String,
        "home-Latitude": pl.Float64,
        "home-Longitude": pl.Float64,
        "home-Altitude": pl.Float64,
        "home-Accuracy": pl.Float64,
        "fruits": pl.List(pl.String),
        "fruits/apple": pl.Boolean,
        "fruits/big_fig": pl.Boolean,
        "fruits/pear": pl.Boolean,
        "favourite": pl.String,
        "meta-instanceID": pl.String,
        "KEY": pl.String,
        "SubmitterID": pl.Int64,
        "SubmitterName": pl.String,
        "AttachmentsPresent": pl.Int64,
        "AttachmentsExpected": pl.Int64,
        "Status": pl.String,
        "ReviewState": pl.String,
        "DeviceID": pl.String,
        "Edits": pl.Int64,
        "FormVersion": pl.String,
    }
    values = root.to_dict(as_series=False)
    assert values["age"] == [34, None, -7]  # "abc" from the phone becomes null
    assert values["weight"] == [-61.5, None, None]
    assert values["born"] == [date(1992, 2, 29), None, None]
    assert values["seen"] == [
        datetime(2026, 8, 1, 7, 30, 0, 250_000, tzinfo=UTC),  # +03:00 applied
        datetime(2026, 1, 15, 23, 0, tzinfo=UTC),
        None,
    ]
    # The phone's offset, as sent, so its clock time is never lost.
    assert values["seen_offset"] == ["+03:00", "+00:00", None]
    assert values["SubmissionDate"][0] == datetime(2026, 8, 1, 10, 0, tzinfo=UTC)
    assert values["home-Latitude"] == [-1.286, None, None]
    # Nothing chosen is an empty list, not null.
    assert values["fruits"] == [["apple", "big_fig"], ["pear"], []]
    assert values["fruits/big_fig"] == [True, False, False]
    assert values["fruits/pear"] == [False, True, False]


def test_labels_make_lists_of_labels_even_with_spaces() -> None:
    root = tables(farm_records(), ExportOptions(labels=True))["farm.parquet"]

    assert root.get_column("fruits").to_list() == [["Apple", "Big fig"], ["Pear"], []]
    assert root.get_column("favourite").to_list() == ["Pear", None, None]


def test_personal_answers_are_dropped_or_pseudonymised() -> None:
    dropped = tables(farm_records(), ExportOptions(personal="drop"))["farm.parquet"]
    hidden = tables(farm_records(), ExportOptions(personal="pseudonymise", pseudonym_key=KEY))

    assert "name" not in dropped.columns
    assert hidden["farm.parquet"].get_column("name")[1] == pseudonym(KEY, "Ben")


@pytest.mark.parametrize("options", OPTIONS[:3])
def test_pyarrow_and_duckdb_read_the_same_values_as_polars(
    options: ExportOptions, tmp_path: Path
) -> None:
    for name, data in parquet_members(farm_records(), options).items():
        path = tmp_path / name
        path.write_bytes(data)
        frame = pl.read_parquet(path)
        expected = [tuple(row) for row in frame.iter_rows()]

        arrow = pq.read_table(path)
        assert arrow.column_names == frame.columns
        assert [tuple(row.values()) for row in arrow.to_pylist()] == expected
        # DuckDB needs pytz for zoned timestamps in Python: ask it for epoch milliseconds.
        moments = [i for i, dtype in enumerate(frame.dtypes) if dtype == pl.Datetime("ms", "UTC")]
        selected = ", ".join(
            f'epoch_ms("{name}")' if i in moments else f'"{name}"'
            for i, name in enumerate(frame.columns)
        )
        with duckdb.connect() as connection:
            found = connection.execute(
                f"SELECT {selected} FROM read_parquet(?)",  # noqa: S608 (our own column names)
                [str(path)],
            ).fetchall()
        assert found == [tuple(_epoch_ms(value) for value in row) for row in expected]


def _epoch_ms(value: object) -> object:
    return round(value.timestamp() * 1000) if isinstance(value, datetime) else value


@pytest.mark.parametrize("escape", [True, False])
def test_hostile_text_is_written_as_collected_whatever_the_csv_guard(escape: bool) -> None:
    found = tables(hostile_records(), ExportOptions(escape_formulas=escape))
    expected = HOSTILE

    root = found["farm.parquet"]
    assert root.get_column("name").to_list() == expected
    assert root.get_column("favourite").to_list() == expected
    assert found["farm-plot.parquet"].get_column("crop").to_list() == expected


def test_select_multiple_list_elements_are_as_collected() -> None:
    record = export_record(
        SCHEMA,
        b'<farm id="farm" version="4"><fruits>apple =1+1</fruits>'
        b"<meta><instanceID>uuid:x</instanceID></meta></farm>",
    )

    root = tables([record], ExportOptions(escape_formulas=True))["farm.parquet"]

    assert root.get_column("fruits").to_list() == [["apple", "=1+1"]]


def test_no_submissions_still_gives_typed_empty_tables() -> None:
    out = io.BytesIO()

    write_parquet_zip(SCHEMA, [], out, ExportOptions(split_select_multiples=True))

    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        plot = pl.read_parquet(archive.read("farm-plot.parquet"))
        root = pl.read_parquet(archive.read("farm.parquet"))
    assert plot.columns == ["crop", "boundary", "path", "PARENT_KEY", "KEY"]
    assert plot.height == 0
    assert root.schema["age"] == pl.Int64


DUPLICATES = """
| survey |
|        | type        | name  | label |
|        | begin group | one   | One   |
|        | text        | name  | Name  |
|        | end group   |       |       |
|        | begin group | two   | Two   |
|        | text        | name  | Name  |
|        | end group   |       |       |
| settings |
|          | form_id |
|          | dup     |
"""


def test_repeated_column_names_without_group_paths_are_numbered() -> None:
    schema = schema_from_markdown(DUPLICATES, "dup")
    record = export_record(
        schema,
        b'<dup id="dup"><one><name>a</name></one><two><name>b</name></two>'
        b"<meta><instanceID>uuid:d</instanceID></meta></dup>",
    )
    out = io.BytesIO()

    write_parquet_zip(schema, [[record]], out, ExportOptions(group_paths=False))

    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        frame = pl.read_parquet(archive.read("dup.parquet"))
    assert frame.select("name", "name (2)").row(0) == ("a", "b")


def test_a_failure_midway_leaves_no_valid_archive() -> None:
    def batches() -> Iterator[list[ExportRecord]]:
        yield farm_records()
        raise RuntimeError("database went away")

    out = io.BytesIO()
    with pytest.raises(RuntimeError, match="database went away"):
        write_parquet_zip(SCHEMA, batches(), out)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(out.getvalue()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-08-01T10:00:00.000+03:00", datetime(2026, 8, 1, 7, 0, tzinfo=UTC)),
        ("2026-08-01T10:00:00.000+0300", datetime(2026, 8, 1, 7, 0, tzinfo=UTC)),
        ("2026-08-01T10:00:00-05:30", datetime(2026, 8, 1, 15, 30, tzinfo=UTC)),
        ("2026-08-01T10:00:00Z", datetime(2026, 8, 1, 10, 0, tzinfo=UTC)),
        ("2026-08-01T10:00:00.5", datetime(2026, 8, 1, 10, 0, 0, 500_000, tzinfo=UTC)),
        ("yesterday", None),
        ("2026-02-30T10:00:00Z", None),
    ],
)
def test_moments_are_read_with_their_offsets_into_utc(text: str, expected: datetime | None) -> None:
    frame = pl.DataFrame({"value": [text]}).select(to_utc_datetime(pl.col("value")))

    assert frame.item() == expected
