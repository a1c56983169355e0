"""A zip member copied from a gzip file while Polars is still writing it.

A table's member is one Polars gzip sink (exports.csvmember). Copied once the
sink had finished, the first byte of a CSV zip from the analysis copy left
after every table was written (about 13 s at a million submissions): long
enough for proxies to give up and for people to think the download hung.

Polars writes the gzip file in order and never rewrites a byte, so its deflate
stream can be copied while it grows. The member's local header goes out first
with the data-descriptor flag (the output is never sought, so zipfile sets it),
and the CRC-32 and length, known only from the gzip trailer, follow the data.
The last 8 bytes of the file are held back until the sink has returned: only
then are they known to be the trailer and not deflate data still being written.
A pause in writing is never taken for the end.

One thread follows the file and writes to the archive; the producer keeps
feeding the sink and touches the archive again only after `finish` (or `close`,
when the export failed or the client went away).
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["GZIP_HEADER", "LiveMember", "check_gzip_header"]

# gzip, deflate, no optional fields: what Polars writes. The header is 10 bytes.
GZIP_HEADER = b"\x1f\x8b\x08\x00"
_HEADER_BYTES = 10
_TRAILER_BYTES = 8
_COPY_BYTES = 1 << 20
# How often the follower looks at the file while the sink is running.
_POLL_SECONDS = 0.05


def check_gzip_header(head: bytes) -> None:
    if len(head) < _HEADER_BYTES or head[:4] != GZIP_HEADER:
        raise ValueError("Polars wrote gzip with optional header fields; not supported")


class _AsGiven:
    """zipfile's compressor for bytes that are deflated already."""

    def compress(self, data: bytes) -> bytes:
        return bytes(data)

    def flush(self) -> bytes:
        return b""


class LiveMember:
    """The member `info` of `archive`, its deflate stream followed in `gzip_path`.

    `sink_done` is set when the sink's call has returned (whether or not it
    failed); `sink_failure` tells which. `finish` may be called only after the
    producer has handed the sink its last rows.
    """

    def __init__(
        self,
        archive: zipfile.ZipFile,
        info: zipfile.ZipInfo,
        gzip_path: Path,
        sink_done: threading.Event,
        sink_failure: Callable[[], BaseException | None],
    ) -> None:
        self._path = gzip_path
        self._sink_done = sink_done
        self._sink_failure = sink_failure
        self._stop = threading.Event()
        self._complete = threading.Event()
        self.failure: BaseException | None = None
        self._trailer: tuple[int, int] | None = None
        self.name = info.filename
        info.compress_type = zipfile.ZIP_DEFLATED
        # The length is unknown until the end: zip64 headers keep >4 GiB members valid.
        self._member = archive.open(info, "w", force_zip64=True)
        if getattr(self._member, "_compressor", None) is None or not hasattr(self._member, "_crc"):
            self._member.close()
            raise TypeError("zipfile's member writer has changed: cannot add deflated bytes")
        self._member._compressor = _AsGiven()  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._follow, name="csv-live-member", daemon=True)
        self._thread.start()

    def expect_end(self) -> None:
        """The producer has sent its last rows: the sink's end is the member's end."""
        self._complete.set()

    def finish(self, full_length: Callable[[int], int]) -> None:
        """Copy the rest once the sink has ended and close the member.

        `full_length` turns the trailer's length (modulo 4 GiB) into the text's length.
        """
        self.expect_end()
        self._thread.join()
        if self.failure is not None:
            raise self.failure
        if self._trailer is None:  # the sink failed: its error is the caller's to raise
            raise RuntimeError("the CSV member's gzip file was not finished")
        crc, length = self._trailer
        self._member._crc = crc  # type: ignore[attr-defined]
        self._member._file_size = full_length(length)  # type: ignore[attr-defined]
        self._member.close()

    def close(self) -> None:
        """Stop following (an export that failed or was abandoned) and release the archive."""
        self._stop.set()
        self._thread.join()
        # The archive is being abandoned (no central directory follows); its writer
        # must still be released, and a client that left makes writing fail.
        with contextlib.suppress(Exception):
            self._member.close()

    def _follow(self) -> None:
        try:
            opened = self._opened()
            if opened is None:
                return
            with opened:
                self._copy(opened)
        except BaseException as failure:  # handed to the producer's thread
            self.failure = failure

    def _opened(self) -> IO[bytes] | None:
        """The gzip file once the sink has created it; None if it never will be."""
        while not self._stop.is_set():
            done = self._sink_done.is_set()
            try:
                return self._path.open("rb", buffering=0)
            except FileNotFoundError:
                if done:
                    return None
            self._sink_done.wait(_POLL_SECONDS)
        return None

    def _copy(self, gzip_file: IO[bytes]) -> None:
        fd = gzip_file.fileno()
        position = _HEADER_BYTES
        checked = False
        while not self._stop.is_set():
            # Read before the size: once the sink has returned, the size is final.
            done = self._sink_done.is_set()
            size = os.fstat(fd).st_size
            if not checked and size >= _HEADER_BYTES:
                check_gzip_header(os.pread(fd, _HEADER_BYTES, 0))
                checked = True
            if done:
                if self._sink_failure() is not None or not self._complete.is_set():
                    return  # failed or stopped early: no trailer to trust
                if not checked or size < _HEADER_BYTES + _TRAILER_BYTES:
                    raise ValueError("the gzip file ended early")
                if self._copy_range(fd, position, size - _TRAILER_BYTES) < size - _TRAILER_BYTES:
                    return  # stopped while copying
                trailer = os.pread(fd, _TRAILER_BYTES, size - _TRAILER_BYTES)
                crc, length = struct.unpack("<II", trailer)
                self._trailer = (crc, length)
                return
            if checked and size - _TRAILER_BYTES > position:
                position = self._copy_range(fd, position, size - _TRAILER_BYTES)
            else:
                self._sink_done.wait(_POLL_SECONDS)

    def _copy_range(self, fd: int, start: int, end: int) -> int:
        """Bytes [start, end) of the file into the member; returns `end`."""
        while start < end and not self._stop.is_set():
            chunk = os.pread(fd, min(_COPY_BYTES, end - start), start)
            if not chunk:
                raise ValueError("the gzip file ended early")
            self._member.write(chunk)
            start += len(chunk)
        return start
