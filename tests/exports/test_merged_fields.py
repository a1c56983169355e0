"""Exports over fields merged across form versions (Central's deletedFields=true)."""

from __future__ import annotations

import io
import zipfile

import polars as pl

from exports.csvzip import write_csv_zip
from exports.parquet import write_parquet_zip
from forms.schema import merge_schemas
from tests.exports.conftest import export_record, schema_from_markdown

OLD = """
| survey |
|        | type    | name  | label |
|        | text    | name  | Name  |
|        | integer | cows  | Cows  |
| settings |
|          | form_id | version |
|          | herd    | 1       |
"""
NEW = """
| survey |
|        | type    | name  | label |
|        | text    | name  | Name  |
|        | integer | goats | Goats |
| settings |
|          | form_id | version |
|          | herd    | 2       |
"""


def test_answers_to_deleted_questions_are_exported_with_the_merged_fields() -> None:
    old, new = schema_from_markdown(OLD, "herd"), schema_from_markdown(NEW, "herd")
    merged = merge_schemas(new, [old])
    records = [
        export_record(
            new,
            b'<herd id="herd" version="2"><name>B</name><goats>4</goats>'
            b"<meta><instanceID>uuid:2</instanceID></meta></herd>",
        ),
        export_record(
            old,
            b'<herd id="herd" version="1"><name>A</name><cows>7</cows>'
            b"<meta><instanceID>uuid:1</instanceID></meta></herd>",
        ),
    ]
    csv_out, parquet_out = io.BytesIO(), io.BytesIO()

    write_csv_zip(merged, [records], csv_out)
    write_parquet_zip(merged, [records], parquet_out)

    with zipfile.ZipFile(io.BytesIO(csv_out.getvalue())) as archive:
        header = archive.read("herd.csv").decode().split("\n")[0].split(",")
    assert header[1:5] == ["name", "goats", "meta-instanceID", "cows"]
    with zipfile.ZipFile(io.BytesIO(parquet_out.getvalue())) as archive:
        frame = pl.read_parquet(archive.read("herd.parquet"))
    assert frame.select("name", "goats", "cows").rows() == [("B", 4, None), ("A", None, 7)]
