"""What every request handler and CLI command works with: settings, database, blobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.db.engine import create_engine, create_session_factory
from server.db.migrate import migrate
from server.settings import Settings
from storage import BlobStore, open_blob_store


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self.sessions() as db, db.begin():
            yield db


async def open_runtime(settings: Settings, *, run_migrations: bool = True) -> Runtime:
    settings = settings.with_secret()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    if run_migrations:
        await migrate(engine)
    blobs = open_blob_store(
        settings.storage_url,
        data_dir=settings.data_dir,
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
    )
    return Runtime(settings, engine, create_session_factory(engine), blobs)


async def close_runtime(runtime: Runtime) -> None:
    await runtime.blobs.close()
    await runtime.engine.dispose()
