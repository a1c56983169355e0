"""The CSV zip and root CSV writers: bytes, hostile cells, streaming and failure."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

import polars as pl
import pytest

from exports.csvzip import MediaFile, write_csv_zip, write_root_csv
from exports.options import ExportOptions
from exports.records import ExportRecord, SubmissionMeta
from tests.exports.conftest import BASE_DATE, export_record, schema_from_markdown

FORM = """
| survey |
|        | type                  | name    | label   |
|        | text                  | note    | Note    |
|        | decimal               | amount  | Amount  |
|        | geotrace              | route   | Route   |
|        | select_multiple fruit | fruits  | Fruits  |
|        | begin repeat          | visit   | Visit   |
|        | text                  | comment | Comment |
|        | end repeat            |         |         |
| choices |
|         | list_name | name  | label |
|         | fruit     | apple | Apple |
|         | fruit     | pear  | Pear  |
| settings |
|          | form_id | version |
|          | visits  | 3       |
"""
SCHEMA = schema_from_markdown(FORM, "visits")

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    '@HYPERLINK("http://x")',
    "-2+3+cmd|' /C calc'!A0",
    "\tTAB",
    'He said "hi", then left',
    "line one\nline two\r\nline three",
    "\u202eevil\u202c RTL",
    "trailing space ",
]


def visit_xml(
    instance: str, note: str, amount: str = "", route: str = "", fruits: str = ""
) -> bytes:
    escaped = note.replace("&", "&amp;").replace("<", "&lt;").replace("\r", "&#13;")
    return (
        f'<visits id="visits" version="3"><note>{escaped}</note><amount>{amount}</amount>'
        f"<route>{route}</route><fruits>{fruits}</fruits>"
        f"<visit><comment>{escaped}</comment></visit>"
        f"<meta><instanceID>{instance}</instanceID></meta></visits>"
    ).encode()


def zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_formula_guard_escapes_hostile_cells_and_leaves_them_otherwise_intact() -> None:
    records = [
        export_record(SCHEMA, visit_xml(f"uuid:{i}", text)) for i, text in enumerate(HOSTILE)
    ]
    out = io.BytesIO()

    write_csv_zip(SCHEMA, [records], out, ExportOptions(escape_formulas=True))

    members = zip_members(out.getvalue())
    root = csv_rows(members["visits.csv"])
    notes = [row[root[0].index("note")] for row in root[1:]]
    assert notes == [
        "'=cmd|' /C calc'!A0",
        "'+SUM(1,2)",
        '\'@HYPERLINK("http://x")',
        "'-2+3+cmd|' /C calc'!A0",
        "'\tTAB",
        'He said "hi", then left',
        "line one\nline two\r\nline three",
        "\u202eevil\u202c RTL",
        "trailing space ",
    ]
    comments = [row[0] for row in csv_rows(members["visits-visit.csv"])[1:]]
    assert comments == notes
    # Polars reads the same cells back.
    frame = pl.read_csv(members["visits.csv"], infer_schema=False)
    assert frame.get_column("note").to_list() == notes


def test_by_default_values_are_written_as_collected_as_central_does() -> None:
    records = [
        export_record(SCHEMA, visit_xml(f"uuid:{i}", text)) for i, text in enumerate(HOSTILE)
    ]
    out = io.BytesIO()

    write_root_csv(SCHEMA, [records], out)

    root = csv_rows(out.getvalue())
    assert [row[root[0].index("note")] for row in root[1:]] == HOSTILE


def test_the_guard_leaves_numbers_coordinates_and_a_lone_dash_alone() -> None:
    route = "-1.2860 36.8170 0 0;-1.2870 36.8180 0 0"
    records = [
        export_record(SCHEMA, visit_xml("uuid:n1", "-5", "-12.5", route)),
        export_record(SCHEMA, visit_xml("uuid:n2", "+3e2", "-0.5")),
        export_record(SCHEMA, visit_xml("uuid:n3", "-", "-.5")),
        export_record(SCHEMA, visit_xml("uuid:n4", "+", "7")),
        export_record(SCHEMA, visit_xml("uuid:n5", "-none", "7")),
    ]
    out = io.BytesIO()

    write_root_csv(SCHEMA, [records], out, ExportOptions(escape_formulas=True))

    rows = csv_rows(out.getvalue())
    cells = [(r[1], r[2], r[3]) for r in rows[1:]]
    # A lone "-" or "+" (an address of "-") is text to a spreadsheet: never changed.
    assert cells == [
        ("-5", "-12.5", route),
        ("+3e2", "-0.5", ""),
        ("-", "-.5", ""),
        ("+", "7", ""),
        ("'-none", "7", ""),
    ]


def test_bytes_follow_central_no_bom_lf_and_unquoted_blanks() -> None:
    record = export_record(SCHEMA, visit_xml("uuid:b", "a,b"), submitter_name=None)
    out = io.BytesIO()

    write_root_csv(SCHEMA, [[record]], out)

    data = out.getvalue()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in data
    lines = data.decode().split("\n")
    assert lines[0] == (
        "SubmissionDate,note,amount,route,fruits,meta-instanceID,KEY,SubmitterID,"
        "SubmitterName,AttachmentsPresent,AttachmentsExpected,Status,ReviewState,"
        "DeviceID,Edits,FormVersion"
    )
    assert lines[1] == '2026-08-01T10:00:00.000Z,"a,b",,,,uuid:b,uuid:b,5,,0,0,,,,0,3'
    assert lines[2] == ""


class PipeLike:
    """An output that can only be written, like a socket or a pipe."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def test_zip_streams_to_an_unseekable_output_with_media() -> None:
    records = [export_record(SCHEMA, visit_xml("uuid:m", "hello"))]
    pipe = PipeLike()
    media = [
        MediaFile(name="photo.jpg", size=6, chunks=iter([b"abc", b"def"])),
        MediaFile(name="../../etc/passwd", size=1, chunks=[b"x"]),
        MediaFile(name="photo.jpg", size=1, chunks=[b"!"]),
    ]

    write_csv_zip(SCHEMA, iter([records]), pipe, media=media)

    members = zip_members(b"".join(pipe.chunks))
    assert list(members) == [
        "visits.csv",
        "visits-visit.csv",
        "media/photo.jpg",
        "media/....etcpasswd",
    ]
    assert members["media/photo.jpg"] == b"abcdef"


