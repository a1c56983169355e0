"""Temporary storage for a table's raw frames while an export reads its batches.

Zip members (and XLSX sheets) are written one after another, but every batch
of submissions yields rows for every table at once. Each table's frames are
appended to an anonymous temporary file as Arrow IPC segments and read back one
segment at a time, so memory holds one batch whatever the export's size.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import polars as pl

__all__ = ["FrameSpool"]


class FrameSpool:
    def __init__(self, directory: str | Path | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed in close())
        self._segments: list[tuple[int, int]] = []
        self._end = 0
        self.rows = 0

    def append(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="lz4")
        data = buffer.getvalue()
        self._file.seek(self._end)
        self._file.write(data)
        self._segments.append((self._end, len(data)))
        self._end += len(data)
        self.rows += frame.height

    def frames(self) -> Iterator[pl.DataFrame]:
        for offset, length in self._segments:
            self._file.seek(offset)
            yield pl.read_ipc(io.BytesIO(self._file.read(length)))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FrameSpool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
