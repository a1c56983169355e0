"""A sheet streamed while its frames arrive: rows in order, head put in front, failures told."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import polars as pl
import pytest

import exports.xlsx_part
from exports.xlsx_part import StreamedSheet, write_sheet_part

HEAD = b"<sheet><rows>"
AFTER = b"</rows></sheet>"


def render(frame: pl.DataFrame, first: int) -> pl.DataFrame:
    """Rows as `<r n="N">value` and `/r>` (exports.sheetxml's separator is `<`)."""
    number = (pl.int_range(pl.len(), dtype=pl.Int64) + first).cast(pl.String)
    opening = pl.concat_str([pl.lit('<r n="'), number, pl.lit('">'), pl.col("v")])
    return frame.select(opening.alias("a"), pl.lit("/r>").alias("b"))


def member(tmp_path: Path, sheet: StreamedSheet) -> bytes:
    body = sheet.finish()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        write_sheet_part(archive, zipfile.ZipInfo("s.xml"), HEAD, body, AFTER)
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() is None
        return archive.read("s.xml")


def streamed(tmp_path: Path, shape: exports.xlsx_part.Shape = lambda f: f) -> StreamedSheet:
    return StreamedSheet(
        shape, render, columns=2, first_row=2, after=AFTER, path=tmp_path / "s.xml.gz"
    )


def test_rows_of_every_frame_follow_the_head_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports.xlsx_part, "SLICE_ROWS", 3)  # frames rendered in slices
    with streamed(tmp_path) as sheet:
        sheet.append(pl.DataFrame({"v": ["a", "b", "c", "d"]}))
        sheet.append(pl.DataFrame({"v": []}, schema={"v": pl.String}))
        sheet.append(pl.DataFrame({"v": ["e"]}))
        text = member(tmp_path, sheet)

    rows = "".join(f'<r n="{n}">{v}</r>\n' for n, v in enumerate("abcde", start=2))
    assert text == HEAD + rows.encode()[:-1] + AFTER + b"\n"


def test_a_sheet_without_rows_is_its_head_and_closing() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        write_sheet_part(archive, zipfile.ZipInfo("s.xml"), HEAD, None, AFTER)
    assert zipfile.ZipFile(buffer).read("s.xml") == HEAD + AFTER


def test_a_failure_on_the_sheets_thread_is_raised_to_the_writer(tmp_path: Path) -> None:
    def broken(frame: pl.DataFrame) -> pl.DataFrame:
        raise ValueError("cannot shape")

    def feed(sheet: StreamedSheet) -> None:
        for _ in range(20):  # the sink fails on the first; a later append or finish tells
            sheet.append(pl.DataFrame({"v": ["a"]}))
        sheet.finish()

    with (
        streamed(tmp_path, broken) as sheet,
        pytest.raises(RuntimeError, match="rendering a sheet failed") as raised,
    ):
        feed(sheet)
    assert isinstance(raised.value.__cause__, ValueError)


def test_a_sheet_closed_before_it_is_finished_stops_its_writer(tmp_path: Path) -> None:
    sheet = streamed(tmp_path)
    sheet.append(pl.DataFrame({"v": ["a"]}))

    sheet.close()

    assert not sheet._thread.is_alive()