def test_no_submissions_still_gives_every_header() -> None:
    out = io.BytesIO()

    write_csv_zip(SCHEMA, [], out, ExportOptions(split_select_multiples=True))

    members = zip_members(out.getvalue())
    assert members["visits-visit.csv"] == b"comment,PARENT_KEY,KEY\n"
    assert members["visits.csv"].startswith(b"SubmissionDate,note,")
    assert members["visits.csv"].count(b"\n") == 1


def test_a_failure_midway_leaves_no_valid_archive() -> None:
    def batches() -> Iterator[list[ExportRecord]]:
        yield [export_record(SCHEMA, visit_xml("uuid:f", "first"))]
        raise RuntimeError("database went away")

    out = io.BytesIO()
    with pytest.raises(RuntimeError, match="database went away"):
        write_csv_zip(SCHEMA, batches(), out)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(out.getvalue()))


def test_given_select_values_stream_the_same_zip_as_collected_ones() -> None:
    records = [
        export_record(SCHEMA, visit_xml("uuid:s1", "x", fruits="pear")),
        export_record(SCHEMA, visit_xml("uuid:s2", "y", fruits="apple pear")),
    ]
    options = ExportOptions(split_select_multiples=True)
    collected, given = io.BytesIO(), io.BytesIO()

    write_csv_zip(SCHEMA, [records[:1], records[1:]], collected, options)
    write_csv_zip(SCHEMA, [records], given, options, select_values={"/fruits": ["apple", "pear"]})

    assert zip_members(collected.getvalue()) == zip_members(given.getvalue())
    root = csv_rows(zip_members(given.getvalue())["visits.csv"])
    fruit = root[0].index("fruits")
    assert root[0][fruit : fruit + 3] == ["fruits", "fruits/apple", "fruits/pear"]
    assert [r[fruit : fruit + 3] for r in root[1:]] == [
        ["pear", "0", "1"],
        ["apple pear", "1", "1"],
    ]


@pytest.mark.parametrize("escape", [False, True])
def test_a_streamed_root_table_holds_the_same_bytes_as_one_rendered_whole(escape: bool) -> None:
    records = [
        export_record(SCHEMA, visit_xml(f"uuid:w{i}", value)) for i, value in enumerate(HOSTILE)
    ]
    options = ExportOptions(escape_formulas=escape)
    whole, streamed = io.BytesIO(), io.BytesIO()

    write_csv_zip(SCHEMA, [records[:2], records[2:]], whole, options)
    write_csv_zip(SCHEMA, [records[:2], records[2:]], streamed, options, stream_root=True)

    assert zip_members(whole.getvalue()) == zip_members(streamed.getvalue())
    with zipfile.ZipFile(io.BytesIO(streamed.getvalue())) as archive:
        assert archive.testzip() is None


def synthetic_batches(total: int, size: int) -> Iterator[list[ExportRecord]]:
    """Records as the server would stream them, made on demand."""
    for start in range(0, total, size):
        yield [
            ExportRecord(
                meta=SubmissionMeta(
                    instance_id=f"uuid:{n:08d}",
                    submission_date=BASE_DATE,
                    submitter_id=1,
                    submitter_name="Bot",
                    attachments_present=0,
                    attachments_expected=0,
                    status=None,
                    review_state=None,
                    device_id=None,
                    edits=0,
                    form_version="3",
                ),
                record={
                    "note": f"note {n}",
                    "amount": str(n),
                    "fruits": "apple" if n % 2 else "pear apple",
                    "visit": [{"comment": "a"}, {"comment": "b"}],
                    "meta": {"instanceID": f"uuid:{n:08d}"},
                },
            )
            for n in range(start, min(start + size, total))
        ]


@pytest.mark.parametrize("split", [False, True])
def test_fifty_thousand_records_stream_through_in_batches(split: bool) -> None:
    out = io.BytesIO()

    write_csv_zip(
        SCHEMA,
        synthetic_batches(50_000, 1_000),
        out,
        ExportOptions(split_select_multiples=split),
    )

    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        root = archive.read("visits.csv").decode()
        visits = archive.read("visits-visit.csv").decode()
    assert root.count("\n") == 50_001
    assert visits.count("\n") == 100_001
    assert root.split("\n")[1].startswith("2026-08-01T10:00:00.000Z,note 0,0,,pear apple,")
