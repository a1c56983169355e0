"""The root member sent while Polars writes it (exports.livemember): bytes, failure, leaving."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from exports.csvmember import StreamedTable
from exports.csvzip import write_csv_zip
from exports.gzipsink import FrameFeed
from exports.records import ExportRecord
from tests.exports.test_csvzip import SCHEMA, synthetic_batches

# Enough text that Polars writes deflate blocks to its file long before the end.
ROWS = 20_000
BATCHES = 10
_WAIT_SECONDS = 60  # an upper bound for a loaded machine, not a measurement


class Recorder:
    """An unseekable output that keeps what it was given, written from any thread."""

    def __init__(self, fail_after: int | None = None) -> None:
        self._lock = threading.Lock()
        self._data = bytearray()
        self._fail_after = fail_after

    def write(self, data: bytes, /) -> int:
        with self._lock:
            if self._fail_after is not None and len(self._data) + len(data) > self._fail_after:
                raise ClientGoneError
            self._data += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def data(self) -> bytes:
        with self._lock:
            return bytes(self._data)


class ClientGoneError(Exception):
    pass


def batch(number: int) -> pl.DataFrame:
    start = number * ROWS
    return pl.DataFrame(
        {
            "n": [f"{n:x}-{n * 2654435761 % 4294967296:08x}" for n in range(start, start + ROWS)],
            "m": ['x,"y"' if n % 5 else None for n in range(start, start + ROWS)],
        }
    )


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _wait_until_longer_than(out: Recorder, size: int) -> bool:
    deadline = time.monotonic() + _WAIT_SECONDS
    while len(out.data) <= size and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(out.data) > size


def _writers_alive() -> list[str]:
    names = ("csv-member", "csv-live-member")
    return [thread.name for thread in threading.enumerate() if thread.name in names]


def test_a_live_member_holds_the_bytes_of_one_copied_at_the_end(tmp_path: Path) -> None:
    outputs = []
    for live in (False, True):
        out = Recorder()
        table = StreamedTable(["n", "m"], tmp_path)
        with zipfile.ZipFile(out, "w") as archive, table:
            info = zipfile.ZipInfo("t.csv")
            if live:
                table.send_live(archive, zipfile.ZipInfo("t.csv"))
            for number in range(3):
                table.append(batch(number))
            table.write_member(archive, info, ["n", "m"])
            archive.writestr("after.txt", b"next member")
        outputs.append(out.data)

    copied, live_copy = (_members(data) for data in outputs)
    assert live_copy == copied
    assert live_copy["t.csv"].startswith(b'n,m\n0-00000000,\n1-9e3779b1,"x,""y"""\n')
    assert live_copy["t.csv"].count(b"\n") == 3 * ROWS + 1
    with zipfile.ZipFile(io.BytesIO(outputs[1])) as archive:
        assert archive.getinfo("t.csv").flag_bits & 0x08  # CRC and sizes after the data
    assert list(tmp_path.iterdir()) == []


def test_the_member_leaves_before_its_last_rows_and_a_pause_is_not_its_end(
    tmp_path: Path,
) -> None:
    out = Recorder()
    table = StreamedTable(["n", "m"], tmp_path)
    with zipfile.ZipFile(out, "w") as archive, table:
        table.send_live(archive, zipfile.ZipInfo("t.csv"))
        header = len(out.data)
        assert out.data.startswith(b"PK\x03\x04")  # the local header left at once
        for number in range(BATCHES - 1):
            table.append(batch(number))
        # Deflated rows arrive while the producer waits with the last batch.
        assert _wait_until_longer_than(out, header)
        table.append(batch(BATCHES - 1))
        table.write_member(archive, zipfile.ZipInfo("t.csv"), ["n", "m"])

    text = _members(out.data)["t.csv"]
    assert text.count(b"\n") == BATCHES * ROWS + 1
    assert text.endswith(batch(BATCHES - 1).item(-1, "n").encode() + b',"x,""y"""\n')


def test_a_sink_that_fails_fails_the_export_without_a_central_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed = 0
    next_batch = FrameFeed.take

    def failing(self: FrameFeed) -> pl.DataFrame | None:
        nonlocal handed
        handed += 1
        if handed > 20:
            raise OSError("No space left on device")
        return next_batch(self)

    monkeypatch.setattr(FrameFeed, "take", failing)
    out = Recorder()

    with pytest.raises(RuntimeError, match="rendering a CSV member failed") as raised:
        write_csv_zip(SCHEMA, synthetic_batches(100_000, 2_000), out, spool_dir=tmp_path)

    assert "No space left on device" in repr(raised.value.__cause__)
    assert out.data.startswith(b"PK\x03\x04")
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(out.data))
    assert _writers_alive() == []
    assert list(tmp_path.iterdir()) == []


def test_a_client_that_leaves_stops_the_sink_and_removes_its_files(tmp_path: Path) -> None:
    given = 0

    def batches() -> Iterator[list[ExportRecord]]:
        nonlocal given
        for records in synthetic_batches(500_000, 2_000):
            given += 1
            yield records

    out = Recorder(fail_after=64 * 1024)

    with pytest.raises(ClientGoneError):  # as raised by the output: not an export that failed
        write_csv_zip(SCHEMA, batches(), out, spool_dir=tmp_path)

    assert given < 250  # the export stopped instead of reading every batch
    assert _writers_alive() == []
    assert list(tmp_path.iterdir()) == []
