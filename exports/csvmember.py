"""A table's CSV as one zip member, rendered and deflated by Polars in one pass.

Deflating with Python's zlib (level 1) cost more CPU than everything else in a
CSV zip from the analysis copy: 1.6 s of 3.7 s for 100,000 submissions. Polars
writes gzip itself, on its own threads and with a faster deflate: its level 2
gives a smaller file than zlib's level 1 for a quarter of the CPU (measured on
the benchmark's root table: 106 MB of CSV, 0.29 s against about 1.2 s). A
gzip file is a deflate stream between a 10-byte header and a trailer with the
CRC-32 and the length, which is exactly what a zip member holds, so the stream
is copied into the member as it is.

A deflate stream cannot be continued once finished, so each table is written
by one Polars call over all its rows: batches are kept as Arrow IPC files (cells
already shaped and quoted as Central writes them) and scanned in order by the
streaming engine, so memory holds a few batches whatever the table's size.

A streamed table may also send its member while Polars writes it
(`StreamedTable.send_live`, exports.livemember): the first member of a zip,
so its first bytes leave at once.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source

from exports.deflate import write_deflated
from exports.gzipsink import FrameFeed, gzip_chunks, gzip_frame
from exports.livemember import LiveMember

__all__ = ["GZIP_LEVEL", "RenderedTable", "StreamedTable"]

# Polars' gzip level 2: as small as zlib's level 1, four times cheaper.
GZIP_LEVEL = 2
# Rows handed to the CSV sink at a time: memory in flight stays a few MB.
_SLICE_ROWS = 1_000
# Batches a streamed table may hold before `append` waits for the sink.
_STREAM_BATCHES = 2
# Deflate expands at most 1032-fold: a shorter stream cannot hold 4 GiB of text,
# so the gzip trailer's length (modulo 4 GiB) is the length.
_MAX_RATIO = 1032


class RenderedTable:
    """A table's rows as text cells, kept batch by batch until the member is written."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="table-", dir=directory))
        self._files: list[Path] = []
        # The text's length without quotes: tells a member past 4 GiB its true length.
        self._cell_bytes = 0
        self._rows = 0

    def append(self, cells: pl.DataFrame) -> None:
        """Rows of string cells, nulls for blanks, columns in output order."""
        if cells.height == 0:
            return
        path = self._folder / f"{len(self._files)}.arrow"
        # Uncompressed: lz4 cost 5-6 CPU s of a million-row export, writing and reading.
        _positional(cells).write_ipc(path, compression="uncompressed")
        self._files.append(path)
        self._count(cells)

    def write_member(
        self,
        archive: zipfile.ZipFile,
        info: zipfile.ZipInfo,
        header: Sequence[str],
    ) -> None:
        """The header line and every row, as the member `info` of `archive`."""
        head = _head(header)
        _sink(_source(head, self._files), self._gzip_path)
        self._copy_member(archive, info, len(header))

    @property
    def _gzip_path(self) -> Path:
        return self._folder / "table.csv.gz"

    def _copy_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, width: int) -> None:
        with self._gzip_path.open("rb") as gzip_file:
            start, end, crc, length = gzip_frame(gzip_file)
            length = self._full_length(width, length, end - start)
            write_deflated(archive, info, gzip_chunks(gzip_file, start, end), crc, length)

    def _count(self, cells: pl.DataFrame) -> None:
        lengths = cells.select(pl.sum_horizontal(pl.all().str.len_bytes().fill_null(0)).sum())
        self._cell_bytes += int(lengths.item() or 0)
        self._rows += cells.height

    def _estimated_length(self, width: int) -> int:
        """The text's length to within the quotes of quoted cells (header left out)."""
        return self._cell_bytes + self._rows * width  # a separator or line end per cell

    def _full_length(self, width: int, modulo: int, deflated: int) -> int:
        """The text's length from the gzip trailer's (mod 4 GiB) and the deflated size."""
        if deflated >= (1 << 32) // _MAX_RATIO:
            return _full_length(modulo, self._estimated_length(width))
        return modulo

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> RenderedTable:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class StreamedTable(RenderedTable):
    """A table whose header is known up front, rendered by Polars while batches arrive.

    The sink runs on a thread of its own from the first batch, pulling batches
    from a short queue: the table's CSV is formatted and deflated while later
    segments are still read and shaped (on both cores), and its rows are never
    written to and read back from Arrow files (the root table of a million
    submissions is about 1 GB of text). `append` waits while the queue is full,
    so memory holds a few batches.
    """

    def __init__(self, header: Sequence[str], directory: str | Path | None = None) -> None:
        super().__init__(directory)
        self._width = len(header)
        self._feed = FrameFeed(_STREAM_BATCHES, "CSV member")
        self._failure: BaseException | None = None
        self._sink_done = threading.Event()
        self._live: LiveMember | None = None
        head = _head(header)
        source = _queued_source(head, self._feed.take)
        self._thread = threading.Thread(
            target=self._render, args=(source,), name="csv-member", daemon=True
        )
        self._thread.start()

    def _render(self, source: pl.LazyFrame) -> None:
        try:
            _sink(source, self._gzip_path)
        except BaseException as failure:  # handed to the producer's thread
            self._failure = failure
        finally:
            self._sink_done.set()

    def send_live(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        """Start the member `info` now and copy the table into it while it is rendered.

        Nothing else may be written to `archive` until `write_member` has returned.
        """
        self._live = LiveMember(archive, info, self._gzip_path, self._sink_done, self._failed)

    def _failed(self) -> BaseException | None:
        return self._failure

    def append(self, cells: pl.DataFrame) -> None:
        if cells.height == 0:
            return
        self._count(cells)
        self._feed.put(_positional(cells), self._thread, self._raise_failure)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError("rendering a CSV member failed") from self._failure
        if self._live is not None and self._live.failure is not None:
            # As it was raised: a client that went away is not an export that failed.
            raise self._live.failure

    def write_member(
        self,
        archive: zipfile.ZipFile,
        info: zipfile.ZipInfo,
        header: Sequence[str],
    ) -> None:
        """Finish the member (`header` was given to the constructor) and add it.

        A member sent live (`send_live`) is finished instead; `info` must name it.
        """
        if len(header) != self._width:
            raise ValueError("the header changed after the table started streaming")
        live = self._live
        if live is not None:
            if live.name != info.filename:
                raise ValueError("this table is being sent as another member")
            live.expect_end()  # before the sink can end: its end is then the table's
        self._feed.put(None, self._thread, self._raise_failure)
        self._thread.join()
        self._raise_failure()
        if live is None:
            self._copy_member(archive, info, self._width)
            return
        deflated = self._gzip_path.stat().st_size - 18  # less the gzip header and trailer
        live.finish(lambda modulo: self._full_length(self._width, modulo, deflated))
        self._live = None

    def close(self) -> None:
        # The follower stops first: the sink, told to stop, ends with part of the table.
        if self._live is not None:
            self._live.close()
            self._live = None
        self._feed.stop()  # a sink still waiting for batches ends at once
        self._thread.join()
        super().close()


def _head(header: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {f"c{i}": [name] for i, name in enumerate(header)},
        schema={f"c{i}": pl.String for i in range(len(header))},
    )


def _sink(source: pl.LazyFrame, path: Path) -> None:
    source.sink_csv(
        path,
        compression="gzip",
        compression_level=GZIP_LEVEL,
        include_header=False,
        separator=",",
        line_terminator="\n",
        quote_char='"',
        quote_style="necessary",
        null_value="",
        maintain_order=True,
    )


def _queued_source(
    head: pl.DataFrame, next_batch: Callable[[], pl.DataFrame | None]
) -> pl.LazyFrame:
    """The header row, then batches as `next_batch` hands them over (None ends them)."""

    def slices(
        with_columns: list[str] | None, predicate: Any, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        yield head if with_columns is None else head.select(with_columns)
        while (frame := next_batch()) is not None:
            if with_columns is not None:
                frame = frame.select(with_columns)
            for start in range(0, frame.height, _SLICE_ROWS):
                yield frame.slice(start, _SLICE_ROWS)

    return register_io_source(io_source=slices, schema=head.schema)


def _source(head: pl.DataFrame, files: list[Path]) -> pl.LazyFrame:
    """The header row, then every kept batch, handed to Polars a slice at a time.

    Scanning the files (`scan_ipc`) let the streaming engine read ahead and map
    them whole: peak memory grew with the table (1.1 GB at a million
    submissions). Pulled from this generator, it stays flat.
    """

    def slices(
        with_columns: list[str] | None, predicate: Any, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        yield head if with_columns is None else head.select(with_columns)
        for path in files:
            frame = pl.read_ipc(path)
            if with_columns is not None:
                frame = frame.select(with_columns)
            for start in range(0, frame.height, _SLICE_ROWS):
                yield frame.slice(start, _SLICE_ROWS)

    return register_io_source(io_source=slices, schema=head.schema)


def _positional(frame: pl.DataFrame) -> pl.DataFrame:
    """Columns named by place: header names may repeat (Central's groupPaths=false)."""
    return frame.select(
        pl.col(name).cast(pl.String).alias(f"c{i}") for i, name in enumerate(frame.columns)
    )


def _full_length(modulo: int, estimate: int) -> int:
    """The length that matches the trailer (mod 4 GiB) and lies nearest the estimate."""
    wraps = round((estimate - modulo) / (1 << 32))
    return modulo + max(wraps, 0) * (1 << 32)
