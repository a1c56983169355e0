"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # No rollback when a connection goes back to the pool: sessions always end
        # their transaction themselves (commit, or rollback on error), and on
        # SQLite the extra round trip to the driver's thread costs ~5 % of ingest.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None)

        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10)
    ping_idle_connections(engine)
    return engine


# A connection back from the pool sooner than this is used without a ping.
IDLE_BEFORE_PING_SECONDS = 5.0


def ping_idle_connections(
    engine: AsyncEngine, idle_seconds: float = IDLE_BEFORE_PING_SECONDS
) -> None:
    """Ping a pooled connection before use only when it sat idle in the pool.

    `pool_pre_ping` pings on every checkout, and on asyncpg a ping is three round
    trips (BEGIN, an empty query, ROLLBACK): nine of the twenty-one round trips of
    a Collect submission were pings. A connection used a moment ago is as good
    as a ping; one that waited longer (the database may have restarted meanwhile)
    is pinged, and replaced by a fresh one if the ping fails.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def remember_idle_since(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool discards this connection and checks out another (or a new one).
            raise exc.DisconnectionError(str(error)) from error


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Settings of every SQLite connection (aiosqlite's and the writer thread's)."""
    # WAL lets readers run beside the single writer; NORMAL sync is durable across
    # application crashes, which is what an embedded server needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
