"""Homeward's CSV zip against what a real ODK Central answered (shared/central-golden).

Each golden file holds an XLSForm's two submissions and Central's CSV zip for
four option sets. The same submissions, replayed through the export pipeline,
must give the same files, headers, rows (cells Central marks <volatile> match
anything) and BOM flag.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import msgspec
import pytest

from exports.csvzip import write_csv_zip, write_root_csv
from exports.options import ExportOptions
from exports.records import ExportRecord
from forms.schema import FormSchema
from tests.exports.conftest import export_record, minutes_ago, schema_from_xlsform

GOLDEN_FILES = [
    "fmtm__slum_assessment_survey",
    "odkcentral__all-question-types-v2024091201-3",
    "onadata__nested_repeats",
    "pyodk__fav_color",
]
OPTION_SETS = [
    "default",
    "groupPaths=false",
    "splitSelectMultiples=true",
    "groupPaths=false&splitSelectMultiples=true",
]
VOLATILE = "<volatile>"


def options_for(query: str) -> ExportOptions:
    if query == "default":
        return ExportOptions()
    flags = dict(part.split("=") for part in query.split("&"))
    return ExportOptions(
        group_paths=flags.get("groupPaths", "true") == "true",
        split_select_multiples=flags.get("splitSelectMultiples", "false") == "true",
    )


@functools.cache
def golden_case(
    shared_dir: Path, stem: str
) -> tuple[dict[str, Any], FormSchema, list[ExportRecord]]:
    """The golden answers, the form's schema and its records, newest first."""
    golden = json.loads((shared_dir / "central-golden" / f"{stem}.json").read_text("utf-8"))
    schema = schema_from_xlsform(shared_dir / "xlsforms" / golden["file"])
    assert schema.form_id == golden["xmlFormId"]
    # Submitted oldest first; Central exports newest first.
    records = [
        export_record(
            schema,
            submission["xml"].encode(),
            attachments=submission["attachments"],
            submitted=minutes_ago(len(golden["submissions"]) - index),
        )
        for index, submission in enumerate(golden["submissions"])
    ]
    return golden, schema, list(reversed(records))


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def assert_matches(expected: dict[str, Any], data: bytes) -> None:
    assert data.startswith(b"\xef\xbb\xbf") == expected["bom"]
    rows = parse_csv(data)
    assert rows[0] == expected["header"]
    assert len(rows) - 1 == len(expected["rows"])
    for number, (got, want) in enumerate(zip(rows[1:], expected["rows"], strict=True), 1):
        masked = [g if w != VOLATILE else VOLATILE for g, w in zip(got, want, strict=True)]
        assert masked == want, f"row {number}"


def as_stored(records: list[ExportRecord]) -> list[ExportRecord]:
    """The records as the server hands them over: answers still in their stored JSON."""
    return [msgspec.structs.replace(r, record=msgspec.json.encode(r.record)) for r in records]


@pytest.mark.parametrize("stored", [False, True], ids=["decoded", "stored-json"])
@pytest.mark.parametrize("query", OPTION_SETS)
@pytest.mark.parametrize("stem", GOLDEN_FILES)
def test_csv_zip_matches_central(shared_dir: Path, stem: str, query: str, stored: bool) -> None:
    golden, schema, records = golden_case(shared_dir, stem)
    if stored:
        records = as_stored(records)
    out = io.BytesIO()

    write_csv_zip(schema, [records[:1], records[1:]], out, options_for(query))

    files = read_zip(out.getvalue())
    expected = golden["csv"][query]
    assert set(files) == set(expected)
    for name, table in expected.items():
        assert_matches(table, files[name])


@pytest.mark.parametrize("query", OPTION_SETS)
@pytest.mark.parametrize("stem", GOLDEN_FILES)
def test_root_csv_is_the_zips_root_table(shared_dir: Path, stem: str, query: str) -> None:
    golden, schema, records = golden_case(shared_dir, stem)
    out = io.BytesIO()

    write_root_csv(schema, [records], out, options_for(query))

    assert_matches(golden["csv"][query][f"{golden['xmlFormId']}.csv"], out.getvalue())
