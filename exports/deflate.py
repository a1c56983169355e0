"""Deflating a zip member on every core: blocks compressed side by side, joined in order.

Deflate was the largest single-threaded cost of a CSV zip (about a third of the
CPU of exporting from the analysis copy). zlib releases the GIL while it
compresses, and raw deflate streams can be joined: a block that ends with a
sync flush ends on a byte boundary with its last deflate block not marked
final, so the next block's stream can follow it directly, and an empty final
block closes the member. Each block starts without the previous one's window,
which costs a fraction of a percent of size on 1 MiB blocks.

`write_deflated` adds a member whose text another deflater (Polars' gzip,
exports.csvmember) compressed already, optionally behind a short text deflated
here (a sheet's head, known only after its rows: exports.xlsx_part). The CRC-32
of the joined text comes from the two parts' by `crc32_combine` (zlib's method;
Python's zlib does not expose it).

`parallel_member` puts such a compressor in place of the one `zipfile` chose
for a member opened for writing; zipfile still computes the CRC-32, sizes and
headers. Both replace `_ZipWriteFile._compressor` (and `write_deflated` its
`_crc` and `_file_size`), the private names of zipfile we rely on;
tests/exports/test_deflate.py pins that they still work.
"""

from __future__ import annotations

import functools
import os
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

__all__ = ["BLOCK_BYTES", "ParallelDeflate", "crc32_combine", "parallel_member", "write_deflated"]

BLOCK_BYTES = 1 << 20
# A few KB of text put in front of a deflated stream: size matters more than speed.
_HEAD_LEVEL = 6
# CRC-32's polynomial, reversed (zlib's crc32_combine).
_CRC_POLYNOMIAL = 0xEDB88320
# An empty deflate block marked final (fixed Huffman codes): what zlib writes at
# the end of a stream whose data was already flushed.
_FINAL_BLOCK = b"\x03\x00"


@functools.cache
def _executor() -> ThreadPoolExecutor:
    # One pool per process, as wide as the machine: blocks from every export share it.
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="deflate")


def _deflate(level: int, block: bytes) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)


class ParallelDeflate:
    """A compressor with zlib's `compress`/`flush` interface, deflating blocks in a pool.

    At most two blocks per worker are in flight, so memory stays a few MiB
    whatever the member's size.
    """

    def __init__(self, level: int, block_bytes: int = BLOCK_BYTES) -> None:
        self._level = level
        self._block_bytes = block_bytes
        self._buffer = bytearray()
        self._pending: deque[Future[bytes]] = deque()
        self._limit = 2 * (os.cpu_count() or 2)

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        self._buffer += data
        size = self._block_bytes
        while len(self._buffer) >= size:
            self._submit(bytes(self._buffer[:size]))
            del self._buffer[:size]
        return self._collect(wait=False)

    def flush(self) -> bytes:
        if self._buffer:
            self._submit(bytes(self._buffer))
            self._buffer.clear()
        return self._collect(wait=True) + _FINAL_BLOCK

    def _submit(self, block: bytes) -> None:
        self._pending.append(_executor().submit(_deflate, self._level, block))

    def _collect(self, *, wait: bool) -> bytes:
        """Finished blocks in order; waits for the oldest while too many are in flight."""
        done = []
        while self._pending and (
            wait or len(self._pending) > self._limit or self._pending[0].done()
        ):
            done.append(self._pending.popleft().result())
        return b"".join(done)


def parallel_member(member: IO[bytes], level: int) -> IO[bytes]:
    """`member` (a deflated zip member just opened for writing) deflating in parallel."""
    if getattr(member, "_compressor", None) is None:
        raise TypeError("not a deflated zip member opened for writing")
    member._compressor = ParallelDeflate(level)  # type: ignore[attr-defined]
    return member


class _AsGiven:
    """A "compressor" for bytes that are deflated already."""

    def compress(self, data: bytes) -> bytes:
        return bytes(data)

    def flush(self) -> bytes:
        return b""


def write_deflated(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    stream: Iterable[bytes],
    crc: int,
    length: int,
    before: bytes = b"",
) -> None:
    """Add a member from a finished raw deflate `stream` of `length` bytes of text.

    `before` is text that goes ahead of the stream's: deflated here and ended
    with a sync flush (on a byte boundary, its last block not final), so the
    stream follows it directly.

    zipfile writes the headers; the CRC-32 and length it would have computed
    from the text are set before the member is closed (`_crc`, `_file_size`).
    """
    if before:
        crc = crc32_combine(zlib.crc32(before), crc, length)
        length += len(before)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = length  # zipfile picks zip64 from it
    with archive.open(info, "w") as member:
        if getattr(member, "_compressor", None) is None or not hasattr(member, "_crc"):
            raise TypeError("zipfile's member writer has changed: cannot add deflated bytes")
        member._compressor = _AsGiven()  # type: ignore[attr-defined]
        if before:
            member.write(_deflate(_HEAD_LEVEL, before))
        for chunk in stream:
            member.write(chunk)
        member._crc = crc
        member._file_size = length  # type: ignore[attr-defined]


def crc32_combine(first: int, second: int, second_length: int) -> int:
    """The CRC-32 of two texts joined, from each one's CRC-32 and the second's length.

    zlib's crc32_combine: appending n zero bytes to a text changes its CRC by a
    linear map over GF(2); the map of 2^k zero bytes is found by squaring, so
    this takes about log2(n) steps of 32x32 bits whatever the length.
    """
    if second_length <= 0:
        return first
    # The map of one zero bit, then of two and four, by squaring.
    odd = [_CRC_POLYNOMIAL] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)  # the maps of 1, 2, 4, ... zero bytes, turn about
        if second_length & 1:
            first = _gf2_times(even, first)
        second_length >>= 1
        if not second_length:
            break
        odd = _gf2_square(even)
        if second_length & 1:
            first = _gf2_times(odd, first)
        second_length >>= 1
        if not second_length:
            break
    return first ^ second


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    row = 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, column) for column in matrix]
