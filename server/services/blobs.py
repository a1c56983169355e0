"""Rows of the ``blobs`` table: one per distinct content, shared by everything."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Blob
from server.services.audit import now
from storage import BlobInfo


async def store_blob(db: AsyncSession, info: BlobInfo, content_type: str) -> None:
    """Record a blob already written to the store; concurrent identical uploads are fine."""
    values = {
        "sha256": info.sha256,
        "md5": info.md5,
        "size": info.size,
        "content_type": content_type,
        "created_at": now(),
    }
    insert = pg_insert if db.bind.dialect.name == "postgresql" else sqlite_insert
    await db.execute(
        insert(Blob).values(**values).on_conflict_do_nothing(index_elements=["sha256"])
    )
