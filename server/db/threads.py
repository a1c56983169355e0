"""SQLite units of work run whole on threads of their own, one hop from the event loop.

Through aiosqlite every cursor call is a round trip between the event loop and
the driver's thread (four per statement: cursor, execute, fetch, close), and
each hop waits for the loop to come back from whatever else it is serving;
while SQLite's single writer is held, that wait holds up every other writer.
An ingest is about thirty such hops. Here the same statements run
synchronously on plain ``sqlite3`` connections: writes on one writer thread
(SQLite has one writer anyway), reads on a few reader threads (WAL readers run
beside the writer), each unit of work one hop in and one hop out.

PostgreSQL has no single writer and asyncpg no per-cursor hops; its runtime
runs the same functions through ``run_sync`` instead (server.runtime).
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

READER_THREADS = 2


class SqliteThreads:
    def __init__(self, async_url: str) -> None:
        url = make_url(async_url).set(drivername="sqlite+pysqlite")
        self.engine: Engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=READER_THREADS + 1,
        )
        event.listen(self.engine, "connect", sqlite_pragmas)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(
            max_workers=READER_THREADS, thread_name_prefix="sqlite-reader"
        )

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction on the writer thread: commit, or roll back on error."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._transaction, work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on a reader thread; it must not write."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._reading, work)

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            return work(connection)

    def _reading(self, work: Callable[[Connection], T]) -> T:
        with self.engine.connect() as connection:
            try:
                return work(connection)
            finally:
                connection.rollback()

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.engine.dispose()
