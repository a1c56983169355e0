"""What a Polars gzip sink on a thread of its own needs on both sides: the frames
handed to it, and the file it leaves.

The CSV zip's tables (exports.csvmember) and the workbook's sheets
(exports.xlsx_part) are each written by a Polars sink that pulls frames while
the export's thread is still reading batches. `FrameFeed` is that hand-over: a
short queue, so memory holds a few frames, where neither side can wait for
ever on the other. The sink's gzip file is then copied into a zip member as
it is: `gzip_frame` finds its deflate stream and `gzip_chunks` reads it.
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Callable, Iterator
from typing import IO

import polars as pl

from exports.livemember import check_gzip_header

__all__ = ["FrameFeed", "gzip_chunks", "gzip_frame"]

_COPY_BYTES = 1 << 20
# How often a waiting side looks whether the other has stopped or failed.
_POLL_SECONDS = 0.1


class FrameFeed:
    """Frames for a sink; None after the last one. `stop` ends a sink still waiting."""

    def __init__(self, frames: int, writer: str) -> None:
        self._queue: queue.Queue[pl.DataFrame | None] = queue.Queue(frames)
        self._stopping = threading.Event()
        self._writer = writer

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()

    def take(self) -> pl.DataFrame | None:
        """The sink's side: the next frame, or None at the end or once stopped."""
        while not self._stopping.is_set():
            try:
                return self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    def put(
        self,
        item: pl.DataFrame | None,
        sink: threading.Thread,
        raise_failure: Callable[[], None],
    ) -> None:
        """The export's side: wait for room, raising the sink's failure if it has one."""
        while True:
            raise_failure()
            if not sink.is_alive():
                raise RuntimeError(f"the {self._writer}'s writer stopped early")
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue


def gzip_frame(gzip_file: IO[bytes]) -> tuple[int, int, int, int]:
    """(start, end) of the deflate stream in the gzip file, its CRC-32 and length mod 4 GiB."""
    check_gzip_header(gzip_file.read(10))
    end = gzip_file.seek(-8, 2)
    crc, length = struct.unpack("<II", gzip_file.read(8))
    return 10, end, crc, length


def gzip_chunks(gzip_file: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    gzip_file.seek(start)
    left = end - start
    while left > 0:
        chunk = gzip_file.read(min(_COPY_BYTES, left))
        if not chunk:
            raise ValueError("the gzip file ended early")
        left -= len(chunk)
        yield chunk
