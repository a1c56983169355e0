"""Rendering one batch while the next is read.

An export reads its batches from the analysis copy (Parquet, SQLite) on the
event loop's thread and renders them on the writer's; done one after the
other, one of the two cores idles. Here the writer hands each batch to a
worker thread that renders and writes it while the writer reads the next one.
Polars releases the GIL while it works, so the two overlap.

At most one batch waits between them, so memory stays that of three batches.
Neither side can wait for ever on the other: the worker's first error is
raised in the writer at its next hand-over, and an error while reading stops
the worker once it has finished the batch in hand.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = ["write_overlapped"]

T = TypeVar("T")

# How often a waiting side looks whether the other has finished or failed.
_POLL_SECONDS = 0.05


def write_overlapped(items: Iterable[T], write: Callable[[T], None]) -> None:
    """Call `write` on each item, in order, in a worker thread; return when all are written."""
    handoff: queue.Queue[T] = queue.Queue(maxsize=1)
    no_more = threading.Event()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            while True:
                try:
                    item = handoff.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    # Nothing is put after no_more is set, so an empty queue then is final.
                    if no_more.is_set() and handoff.empty():
                        return
                    continue
                write(item)
        except BaseException as error:  # handed to the writer's thread, which raises it
            failures.append(error)

    worker = threading.Thread(target=work, name="export-render", daemon=True)
    worker.start()
    try:
        for item in items:
            if not _hand_over(handoff, item, failures):
                break
    except BaseException:
        _drop_waiting(handoff)  # the export has failed: nothing more is written
        raise
    finally:
        no_more.set()
        worker.join()
    if failures:
        raise failures[0]


def _hand_over(handoff: queue.Queue[T], item: T, failures: list[BaseException]) -> bool:
    while not failures:
        try:
            handoff.put(item, timeout=_POLL_SECONDS)
        except queue.Full:
            continue
        return True
    return False


def _drop_waiting(handoff: queue.Queue[T]) -> None:
    with contextlib.suppress(queue.Empty):
        handoff.get_nowait()
