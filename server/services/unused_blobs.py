"""Files no row points at any more: their blob rows dropped, then the bytes deleted.

Purge, retention and erasure unlink files from rows and hand the candidates
here. Blobs are shared by hash (the same photo sent twice, or to two
projects, is stored once), so a file goes only when no submission attachment,
form attachment or uploaded XLSForm still refers to it. Rows go first, in
their own transaction; a file is deleted afterwards only if its row has not
come back (the same bytes uploaded again meanwhile), so a crash leaves at most
an unused file, never a row without its file.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Blob, FormAttachment, FormDef, SubmissionAttachment
from server.runtime import Runtime

__all__ = ["delete_unused_files", "drop_unused_blob_rows", "remove_unused_files"]


async def drop_unused_blob_rows(db: AsyncSession, candidates: Iterable[str]) -> set[str]:
    """Blob rows among ``candidates`` that no row points at any more; deleted, and returned."""
    unused: set[str] = set()
    for sha256 in sorted(set(candidates)):
        used = select(
            exists().where(SubmissionAttachment.blob_sha256 == sha256)
            | exists().where(FormAttachment.blob_sha256 == sha256)
            | exists().where(FormDef.xlsx_blob == sha256)
        )
        if not await db.scalar(used):
            await db.execute(delete(Blob).where(Blob.sha256 == sha256))
            unused.add(sha256)
    return unused


async def delete_unused_files(rt: Runtime, unused: Iterable[str]) -> int:
    """Delete the bytes of blobs whose rows were dropped (and did not come back); how many."""
    removed = 0
    for sha256 in sorted(set(unused)):
        async with rt.read() as db:
            if await db.get(Blob, sha256) is not None:
                continue  # the same bytes arrived again since
        await rt.blobs.delete(sha256)
        removed += 1
    return removed


async def remove_unused_files(rt: Runtime, candidates: Iterable[str]) -> int:
    """Both steps for files unlinked by transactions that have committed."""
    candidates = set(candidates)
    if not candidates:
        return 0
    async with rt.transaction() as db:
        unused = await drop_unused_blob_rows(db, candidates)
    return await delete_unused_files(rt, unused)
