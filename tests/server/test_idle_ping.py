"""PostgreSQL connections are pinged before use only after sitting idle in the pool."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.db.engine import ping_idle_connections
from server.runtime import Runtime


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid = await connection.scalar(text("SELECT pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


async def kill_backend(runtime: Runtime, pid: int) -> None:
    """What a database restart or a dropped connection does to a pooled connection."""
    async with runtime.engine.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(100):
            alive = await connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            if not alive:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} did not stop")


def one_connection_engine(runtime: Runtime, idle_seconds: float) -> AsyncEngine:
    engine = create_async_engine(runtime.engine.url, pool_size=1, max_overflow=0)
    ping_idle_connections(engine, idle_seconds)
    return engine


@pytest.mark.postgres_only  # SQLite connections are files, with no server to lose
async def test_connection_lost_while_idle_is_replaced_before_use(runtime: Runtime) -> None:
    engine = one_connection_engine(runtime, idle_seconds=0.0)
    try:
        lost = await backend_pid(engine)
        await kill_backend(runtime, lost)
        assert await backend_pid(engine) != lost
    finally:
        await engine.dispose()


@pytest.mark.postgres_only  # SQLite connections are files, with no server to lose
async def test_connection_back_from_the_pool_a_moment_ago_is_not_pinged(
    runtime: Runtime,
) -> None:
    # The trade-off: no ping round trips under load. A connection that dies within
    # the idle window fails its next statement, and the pool then replaces it.
    engine = one_connection_engine(runtime, idle_seconds=3600.0)
    try:
        lost = await backend_pid(engine)
        await kill_backend(runtime, lost)
        with pytest.raises(DBAPIError):
            await backend_pid(engine)
        assert await backend_pid(engine) != lost
    finally:
        await engine.dispose()
