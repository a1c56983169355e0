"""How many exports may write at once, and the threads they write on.

An export's writer (zipfile, Polars) is synchronous and runs on a thread for
the whole download, pulling pages and media chunks from the event loop. On
anyio's default thread limiter (40 tokens, shared with every `to_thread` call
of the process: reading a file, hashing an upload, S3 calls) each running
export held one token for its whole run while every media file it read needed
another, so 40 exports with media deadlocked the process and fewer starved
ingest and sign-in. Exports therefore write on a limiter of their own, and
the number of exports running at once is capped by the same count: an export
that finds every slot taken is refused before its first byte (429 with
Retry-After) instead of queueing behind a thread it may never get.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field

import anyio

from server import problems

__all__ = ["RETRY_AFTER_SECONDS", "ExportSlot", "ExportSlots", "export_slots"]

# What a refused client is told to wait: long enough for a typical export to end.
RETRY_AFTER_SECONDS = 30


@dataclass(slots=True)
class ExportSlot:
    """One running export's place; released exactly once, whatever ends the export."""

    slots: ExportSlots
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.slots.running -= 1


@dataclass(slots=True)
class ExportSlots:
    size: int
    running: int = 0
    limiter: anyio.CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("at least one export must be allowed to run")
        # One thread per running export, never borrowed from the default limiter.
        self.limiter = anyio.CapacityLimiter(self.size)

    def claim(self) -> ExportSlot:
        """A slot now, or a 429 problem when `size` exports are already running."""
        if self.running >= self.size:
            raise problems.too_many_exports(self.size, RETRY_AFTER_SECONDS)
        self.running += 1
        return ExportSlot(self)


# Per event loop: a limiter belongs to the loop it was made on, and tests run
# several loops (and apps) in one process.
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ExportSlots] = (
    weakref.WeakKeyDictionary()
)


def export_slots(size: int) -> ExportSlots:
    """This event loop's export slots, made with `size` places on first use."""
    loop = asyncio.get_running_loop()
    slots = _by_loop.get(loop)
    if slots is None:
        slots = _by_loop[loop] = ExportSlots(size)
    return slots
