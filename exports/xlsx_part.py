"""A sheet part of a workbook, rendered by Polars while batches arrive and deflated by it.

Before, xlsxwriter copied the rendered rows through a text file and deflated
the package with Python's zlib: about 700 MB of XML per 100,000 submissions,
more than half of an XLSX export's CPU. Here, as for the CSV zip's members
(exports.csvmember), a sheet's rows are streamed: from its first batch on, a
thread of its own runs a Polars CSV sink that pulls raw frames from a short
queue, shapes and renders them slice by slice (`render`: a frame to the columns
exports.sheetxml gives) and writes the joined row XML as gzip with Polars' own
deflate. Keeping the raw frames in Arrow files and rendering them all after the
last batch (as this module did before) made the rendering wait for the reading:
a million submissions took 38 s on a quiet machine against the CSV zip's 13 s.

A gzip file is a raw deflate stream between a 10-byte header and a trailer
(CRC-32, length), which is what a zip member holds, so the stream is copied
into the member unchanged. What goes before the rows (`<dimension>` with the
row count, the column widths, the header rows) is only known once the last
row is in, so it is deflated on its own when the member is written and put in
front of the rows' stream (exports.deflate.write_deflated). The rendered text's
length is counted as it is rendered, so a part past 4 GiB still gets its true
length.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
import polars as pl
from polars.io.plugins import register_io_source

from exports.deflate import write_deflated
from exports.gzipsink import FrameFeed, gzip_chunks, gzip_frame
from exports.sheetxml import EMPTY_CELL, SEPARATOR

__all__ = ["GZIP_LEVEL", "KeptFrames", "SheetBody", "StreamedSheet", "write_sheet_part"]

# Polars' gzip level 1: at 2 (the CSV members' level) the benchmark's root sheet took 0.47
# CPU s per 39,000 rows to write and deflate, at 1 0.34 s, for a part 23% larger.
GZIP_LEVEL = 1
# Rows rendered at a time (a batch from the analysis copy is 5,000): a slice of the
# benchmark's root sheet is about 10 MB of XML. Polars plans a slice's expressions in
# about 4 ms whatever its length, a third of rendering 2,000 rows: at 2,500, a million
# took 16.8 s against 14.2 s at 5,000, which peaked 36 MB higher (376 MB).
SLICE_ROWS = 5_000
# Raw frames a sheet may hold before `append` waits for its sink.
_QUEUED = 2

Shape = Callable[[pl.DataFrame], pl.DataFrame]
Render = Callable[[pl.DataFrame, int], pl.DataFrame]


class SheetBody(msgspec.Struct, frozen=True):
    """A sheet's rows, rendered and deflated: a gzip file, its text's CRC-32 and length."""

    path: Path
    crc: int
    length: int
    rows: int


class KeptFrames:
    """A table's raw frames, kept in order on disk until they can be shaped.

    Only split select multiples need it: their 0/1 columns are known once every
    chosen value has been seen.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="sheet-", dir=directory))
        self._files: list[Path] = []

    def append(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        path = self._folder / f"{len(self._files)}.arrow"
        # Uncompressed: lz4 cost seconds of a million-row CSV zip, writing and reading.
        frame.write_ipc(path, compression="uncompressed")
        self._files.append(path)

    def frames(self) -> Iterator[pl.DataFrame]:
        for path in self._files:
            yield pl.read_ipc(path)

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


class StreamedSheet:
    """One sheet's rows, shaped, rendered and deflated by a Polars sink on its own thread.

    `render(frame, number)` gives the shaped frame's rows as `columns` text
    columns that the CSV writer joins with exports.sheetxml.SEPARATOR into row
    XML, the first row numbered `number`; the sheet's first is `first_row`.
    `after` (the text that closes the part) follows the last row. `append`
    waits while the sink holds `_QUEUED` frames, so memory holds a few batches
    and the rendered slices in flight, whatever the sheet's length.
    """

    def __init__(
        self,
        shape: Shape,
        render: Render,
        *,
        columns: int,
        first_row: int,
        after: bytes,
        path: Path,
    ) -> None:
        self._shape = shape
        self._render = render
        self._names = [f"c{i}" for i in range(columns)]
        self._number = first_row
        self._after = after.decode()
        self._path = path
        self._length = 0  # counted as the frames go out, the closing text in them
        self._rows = 0
        self._feed = FrameFeed(_QUEUED, "sheet")
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._sink, name="xlsx-sheet", daemon=True)
        self._thread.start()

    def append(self, raw: pl.DataFrame) -> None:
        if raw.height == 0:
            return
        self._rows += raw.height
        self._feed.put(raw, self._thread, self._raise_failure)

    def finish(self) -> SheetBody:
        """Wait for the sink to write the last row; the body, ready to copy into a member."""
        self._feed.put(None, self._thread, self._raise_failure)
        self._thread.join()
        self._raise_failure()
        with self._path.open("rb") as gzip_file:
            _, _, crc, modulo = gzip_frame(gzip_file)
        if modulo != self._length % (1 << 32):
            raise ValueError("the rendered sheet's length does not match its gzip trailer")
        return SheetBody(self._path, crc, self._length, self._rows)

    def close(self) -> None:
        self._feed.stop()  # a sink still waiting for frames ends at once
        self._thread.join()

    def __enter__(self) -> StreamedSheet:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _sink(self) -> None:
        schema = pl.Schema(dict.fromkeys(self._names, pl.String))
        try:
            register_io_source(io_source=self._rendered, schema=schema).sink_csv(
                self._path,
                compression="gzip",
                compression_level=GZIP_LEVEL,
                include_header=False,
                separator=SEPARATOR,
                line_terminator="\n",
                quote_style="never",
                null_value=EMPTY_CELL,
                maintain_order=True,
            )
        except BaseException as failure:  # handed to the producer's thread
            self._failure = failure

    def _rendered(
        self,
        with_columns: list[str] | None,
        predicate: Any,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        """Each queued frame's rows as XML columns; the closing text behind the last row.

        Runs on the sink's thread: Polars releases the GIL while it shapes and
        renders, so a sheet renders beside the batches being read and the
        other sheets being written, on both cores.
        """
        held: pl.DataFrame | None = None  # the last row's frame takes the closing text
        while (raw := self._feed.take()) is not None:
            shaped = self._shape(raw)  # a whole batch at once: shaping plans per call
            for at in range(0, shaped.height, SLICE_ROWS):
                rendered = self._render(shaped.slice(at, SLICE_ROWS), self._number)
                self._number += rendered.height
                rendered = rendered.rename(dict(zip(rendered.columns, self._names, strict=True)))
                if held is not None:
                    self._length += _length(held)
                    yield held
                held = rendered
        if held is not None and not self._feed.stopped:
            held = _closed(held, self._after)
            self._length += _length(held)
            yield held

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError("rendering a sheet failed") from self._failure


def write_sheet_part(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    before: bytes,
    body: SheetBody | None,
    after: bytes,
) -> None:
    """Member `info`: `before`, the body's rows (with `after` behind them), or `before + after`."""
    if body is None:
        archive.writestr(info, before + after)
        return
    with body.path.open("rb") as gzip_file:
        start, end, _, _ = gzip_frame(gzip_file)
        write_deflated(
            archive, info, gzip_chunks(gzip_file, start, end), body.crc, body.length, before
        )


def _closed(frame: pl.DataFrame, after: str) -> pl.DataFrame:
    """The frame with `after` behind its last row."""
    last = frame.columns[-1]
    tail = frame.tail(1).with_columns((pl.col(last) + pl.lit(after)).alias(last))
    return pl.concat([frame.head(frame.height - 1), tail])


def _length(frame: pl.DataFrame) -> int:
    """The bytes the CSV writer writes for the frame: cells, separators, line ends."""
    # Column by column: a horizontal sum made ~50 intermediate columns a slice (3x the time).
    texts: int = sum(length or 0 for length in frame.select(pl.all().str.len_bytes().sum()).row(0))
    empty: int = len(EMPTY_CELL) * sum(frame.null_count().row(0))
    return texts + empty + frame.height * frame.width  # width - 1 separators and a line end
