"""A form with every kind the typed writers treat differently, and its submissions.

Two languages, a personal question, numbers, a date and a dateTime, a
geopoint, a select multiple and a select one, and a repeat holding a geoshape
and a geotrace. Shared by the XLSX, Parquet and GeoJSON tests.
"""

from __future__ import annotations

import csv
import io
import zipfile
from xml.sax.saxutils import escape

from exports.csvzip import write_csv_zip
from exports.options import ExportOptions
from exports.records import ExportRecord
from tests.exports.conftest import export_record, minutes_ago, schema_from_markdown

FORM = """
| survey |
|        | type                  | name      | label::English (en) | label::French (fr) | personal |
|        | text                  | name      | Name                | Nom                | yes      |
|        | integer               | age       | Age                 | Âge                |          |
|        | decimal               | weight    | Weight              | Poids              |          |
|        | date                  | born      | Born                | Né le              |          |
|        | dateTime              | seen      | Seen                | Vu le              |          |
|        | geopoint              | home      | Home                | Maison             |          |
|        | select_multiple fruit | fruits    | Fruits              | Fruits             |          |
|        | select_one fruit      | favourite | Favourite           | Préféré            |          |
|        | begin repeat          | plot      | Plot                | Parcelle           |          |
|        | text                  | crop      | Crop                | Culture            |          |
|        | geoshape              | boundary  | Boundary            | Limite             |          |
|        | geotrace              | path      | Path                | Chemin             |          |
|        | end repeat            |           |                     |                    |          |
| choices |
|         | list_name | name    | label::English (en) | label::French (fr) |
|         | fruit     | apple   | Apple               | Pomme              |
|         | fruit     | pear    | Pear                | Poire              |
|         | fruit     | big_fig | Big fig             | Grosse figue       |
| settings |
|          | form_id | version |
|          | farm    | 4       |
"""
SCHEMA = schema_from_markdown(FORM, "farm")

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1",
    "@SUM(1)",
    "-2+3+cmd|' /C calc'!A0",
    'He said "hi", then left',
    "line one\nline two\r\nline three",
    "\u202eevil\u202c RTL",
]
SQUARE = "0 0 0 0;0 1 0 0;1 1 0 0;1 0 0 0;0 0 0 0"
TRACE = "-1.2860 36.8170 1600 5;-1.2870 36.8180 1601 5"


def _text(value: str) -> str:
    return escape(value).replace("\r", "&#13;")


def farm_xml(instance: str, plots: list[dict[str, str]] | None = None, **answers: str) -> bytes:
    body = "".join(f"<{name}>{_text(value)}</{name}>" for name, value in answers.items())
    for plot in plots or []:
        body += "<plot>" + "".join(f"<{k}>{_text(v)}</{k}>" for k, v in plot.items()) + "</plot>"
    return (
        f'<farm id="farm" version="4">{body}<meta><instanceID>{instance}</instanceID></meta></farm>'
    ).encode()


def farm_records() -> list[ExportRecord]:
    """Three submissions, newest first, with every kind of answer and some bad ones."""
    return [
        export_record(
            SCHEMA,
            farm_xml(
                "uuid:a",
                plots=[
                    {"crop": "maize", "boundary": SQUARE, "path": TRACE},
                    {"crop": "=HYPERLINK(1)", "boundary": "", "path": "not a trace"},
                ],
                name="Arta Hoxha",
                age="34",
                weight="-61.5",
                born="1992-02-29",
                seen="2026-08-01T10:30:00.250+03:00",
                home="-1.2860 36.8170 1600.5 4.2",
                fruits="apple big_fig",
                favourite="pear",
            ),
            submitted=minutes_ago(0),
        ),
        export_record(
            SCHEMA,
            farm_xml(
                "uuid:b",
                plots=[{"crop": "beans", "boundary": "1 1;1 2;2 2", "path": ""}],
                name="Ben",
                age="abc",
                weight="",
                born="not a date",
                seen="2026-01-15T23:00:00Z",
                home="",
                fruits="pear",
                favourite="",
            ),
            submitted=minutes_ago(5),
        ),
        export_record(
            SCHEMA,
            farm_xml("uuid:c", name="=cmd|' /C calc'!A0", age="-7", fruits=""),
            submitted=minutes_ago(10),
        ),
    ]


def hostile_records() -> list[ExportRecord]:
    return [
        export_record(
            SCHEMA,
            farm_xml(f"uuid:h{i}", plots=[{"crop": text}], name=text, favourite=text),
        )
        for i, text in enumerate(HOSTILE)
    ]


def csv_tables(records: list[ExportRecord], options: ExportOptions) -> dict[str, list[list[str]]]:
    """The CSV zip of the records (the reference layout): member stem -> rows with header."""
    out = io.BytesIO()
    write_csv_zip(SCHEMA, [records], out, options)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        return {
            name.removesuffix(".csv"): list(
                csv.reader(io.StringIO(archive.read(name).decode(), newline=""))
            )
            for name in archive.namelist()
        }
