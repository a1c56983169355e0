"""Rows of the ``blobs`` table: one per distinct content, shared by everything."""

from __future__ import annotations

from sqlalchemy import Connection, DateTime, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.services.audit import now
from storage import BlobInfo

# Written as SQL because SQLAlchemy does not cache compiled ON CONFLICT statements;
# this spelling is valid on both SQLite and PostgreSQL.
_INSERT = text(
    "INSERT INTO blobs (sha256, md5, size, content_type, created_at)"
    " VALUES (:sha256, :md5, :size, :content_type, :created_at)"
    " ON CONFLICT (sha256) DO NOTHING"
).bindparams(bindparam("created_at", type_=DateTime(timezone=True)))


async def store_blob(db: AsyncSession, info: BlobInfo, content_type: str) -> None:
    """Record a blob already written to the store; concurrent identical uploads are fine."""
    connection = await db.connection()
    await connection.execute(_INSERT, _values(info, content_type))


def store_blob_on(connection: Connection, info: BlobInfo, content_type: str) -> None:
    """`store_blob` for synchronous units of work (Runtime.write)."""
    connection.execute(_INSERT, _values(info, content_type))


def _values(info: BlobInfo, content_type: str) -> dict[str, object]:
    return {
        "sha256": info.sha256,
        "md5": info.md5,
        "size": info.size,
        "content_type": content_type,
        "created_at": now(),
    }
