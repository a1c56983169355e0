"""BlobStore on a local folder: the embedded default, no services needed.

Layout: `root/ab/cd/<sha256>`. Two levels of fan-out keep directories small
(65,536 leaf folders) for millions of blobs. New blobs are written to
`root/tmp/` and renamed into place, so a reader never sees a partial blob and a
crash leaves at most a stray temp file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import IO

import anyio
import anyio.to_thread

from storage.blobs import (
    CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    check_object_name,
    check_sha256,
    hash_bytes,
)


class FilesystemBlobStore:
    """Blobs as files under `root`; all blocking I/O runs in worker threads."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._tmp = self.root / "tmp"

    def path_for(self, sha256: str) -> Path:
        """Where a blob lives (whether or not it exists)."""
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put_file(self, path: Path) -> BlobInfo:
        return await anyio.to_thread.run_sync(self._put_file, Path(path))

    async def adopt_file(self, path: Path, info: BlobInfo) -> BlobInfo:
        return await anyio.to_thread.run_sync(self._adopt_file, Path(path), info)

    async def put_bytes(self, data: bytes) -> BlobInfo:
        return await anyio.to_thread.run_sync(self._put_bytes, data)

    async def open(
        self, sha256: str, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        path = self.path_for(sha256)
        try:
            source = await anyio.open_file(path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        async with source:
            while chunk := await source.read(chunk_size):
                yield chunk

    async def read_bytes(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        try:
            return await anyio.Path(path).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

    async def exists(self, sha256: str) -> bool:
        return await anyio.Path(self.path_for(sha256)).is_file()

    async def delete(self, sha256: str) -> None:
        await anyio.Path(self.path_for(sha256)).unlink(missing_ok=True)

    async def presigned_url(
        self, sha256: str, *, filename: str, content_type: str, expires_seconds: int = 300
    ) -> str | None:
        check_sha256(sha256)
        return None  # the app streams local files itself

    async def close(self) -> None:
        return None

    def object_location(self, name: str) -> str:
        return str(self.root / check_object_name(name))

    async def put_object(self, name: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._put_object, self.root / check_object_name(name), data)

    async def put_object_file(self, name: str, path: Path) -> None:
        await anyio.to_thread.run_sync(
            self._put_object_file, self.root / check_object_name(name), Path(path)
        )

    async def open_object(
        self, name: str, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        try:
            source = await anyio.open_file(self.root / check_object_name(name), "rb")
        except FileNotFoundError:
            raise BlobNotFound(name) from None
        async with source:
            while chunk := await source.read(chunk_size):
                yield chunk

    async def read_object(self, name: str) -> bytes:
        try:
            return await anyio.Path(self.root / check_object_name(name)).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(name) from None

    async def delete_object(self, name: str) -> None:
        await anyio.Path(self.root / check_object_name(name)).unlink(missing_ok=True)

    def _put_object_file(self, target: Path, path: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, prefix=".", delete=False) as staged,
            path.open("rb") as source,
        ):
            shutil.copyfileobj(source, staged, CHUNK_SIZE * 16)
        os.replace(staged.name, target)

    def _put_object(self, target: Path, data: bytes) -> None:
        # Written beside the target and renamed over it: a reader sees the old
        # object or the new one, never half of one.
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".", delete=False) as staged:
            staged.write(data)
        os.replace(staged.name, target)

    # Blocking halves, run in worker threads.

    def _put_file(self, path: Path) -> BlobInfo:
        # Hash while copying, in one pass: the stored bytes are exactly the
        # bytes that were hashed, even if the source changes under us.
        sha256 = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        with path.open("rb") as source, _PendingBlob(self._tmp) as pending:
            while chunk := source.read(CHUNK_SIZE):
                sha256.update(chunk)
                md5.update(chunk)
                size += len(chunk)
                pending.file.write(chunk)
            info = BlobInfo(sha256=sha256.hexdigest(), md5=md5.hexdigest(), size=size)
            pending.commit(self.path_for(info.sha256))
        return info

    def _adopt_file(self, path: Path, info: BlobInfo) -> BlobInfo:
        target = self.path_for(info.sha256)
        if target.is_file():
            path.unlink(missing_ok=True)  # already stored: same name, same bytes
            return info
        with path.open("rb+") as source:
            os.fchmod(source.fileno(), 0o600)  # the store's files are its user's only
            os.fsync(source.fileno())
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            return self._put_file(path)  # another filesystem: copy instead
        _fsync_dir(target.parent)
        return info

    def _put_bytes(self, data: bytes) -> BlobInfo:
        info = hash_bytes(data)
        target = self.path_for(info.sha256)
        if not target.is_file():
            with _PendingBlob(self._tmp) as pending:
                pending.file.write(data)
                pending.commit(target)
        return info


class _PendingBlob:
    """A temp file in root/tmp, renamed into place by `commit` or removed on exit.

    root/tmp is on the same filesystem as the blobs, so the rename is atomic.
    """

    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.file: IO[bytes] = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in __exit__
            dir=tmp_dir, prefix="put-", delete=False
        )
        self._committed = False

    def commit(self, target: Path) -> None:
        if target.is_file():
            return  # already stored: same name, same bytes
        self.file.flush()
        os.fsync(self.file.fileno())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.file.name, target)
        self._committed = True
        _fsync_dir(target.parent)

    def __enter__(self) -> _PendingBlob:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.file.close()
        if not self._committed:
            Path(self.file.name).unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable, not only the file's content.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
