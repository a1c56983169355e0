"""The cleaning log, pure: field paths, applying entries at read time, the log beside the data."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime

import openpyxl
import polars as pl
import pytest

from exports.cleaning import (
    CleaningChange,
    CleaningError,
    ProposedChange,
    apply_cleaning,
    check_field,
    cleaning_log_csv,
    protect_personal,
    read_cleaning_csv,
    value_at,
)
from exports.csvzip import write_csv_zip
from exports.options import ExportOptions
from exports.parquet import write_parquet_zip
from exports.tabulate import pseudonym
from exports.xlsx import write_xlsx
from tests.exports.survey import SCHEMA, farm_records
from tests.exports.test_analysis_copy import copied

WHEN = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def change(
    instance: str, field: str | None, new: str | None, reason: str = "typo"
) -> CleaningChange:
    return CleaningChange(
        instance_id=instance,
        field=field,
        old_value=None,
        new_value=new,
        reason=reason,
        who="Analyst",
        when=WHEN,
        id=1,
    )


def test_field_paths_are_checked_against_the_form() -> None:
    assert check_field(SCHEMA, "age") == "/age"
    assert check_field(SCHEMA, "/plot[2]/crop") == "/plot[2]/crop"
    with pytest.raises(CleaningError, match='no field "/nope"'):
        check_field(SCHEMA, "/nope")
    with pytest.raises(CleaningError, match="is a repeat"):
        check_field(SCHEMA, "/plot/crop")
    with pytest.raises(CleaningError, match="takes no"):
        check_field(SCHEMA, "/age[1]")
    with pytest.raises(CleaningError, match="metadata"):
        check_field(SCHEMA, "/meta/instanceID")
    with pytest.raises(CleaningError, match="not a field path"):
        check_field(SCHEMA, "/plot[0]/crop")


def test_applying_the_log_changes_only_the_exported_copy() -> None:
    records = farm_records()
    original = records[0].record
    log = [
        change("uuid:a", "/age", "43"),
        change("uuid:a", "/age", "44", "second look"),  # the later entry wins
        change("uuid:a", "/plot[1]/crop", "sorghum"),
        change("uuid:a", "/plot[9]/crop", "ghost"),  # no such instance: nothing
        change("uuid:b", None, None, "duplicate of uuid:a"),  # removed
    ]

    batches = list(apply_cleaning([records[:2], records[2:]], log))

    assert [[r.meta.instance_id for r in batch] for batch in batches] == [["uuid:a"], ["uuid:c"]]
    cleaned = batches[0][0].record
    assert isinstance(cleaned, dict)
    assert value_at(cleaned, "/age") == "44"
    assert value_at(cleaned, "/plot[1]/crop") == "sorghum"
    assert value_at(cleaned, "/plot[2]/crop") == "=HYPERLINK(1)"
    assert records[0].record is original  # the record handed in is untouched
    assert value_at(records[0].record, "/age") == "34"  # type: ignore[arg-type]
    assert batches[1][0] is records[2]  # records without entries pass as they are


def test_the_log_is_written_beside_the_data_in_every_zip_and_workbook() -> None:
    records = farm_records()
    log = [change("uuid:a", "/age", "44", 'said "44", not 34')]
    cleaned = list(apply_cleaning([records], log))

    csv_out, parquet_out, xlsx_out = io.BytesIO(), io.BytesIO(), io.BytesIO()
    write_csv_zip(SCHEMA, cleaned, csv_out, cleaning_log=log)
    write_parquet_zip(SCHEMA, cleaned, parquet_out, cleaning_log=log)
    write_xlsx(SCHEMA, cleaned, xlsx_out, cleaning_log=log)

    with zipfile.ZipFile(csv_out) as archive:
        assert archive.namelist() == ["farm.csv", "farm-plot.csv", "cleaning-log.csv"]
        rows = list(csv.reader(io.StringIO(archive.read("cleaning-log.csv").decode())))
        farm = list(csv.DictReader(io.StringIO(archive.read("farm.csv").decode())))
    assert rows[0] == [
        "id",
        "instanceId",
        "field",
        "oldValue",
        "newValue",
        "reason",
        "who",
        "when",
        "source",
    ]
    assert rows[1] == [
        "1",
        "uuid:a",
        "/age",
        "",
        "44",
        'said "44", not 34',
        "Analyst",
        "2026-09-01T12:00:00.000Z",
        "manual",
    ]
    assert farm[0]["age"] == "44"
    with zipfile.ZipFile(parquet_out) as archive:
        frame = pl.read_parquet(archive.read("cleaning-log.parquet"))
        assert pl.read_parquet(archive.read("farm.parquet")).get_column("age")[0] == 44
    assert frame.get_column("newValue").to_list() == ["44"]
    book = openpyxl.load_workbook(xlsx_out)
    assert book.sheetnames == ["farm", "farm-plot", "cleaning log"]
    assert [c.value for c in book["cleaning log"][2]][:5] == ["1", "uuid:a", "/age", None, "44"]


def test_raw_exports_have_no_log_member() -> None:
    out = io.BytesIO()
    write_csv_zip(SCHEMA, [farm_records()], out)
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["farm.csv", "farm-plot.csv"]


def test_a_csv_upload_is_read_row_by_row() -> None:
    data = (
        b"instanceId,field,oldValue,newValue,reason\n"
        b"uuid:a,/age,34,44,typo\n"
        b'uuid:b,,,,"duplicate, of uuid:a"\n'
    )

    assert read_cleaning_csv(data) == [
        ProposedChange("uuid:a", "/age", "44", "typo", old_value="34"),
        ProposedChange("uuid:b", None, None, "duplicate, of uuid:a"),
    ]
    assert cleaning_log_csv([]) == b"id,instanceId,field,oldValue,newValue,reason,who,when,source\n"


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (b"instanceId,field,newValue\n", "lacks reason"),
        (b"instanceId,field,newValue,reason,extra\n", "unknown columns: extra"),
        (b"instanceId,field,newValue,reason\nuuid:a,/age,4,\n", "Line 2 has no reason"),
        (b"instanceId,field,newValue,reason\n,/age,4,x\n", "Line 2 has no instanceId"),
        (b"instanceId,field,newValue,reason\nuuid:a,/a b,4,x\n", "Line 2: "),
        (b"instanceId,field,newValue,reason\n", "no entries"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_bad_csv_upload_is_refused_in_plain_words(upload: bytes, message: str) -> None:
    with pytest.raises(CleaningError, match=message):
        read_cleaning_csv(upload)


def test_personal_values_in_the_log_are_hidden_as_the_export_hides_them() -> None:
    log = [change("uuid:a", "/name", "Arta Hoxa"), change("uuid:a", "/age", "44")]
    key = b"k" * 32

    kept = protect_personal(SCHEMA, ExportOptions(), log)
    hidden = protect_personal(
        SCHEMA, ExportOptions(personal="pseudonymise", pseudonym_key=key), log
    )
    dropped = protect_personal(SCHEMA, ExportOptions(personal="drop"), log)

    assert kept == log
    assert hidden[0].new_value == pseudonym(key, "Arta Hoxa")
    assert hidden[1] == log[1]
    assert (dropped[0].old_value, dropped[0].new_value) == (None, None)


COPY_LOG = [
    change("uuid:a", "/age", "35"),
    change("uuid:a", "/plot[2]/crop", "sorghum"),
    change("uuid:a", "/plot[2]/crop", "millet"),  # the later entry wins
    change("uuid:a", "/seen", "2026-08-01T11:00:00.000+03:00"),
    change("uuid:b", "/plot[1]/crop", ""),
    change("uuid:b", "/plot[5]/crop", "no such plot"),
    change("uuid:b", "/weight", "60"),
    change("uuid:c", None, None),
]


def _members(archive_bytes: io.BytesIO) -> dict[str, bytes]:
    with zipfile.ZipFile(archive_bytes) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize(
    "options",
    [ExportOptions(), ExportOptions(labels=True, split_select_multiples=True)],
    ids=["default", "labels-split"],
)
def test_the_log_applied_to_the_analysis_copy_gives_what_it_gives_on_records(
    options: ExportOptions,
) -> None:
    records = farm_records()
    from_records, from_copy = io.BytesIO(), io.BytesIO()

    write_csv_zip(SCHEMA, apply_cleaning([records], COPY_LOG), from_records, options)
    write_csv_zip(SCHEMA, apply_cleaning([copied(SCHEMA, records)], COPY_LOG), from_copy, options)

    # The same tables; the zips differ in how members are deflated (rows from
    # records stream through zlib, tables from the copy through Polars).
    assert _members(from_copy) == _members(from_records)
    with zipfile.ZipFile(from_copy) as archive:
        root = list(csv.DictReader(io.StringIO(archive.read("farm.csv").decode())))
        plots = list(csv.DictReader(io.StringIO(archive.read("farm-plot.csv").decode())))
    assert [r["KEY"] for r in root] == ["uuid:a", "uuid:b"]
    assert (root[0]["age"], root[1]["weight"]) == ("35", "60")
    assert root[0]["seen"] == "2026-08-01T11:00:00.000+03:00"
    assert [(p["KEY"], p["crop"]) for p in plots] == [
        ("uuid:a/plot[1]", "maize"),
        ("uuid:a/plot[2]", "millet"),
        ("uuid:b/plot[1]", ""),
    ]
    parquet_records, parquet_copy = io.BytesIO(), io.BytesIO()
    write_parquet_zip(SCHEMA, apply_cleaning([records], COPY_LOG), parquet_records, options)
    write_parquet_zip(
        SCHEMA, apply_cleaning([copied(SCHEMA, records)], COPY_LOG), parquet_copy, options
    )
    with (
        zipfile.ZipFile(parquet_records) as want_zip,
        zipfile.ZipFile(parquet_copy) as got_zip,
    ):
        for name in want_zip.namelist():
            want = pl.read_parquet(io.BytesIO(want_zip.read(name)))
            assert pl.read_parquet(io.BytesIO(got_zip.read(name))).equals(want), name


def test_each_batch_from_the_copy_takes_only_its_own_submissions_entries() -> None:
    records = farm_records()
    batches = [records[:1], records[1:]]
    from_records, from_copy = io.BytesIO(), io.BytesIO()

    write_csv_zip(SCHEMA, apply_cleaning(batches, COPY_LOG), from_records)
    write_csv_zip(
        SCHEMA,
        apply_cleaning([copied(SCHEMA, batch) for batch in batches], COPY_LOG),
        from_copy,
    )

    assert _members(from_copy) == _members(from_records)
    with zipfile.ZipFile(from_copy) as archive:
        root = list(csv.DictReader(io.StringIO(archive.read("farm.csv").decode())))
    assert [(r["KEY"], r["age"], r["weight"]) for r in root] == [
        ("uuid:a", "35", "-61.5"),
        ("uuid:b", "abc", "60"),
    ]
