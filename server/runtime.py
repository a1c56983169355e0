"""What every request handler and CLI command works with: settings, database, blobs."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.db.engine import create_engine, create_session_factory
from server.db.migrate import migrate
from server.db.threads import SqliteThreads
from server.settings import Settings
from storage import BlobStore, open_blob_store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    # SQLite has one writer at a time. Queueing transactions here, instead of
    # letting each connection sleep in SQLite's busy handler, keeps waits short
    # and fair; a PostgreSQL runtime has no lock.
    serial: asyncio.Lock | None = field(default=None)
    # SQLite only: runs `query` and `write` units of work whole on threads.
    threads: SqliteThreads | None = field(default=None)
    # PostgreSQL only: the same pool, without BEGIN and COMMIT/ROLLBACK round trips
    # (see `query` and `write`).
    autocommit: AsyncEngine | None = field(default=None)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that only reads: never waits for the SQLite writer queue.

        (SQLite readers in WAL mode see a consistent snapshot beside the writer.)
        """
        async with self.sessions() as db, db.begin():
            yield db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        if self.serial is None:
            async with self.sessions() as db, db.begin():
                yield db
            return
        async with self.serial, self.sessions() as db, db.begin():
            yield db

    async def query(self, work: Callable[[Connection], T]) -> T:
        """Run a synchronous read-only unit of work; for the hottest reads (ingest).

        `work` gets a Core connection and must do nothing but SQL: on SQLite it runs
        on a reader thread (server.db.threads). On PostgreSQL each of its statements
        runs in its own implicit transaction, without the BEGIN and ROLLBACK round
        trips: the reads of one unit of work may see different snapshots.
        """
        if self.threads is None:
            async with (self.autocommit or self.engine).connect() as connection:
                return await connection.run_sync(work)
        return await self.threads.read(work)

    async def write(self, work: Callable[[Connection], T], *, one_statement: bool = False) -> T:
        """Run a synchronous unit of work in one transaction; for the hottest writes.

        As `query`; on SQLite it runs on the writer thread, in turn with `transaction`.
        `one_statement` promises that `work` runs a single statement, which PostgreSQL
        makes atomic on its own: it is sent without BEGIN and COMMIT, one round trip
        instead of three.
        """
        if self.threads is None or self.serial is None:
            if one_statement and self.autocommit is not None:
                async with self.autocommit.connect() as connection:
                    return await connection.run_sync(work)
            async with self.engine.begin() as connection:
                return await connection.run_sync(work)
        async with self.serial:
            # Shielded: a client that goes away must not release the writer queue
            # while its transaction is still running on the thread.
            with anyio.CancelScope(shield=True):
                result = await self.threads.write(work)
        return result


async def open_runtime(settings: Settings, *, run_migrations: bool = True) -> Runtime:
    settings = settings.with_secret()
    keep_private(settings)
    engine = create_engine(settings.resolved_database_url)
    if run_migrations:
        await migrate(engine)
    blobs = open_blob_store(
        settings.storage_url,
        data_dir=settings.data_dir,
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
    )
    sqlite = engine.dialect.name == "sqlite"
    serial = asyncio.Lock() if sqlite else None
    threads = SqliteThreads(settings.resolved_database_url) if sqlite else None
    autocommit = None if sqlite else engine.execution_options(isolation_level="AUTOCOMMIT")
    return Runtime(
        settings, engine, create_session_factory(engine), blobs, serial, threads, autocommit
    )


def keep_private(settings: Settings) -> None:
    """The data folder 0700 and the SQLite files 0600, also for folders made by an
    older version: they hold returnees' personal data, tokens and the secret key.

    The SQLite file is created here, with its mode, before SQLite opens it (its
    -wal and -shm files take the database file's permissions).
    """
    data_dir = settings.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if settings.resolved_database_url.startswith("sqlite"):
        database = Path(make_url(settings.resolved_database_url).database or "")
        if database.name and database.name != ":memory:":
            os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
            for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
                if path.exists():
                    path.chmod(0o600)


async def close_runtime(runtime: Runtime) -> None:
    await runtime.blobs.close()
    if runtime.threads is not None:
        await anyio.to_thread.run_sync(runtime.threads.close)
    await runtime.engine.dispose()


def settle_heap() -> None:
    """Tune the garbage collector for a serving process, once it has started.

    A page of 1,000 OData rows or an export batch makes tens of thousands of
    short-lived dicts and lists. With CPython's defaults that started a young
    collection every few hundred of them and, every few requests, a full one
    that walked the ~200,000 long-lived objects of the app and its libraries
    (95 ms each, measured). Freezing what startup made takes those out of every
    collection, and a larger first generation collects less often. Cyclic
    garbage is still collected; plain garbage is freed by reference counting.
    No collection comes first: after start-up it found nothing to free and took
    40 ms of the half second a fresh `homeward export` spends starting (measured).
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
