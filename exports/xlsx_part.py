"""A sheet part of a workbook, rendered by Polars and deflated straight into its zip member.

Before, xlsxwriter copied the rendered rows through a text file and deflated
the package with Python's zlib: about 700 MB of XML per 100,000 submissions,
more than half of an XLSX export's CPU. Here, as for the CSV zip's members
(exports.csvmember), a table's raw frames wait in uncompressed Arrow IPC files
until every batch has arrived; then each sheet's rows are shaped and rendered
slice by slice (`render`: a frame to the columns exports.sheetxml gives, two
slices ahead on worker threads), and Polars' CSV writer joins them into row
XML and writes it as gzip with its own deflate. A gzip file is a raw deflate
stream between a 10-byte header and a trailer (CRC-32, length), which is what a
zip member holds, so the stream is copied into the member unchanged
(exports.deflate.write_deflated). The rendered text's length is counted as it
is rendered, so a part past 4 GiB still gets its true length.
"""

from __future__ import annotations

import functools
import shutil
import struct
import tempfile
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source

from exports.deflate import write_deflated
from exports.sheetxml import EMPTY_CELL, SEPARATOR

__all__ = ["GZIP_LEVEL", "KeptFrames", "write_sheet_part"]

# Polars' gzip level 1: at 2 (the CSV members' level) the benchmark's root sheet took 0.47
# CPU s per 39,000 rows to write and deflate, at 1 0.34 s, for a part 23% larger.
GZIP_LEVEL = 1
_GZIP_HEADER = b"\x1f\x8b\x08\x00"  # gzip, deflate, no optional fields (what Polars writes)
_COPY_BYTES = 1 << 20
# Rows rendered at a time: a slice of the benchmark's root sheet is about 8 MB of XML. With
# 5,000, a 1,000,000 export peaked at 386 MB (342 MB now); with 1,000, Polars planning the
# expressions once per slice cost about 40% more CPU in rendering.
SLICE_ROWS = 2_500
# Slices rendered ahead of the one being written (memory: a few slices of XML).
_AHEAD = 2

Render = Callable[[pl.DataFrame, int], pl.DataFrame]


