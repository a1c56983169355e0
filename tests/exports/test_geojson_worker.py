"""Batches rendered in a worker thread: all, in order; a failure on either side ends it."""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Callable, Iterator

from exports.geojson import write_geojson
from exports.geojson_worker import write_overlapped
from tests.exports.survey import SCHEMA, farm_records


class BrokenError(Exception):
    pass


def finishes(run: Callable[[], object]) -> BaseException | None:
    """Run in a thread; the error it raised. A hang fails the test instead of the run."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "write_overlapped hung"
    assert not any(t.name == "export-render" for t in threading.enumerate())
    return raised[0] if raised else None


def test_every_item_is_written_in_order_by_another_thread() -> None:
    written: list[int] = []
    threads: set[str] = set()

    def write(item: int) -> None:
        threads.add(threading.current_thread().name)
        written.append(item)

    assert finishes(lambda: write_overlapped(range(1000), write)) is None

    assert written == list(range(1000))
    assert threads == {"export-render"}


def test_a_failure_in_the_worker_is_raised_and_reading_stops() -> None:
    read = itertools.count()
    written: list[int] = []

    def write(item: int) -> None:
        if item == 3:
            raise BrokenError(item)
        written.append(item)

    error = finishes(lambda: write_overlapped(read, write))

    assert isinstance(error, BrokenError)
    assert written == [0, 1, 2]
    # Reading stopped within a hand-over or two of the failure (the items never end).
    assert next(read) <= 8


def test_a_failure_while_reading_is_raised_and_stops_the_worker() -> None:
    written: list[int] = []

    def items() -> Iterator[int]:
        yield from range(5)
        raise BrokenError("reading")

    error = finishes(lambda: write_overlapped(items(), written.append))

    assert isinstance(error, BrokenError)
    assert written == list(range(len(written)))
    assert len(written) <= 5


def test_an_output_that_fails_fails_the_export() -> None:
    class FailingSink(io.BytesIO):
        def write(self, data: object, /) -> int:
            if self.tell() > 0:
                raise OSError("disk full")
            return super().write(data)  # type: ignore[arg-type]

    records = farm_records()
    batches = [[record] for record in records] * 20

    error = finishes(lambda: write_geojson(SCHEMA, iter(batches), FailingSink()))

    assert isinstance(error, OSError)
