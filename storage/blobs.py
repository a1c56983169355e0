"""The BlobStore contract shared by every storage backend.

Blobs are named by the sha256 of their content. The same bytes always get the
same name, so storing twice is harmless and a blob never changes once written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Protocol

import msgspec

CHUNK_SIZE = 65536
"""Bytes read per step when hashing or copying: bounded memory whatever the size."""

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class BlobInfo(msgspec.Struct, frozen=True):
    """What is known about stored bytes: their names and their length."""

    sha256: str
    """Lowercase hex; also the blob's name in the store."""
    md5: str
    """Lowercase hex; OpenRosa manifests and formList hashes use md5."""
    size: int


class BlobNotFound(LookupError):  # noqa: N818 - the name the server is written against
    """No blob with this sha256 is in the store."""


def check_sha256(sha256: str) -> str:
    """Return `sha256` if it is 64 lowercase hex digits, else raise ValueError.

    Stores build paths and object keys from this string, so anything else
    (`..`, slashes, uppercase) is refused before it gets near a path.
    """
    if not isinstance(sha256, str) or _SHA256_HEX.fullmatch(sha256) is None:
        raise ValueError(f"not a sha256 digest (64 lowercase hex digits): {sha256!r:.80}")
    return sha256


# Names of objects stored by name (the analysis copy's Parquet segments): a few
# path segments of plain characters. The first segment is longer than two
# characters, so a name never lands in a sha256 blob's two-character folder, and
# not `tmp`, where the filesystem store stages new blobs.
_OBJECT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{2,}(/[A-Za-z0-9_-][A-Za-z0-9._=-]*)*")


def check_object_name(name: str) -> str:
    if not _OBJECT_NAME.fullmatch(name) or ".." in name or name.split("/")[0] == "tmp":
        raise ValueError(f"object name {name!r:.100} is not a plain relative path")
    return name


def hash_bytes(data: bytes) -> BlobInfo:
    """Hash bytes already in memory."""
    return BlobInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        size=len(data),
    )


def hash_file(path: Path) -> BlobInfo:
    """Hash a file chunk by chunk (blocking: call it from a worker thread)."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return BlobInfo(sha256=sha256.hexdigest(), md5=md5.hexdigest(), size=size)


class BlobStore(Protocol):
    """Content-addressed byte storage.

    Every method taking a `sha256` raises ValueError if it is not 64 lowercase
    hex digits.
    """

    async def put_file(self, path: Path) -> BlobInfo:
        """Store a file's bytes under their sha256, streaming; idempotent.

        The caller's file is left in place.
        """
        ...

    async def adopt_file(self, path: Path, info: BlobInfo) -> BlobInfo:
        """Store a file the caller already hashed (``info``) and gives up.

        The store trusts ``info`` and may move the file instead of copying it
        (the filesystem store renames it when it lies on the same filesystem), so
        an upload is written once. The caller must not use ``path`` afterwards.
        """
        ...

    async def put_bytes(self, data: bytes) -> BlobInfo:
        """Store small in-memory bytes (XForms, manifests); idempotent."""
        ...

    def open(self, sha256: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncGenerator[bytes, None]:
        """Stream a blob's bytes in chunks of at most `chunk_size`.

        An async generator: `async for chunk in store.open(sha256)`.
        BlobNotFound is raised by the first step, before any byte, so a caller
        can pull the first chunk before committing to a response. Wrap it in
        `contextlib.aclosing` when it may be abandoned early, so the file or
        connection is released at once.
        """
        ...

    async def read_bytes(self, sha256: str) -> bytes:
        """Return a whole (small) blob; raises BlobNotFound."""
        ...

    async def exists(self, sha256: str) -> bool: ...

    async def delete(self, sha256: str) -> None:
        """Remove a blob; deleting a missing blob is not an error."""
        ...

    async def presigned_url(
        self, sha256: str, *, filename: str, content_type: str, expires_seconds: int = 300
    ) -> str | None:
        """A short-lived URL a client may GET directly, or None if the store has none."""
        ...

    # Objects stored by name rather than by content: derived data the row store
    # can rebuild (the analysis copy's Parquet segments), laid out in folders so
    # DuckDB, Polars or Spark can read them in place. Names: `check_object_name`.

    async def put_object(self, name: str, data: bytes) -> None:
        """Store (or replace) the object `name`."""
        ...

    async def put_object_file(self, name: str, path: Path) -> None:
        """Store (or replace) the object `name` with a file's bytes, streaming."""
        ...

    async def read_object(self, name: str) -> bytes:
        """An object's bytes; raises BlobNotFound."""
        ...

    def open_object(
        self, name: str, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        """Stream an object in chunks, as `open` streams a blob; BlobNotFound first."""
        ...

    async def delete_object(self, name: str) -> None:
        """Remove an object; deleting a missing one is not an error."""
        ...

    def object_location(self, name: str) -> str:
        """Where an analyst's tool reads the object: a path or an s3:// URL."""
        ...

    async def close(self) -> None: ...