class KeptFrames:
    """A table's raw frames, kept in order on disk until its sheets are written."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="sheet-", dir=directory))
        self._files: list[tuple[Path, int]] = []
        self.rows = 0
        self.first: pl.DataFrame | None = None  # the first frame, for column widths

    def append(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        if self.first is None:
            self.first = frame.head(200)
        path = self._folder / f"{len(self._files)}.arrow"
        # Uncompressed: lz4 cost seconds of a million-row CSV zip, writing and reading.
        frame.write_ipc(path, compression="uncompressed")
        self._files.append((path, frame.height))
        self.rows += frame.height

    def slices(
        self, start: int, count: int, shape: Callable[[pl.DataFrame], pl.DataFrame]
    ) -> Iterator[pl.DataFrame]:
        """Rows [start, start + count), shaped, in frames of at most SLICE_ROWS rows.

        A kept frame's part is shaped at once: shaping builds its expressions per call.
        """
        end = start + count
        offset = 0
        for path, height in self._files:
            if offset + height > start and offset < end:
                first = max(start - offset, 0)
                last = min(end - offset, height)
                frame = shape(pl.read_ipc(path).slice(first, last - first))
                for at in range(0, frame.height, SLICE_ROWS):
                    yield frame.slice(at, SLICE_ROWS)
            offset += height

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> KeptFrames:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def write_sheet_part(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    before: bytes,
    rows: Iterator[pl.DataFrame],
    render: Render,
    after: bytes,
    *,
    first_row: int,
    columns: int,
    work_dir: Path,
) -> None:
    """Member `info`: `before`, each frame of `rows` rendered, then `after`.

    `render(frame, number)` gives the frame's rows as `columns` text columns
    that the CSV writer joins with exports.sheetxml.SEPARATOR into row XML,
    the first row numbered `number`; the first frame's is `first_row`.
    """
    names = [f"c{i}" for i in range(columns)]
    schema = pl.Schema(dict.fromkeys(names, pl.String))
    pending = _rendered(rows, render, first_row, names)
    first = next(pending, None)
    if first is None:
        archive.writestr(info, before + after)
        return
    text = (before.decode(), after.decode())
    length = 0  # counted as the frames go out, the opening and closing text in them

    def source(
        with_columns: list[str] | None, predicate: Any, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        nonlocal length
        # The opening text goes before the first row, the closing after the last.
        frame: pl.DataFrame | None = _around(first, text[0], None)
        for following in pending:
            assert frame is not None
            length += _length(frame)
            yield frame
            frame = following
        assert frame is not None
        frame = _around(frame, None, text[1])
        length += _length(frame)
        yield frame

    gzip_path = work_dir / "part.xml.gz"
    register_io_source(io_source=source, schema=schema).sink_csv(
        gzip_path,
        compression="gzip",
        compression_level=GZIP_LEVEL,
        include_header=False,
        separator=SEPARATOR,
        line_terminator="\n",
        quote_style="never",
        null_value=EMPTY_CELL,
        maintain_order=True,
    )
    try:
        with gzip_path.open("rb") as gzip_file:
            start, end, crc, modulo = _gzip_frame(gzip_file)
            if modulo != length % (1 << 32):
                raise ValueError("the rendered sheet's length does not match its gzip trailer")
            write_deflated(archive, info, _chunks(gzip_file, start, end), crc, length)
    finally:
        gzip_path.unlink(missing_ok=True)


def _rendered(
    rows: Iterator[pl.DataFrame], render: Render, number: int, names: list[str]
) -> Iterator[pl.DataFrame]:
    """The frames rendered, in order; the next ones are rendered while one is written.

    Polars releases the GIL while it renders, so slices render side by side
    and beside the sink's writing and deflating: the export uses both cores.
    """
    pending: deque[Future[pl.DataFrame]] = deque()

    def oldest() -> pl.DataFrame:
        rendered = pending.popleft().result()
        return rendered.rename(dict(zip(rendered.columns, names, strict=True)))

    for frame in rows:
        pending.append(_renderers().submit(render, frame, number))
        number += frame.height
        if len(pending) > _AHEAD:
            yield oldest()
    while pending:
        yield oldest()


@functools.cache
def _renderers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_AHEAD, thread_name_prefix="xlsx-render")


def _around(frame: pl.DataFrame, before: str | None, after: str | None) -> pl.DataFrame:
    """The frame with `before` ahead of its first row and `after` behind its last."""
    names = frame.columns
    if before is not None:
        head = frame.head(1).with_columns((pl.lit(before) + pl.col(names[0])).alias(names[0]))
        frame = pl.concat([head, frame.slice(1)])
    if after is not None:
        tail = frame.tail(1).with_columns((pl.col(names[-1]) + pl.lit(after)).alias(names[-1]))
        frame = pl.concat([frame.head(frame.height - 1), tail])
    return frame


def _length(frame: pl.DataFrame) -> int:
    """The bytes the CSV writer writes for the frame: cells, separators, line ends."""
    cells = frame.select(
        pl.sum_horizontal(pl.all().str.len_bytes().fill_null(len(EMPTY_CELL))).sum()
    ).item()
    return int(cells or 0) + frame.height * frame.width  # width - 1 separators and a line end


def _gzip_frame(gzip_file: Any) -> tuple[int, int, int, int]:
    """(start, end) of the deflate stream in the gzip file, its CRC-32 and length mod 4 GiB."""
    head = gzip_file.read(10)
    if len(head) < 10 or head[:4] != _GZIP_HEADER:
        raise ValueError("Polars wrote gzip with optional header fields; not supported")
    end = gzip_file.seek(-8, 2)
    crc, length = struct.unpack("<II", gzip_file.read(8))
    return 10, end, crc, length


def _chunks(gzip_file: Any, start: int, end: int) -> Iterator[bytes]:
    gzip_file.seek(start)
    left = end - start
    while left > 0:
        chunk = gzip_file.read(min(_COPY_BYTES, left))
        if not chunk:
            raise ValueError("the gzip file ended early")
        left -= len(chunk)
        yield chunk
