"""SQLite write transactions run whole in one thread, one hop from the event loop.

Through aiosqlite every cursor call is a round trip between the event loop and
the driver's thread (four per statement: cursor, execute, fetch, close), and
while SQLite's single writer is held each of those hops waits for the loop to
come back from whatever else it is serving. The ingest write phase is about
twenty such hops. Here the same statements run synchronously on a plain
``sqlite3`` connection in a dedicated thread: one hop in, one hop out, and the
writer is held only for the time SQLite itself needs.

PostgreSQL has no single writer; its runtime runs the same functions through
``AsyncConnection.run_sync`` instead (server.runtime.Runtime.write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from server.db.engine import sqlite_pragmas

T = TypeVar("T")


class SqliteWriter:
    def __init__(self, async_url: str) -> None:
        url = make_url(async_url).set(drivername="sqlite+pysqlite")
        self.engine: Engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}
        )
        event.listen(self.engine, "connect", sqlite_pragmas)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction on the writer thread: commit, or roll back on error."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, work)

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            return work(connection)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self.engine.dispose()
