"""Zip members deflated elsewhere (Polars, parallel blocks) read back as written."""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from pathlib import Path

import polars as pl
import pytest

from exports.csvmember import RenderedTable, StreamedTable, _full_length
from exports.deflate import ParallelDeflate, crc32_combine, parallel_member, write_deflated


def _text(size: int) -> bytes:
    rng = random.Random(14)
    words = [b"Prishtin\xc3\xab", b"Tirana", b"returnee", b"12.5", b"", b'"quoted, text"']
    out = bytearray()
    while len(out) < size:
        out += b",".join(rng.choice(words) for _ in range(8)) + b"\n"
    return bytes(out[:size])


@pytest.mark.parametrize("size", [0, 1, 4_095, 4_096, 250_000])
def test_blocks_joined_in_order_inflate_to_the_input(size: int) -> None:
    data = _text(size)
    compressor = ParallelDeflate(1, block_bytes=4_096)
    # Written in uneven pieces, as a writer does.
    pieces = [data[i : i + 3_000] for i in range(0, len(data), 3_000)]
    stream = b"".join(compressor.compress(piece) for piece in pieces) + compressor.flush()
    assert zlib.decompress(stream, -zlib.MAX_WBITS) == data


def test_a_member_deflated_in_parallel_reads_back_with_its_crc() -> None:
    data = _text(3_000_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("big.csv", "w", force_zip64=True) as opened:
            member = parallel_member(opened, 1)
            for start in range(0, len(data), 700_000):
                member.write(data[start : start + 700_000])
        archive.writestr("small.csv", b"a,b\n")
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() is None  # every CRC-32 matches
        assert archive.read("big.csv") == data
        assert archive.read("small.csv") == b"a,b\n"


def test_only_a_deflated_member_opened_for_writing_is_accepted() -> None:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive,
        archive.open("stored.bin", "w") as opened,
        pytest.raises(TypeError),
    ):
        parallel_member(opened, 1)


def test_a_member_from_deflated_bytes_reads_back_with_its_crc() -> None:
    data = _text(500_000)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = compressor.compress(data) + compressor.flush()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        pieces = [stream[i : i + 10_000] for i in range(0, len(stream), 10_000)]
        write_deflated(archive, zipfile.ZipInfo("t.csv"), pieces, zlib.crc32(data), len(data))
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() is None
        assert archive.read("t.csv") == data
        assert archive.getinfo("t.csv").compress_size == len(stream)


@pytest.mark.parametrize(("first", "second"), [(0, 0), (0, 5), (5, 0), (1, 1), (1_000, 123_457)])
def test_crc32_combine_gives_the_crc_of_the_joined_text(first: int, second: int) -> None:
    text = _text(first + second)
    head, tail = text[:first], text[first:]

    combined = crc32_combine(zlib.crc32(head), zlib.crc32(tail), len(tail))

    assert combined == zlib.crc32(text)


def test_a_member_from_deflated_bytes_can_have_text_put_in_front() -> None:
    head, data = b"<worksheet><dimension ref='A1:C9'/>", _text(300_000)
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = compressor.compress(data) + compressor.flush()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("sheet.xml")
        write_deflated(archive, info, [stream], zlib.crc32(data), len(data), head)
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() is None  # the combined CRC-32 matches
        assert archive.read("sheet.xml") == head + data
        assert archive.getinfo("sheet.xml").file_size == len(head) + len(data)


def test_a_table_member_rendered_by_polars_holds_header_rows_and_repeated_names(
    tmp_path: Path,
) -> None:
    # Cells as exports.csvzip hands them over: blanks are nulls already.
    rows = pl.DataFrame({"a": ["1", None, 'say "hi", then go'], "b": ["x", None, "two\nlines"]})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, RenderedTable(tmp_path) as table:
        table.append(rows.slice(0, 2))
        table.append(rows.slice(2, 1))
        table.write_member(archive, zipfile.ZipInfo("t.csv"), ["name", "name"])
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() is None
        assert archive.read("t.csv") == b'name,name\n1,x\n,\n"say ""hi"", then go","two\nlines"\n'
    assert list(tmp_path.iterdir()) == []  # its files are gone with it


def test_a_length_past_4_gib_is_told_by_the_trailer_and_the_estimate() -> None:
    assert _full_length(1_000, 0) == 1_000
    assert _full_length(1_000, 1_010) == 1_000
    assert _full_length(1_000, (5 << 32) + 990) == (5 << 32) + 1_000
    assert _full_length((1 << 32) - 5, (1 << 32) + 3) == (1 << 32) - 5


def test_a_streamed_table_writes_the_member_a_kept_table_writes(tmp_path: Path) -> None:
    rows = pl.DataFrame(
        {"a": [str(i) if i % 7 else None for i in range(5_000)], "b": ['x,"y"'] * 5_000}
    )
    members = []
    for kind in (RenderedTable, StreamedTable):
        buffer = io.BytesIO()
        table = (
            RenderedTable(tmp_path)
            if kind is RenderedTable
            else StreamedTable(["n", "m"], tmp_path)
        )
        with zipfile.ZipFile(buffer, "w") as archive, table:
            for start in range(0, rows.height, 1_500):  # more batches than the queue holds
                table.append(rows.slice(start, 1_500))
            table.write_member(archive, zipfile.ZipInfo("t.csv"), ["n", "m"])
        with zipfile.ZipFile(buffer) as archive:
            assert archive.testzip() is None
            members.append(archive.read("t.csv"))
    assert members[0] == members[1]
    assert members[1].startswith(b'n,m\n,"x,""y"""\n1,"x,""y"""\n')
    assert list(tmp_path.iterdir()) == []


def test_a_streamed_table_closed_before_its_member_stops_its_writer(tmp_path: Path) -> None:
    table = StreamedTable(["a"], tmp_path)
    table.append(pl.DataFrame({"a": ["1", "2"]}))
    table.close()  # as when the export fails or the client goes away
    assert not table._thread.is_alive()
    assert list(tmp_path.iterdir()) == []


def test_a_streamed_table_refuses_a_header_of_another_width(tmp_path: Path) -> None:
    with (
        StreamedTable(["a", "b"], tmp_path) as table,
        zipfile.ZipFile(io.BytesIO(), "w") as archive,
        pytest.raises(ValueError, match="header"),
    ):
        table.write_member(archive, zipfile.ZipInfo("t.csv"), ["a"])
