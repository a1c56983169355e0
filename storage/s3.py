"""BlobStore on S3 or MinIO, through the (synchronous) minio SDK.

Every SDK call runs in a worker thread so the event loop never waits on the
network. Uploads stream from the file and downloads stream to the caller;
no blob is ever held whole in memory except through `put_bytes`/`read_bytes`.
"""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import urllib3
from minio import Minio
from minio.error import S3Error

from storage.blobs import (
    CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    check_object_name,
    check_sha256,
    hash_bytes,
    hash_file,
)

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "ResourceNotFound", "NoSuchObject"})
_CONTENT_TYPE = "application/octet-stream"


class S3BlobStore:
    """Blobs as objects in one bucket, under `prefix`.

    The bucket is created if missing, by `ensure_bucket()` or on first use.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        secure: bool,
        region: str | None = None,
        prefix: str = "blobs/",
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self.region = region
        self.prefix = prefix
        # Our own pool so close() can release its sockets. Retries cover the
        # brief 5xx/connection blips S3 and MinIO do produce under load.
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=300),
            maxsize=16,
            retries=urllib3.Retry(
                total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=self._http,
        )
        self._bucket_ready = False

    def key_for(self, sha256: str) -> str:
        # The object key is the content hash, not a database id, because:
        # - the same bytes uploaded twice (Collect resends attachments with
        #   every resubmission) are one object, found with one HEAD;
        # - an object can never be overwritten with different bytes;
        # - a bucket backup restores on its own: rows store the sha256, so a
        #   restored database finds its blobs with no mapping table to rebuild.
        # The two-character level keeps S3 list/console views and rsync-style
        # backup tools fast.
        check_sha256(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet."""
        await anyio.to_thread.run_sync(self._ensure_bucket)
        self._bucket_ready = True

    async def put_file(self, path: Path) -> BlobInfo:
        await self._ready()
        return await anyio.to_thread.run_sync(self._put_file, Path(path))

    async def adopt_file(self, path: Path, info: BlobInfo) -> BlobInfo:
        await self._ready()
        stored = await anyio.to_thread.run_sync(self._upload_hashed, Path(path), info)
        await anyio.Path(path).unlink(missing_ok=True)
        return stored

    async def put_bytes(self, data: bytes) -> BlobInfo:
        await self._ready()
        return await anyio.to_thread.run_sync(self._put_bytes, data)

    async def open(
        self, sha256: str, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        key = self.key_for(sha256)
        await self._ready()
        response = await anyio.to_thread.run_sync(self._get_object, key, sha256)
        try:
            chunks: Iterator[bytes] = response.stream(chunk_size)
            while chunk := await anyio.to_thread.run_sync(next, chunks, b""):
                yield chunk
        finally:
            # Closing an unfinished response drops its connection instead of
            # returning a half-read socket to the pool.
            response.close()
            response.release_conn()

    async def read_bytes(self, sha256: str) -> bytes:
        key = self.key_for(sha256)
        await self._ready()
        return await anyio.to_thread.run_sync(self._read_bytes, key, sha256)

    async def exists(self, sha256: str) -> bool:
        key = self.key_for(sha256)
        await self._ready()
        return await anyio.to_thread.run_sync(self._exists, key)

    async def delete(self, sha256: str) -> None:
        key = self.key_for(sha256)
        await self._ready()
        await anyio.to_thread.run_sync(self._client.remove_object, self.bucket, key)

    async def presigned_url(
        self, sha256: str, *, filename: str, content_type: str, expires_seconds: int = 300
    ) -> str | None:
        """A presigned GET whose response carries our type and file name.

        Signing is local (after the bucket region is known); it does not check
        that the blob exists.
        """
        key = self.key_for(sha256)
        await self._ready()
        response_headers: dict[str, str | list[str] | tuple[str]] = {
            "response-content-type": content_type,
            "response-content-disposition": content_disposition(filename),
        }

        def sign() -> str:
            url: str = self._client.presigned_get_object(
                self.bucket,
                key,
                expires=timedelta(seconds=expires_seconds),
                response_headers=response_headers,
            )
            return url

        return await anyio.to_thread.run_sync(sign)

    async def close(self) -> None:
        self._http.clear()

    def object_location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{check_object_name(name)}"

    async def put_object(self, name: str, data: bytes) -> None:
        key = f"{self.prefix}{check_object_name(name)}"
        await self._ready()
        await anyio.to_thread.run_sync(
            lambda: self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=_CONTENT_TYPE
            )
        )

    async def put_object_file(self, name: str, path: Path) -> None:
        key = f"{self.prefix}{check_object_name(name)}"
        await self._ready()
        await anyio.to_thread.run_sync(
            lambda: self._client.fput_object(
                self.bucket, key, str(path), content_type=_CONTENT_TYPE
            )
        )

    async def open_object(
        self, name: str, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        key = f"{self.prefix}{check_object_name(name)}"
        await self._ready()
        response = await anyio.to_thread.run_sync(self._get_object, key, name)
        try:
            chunks: Iterator[bytes] = response.stream(chunk_size)
            while chunk := await anyio.to_thread.run_sync(next, chunks, b""):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def read_object(self, name: str) -> bytes:
        key = f"{self.prefix}{check_object_name(name)}"
        await self._ready()
        return await anyio.to_thread.run_sync(self._read_bytes, key, name)

    async def delete_object(self, name: str) -> None:
        key = f"{self.prefix}{check_object_name(name)}"
        await self._ready()
        await anyio.to_thread.run_sync(self._client.remove_object, self.bucket, key)

    async def _ready(self) -> None:
        if not self._bucket_ready:
            await self.ensure_bucket()

    # Blocking halves, run in worker threads.

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self.bucket):
            return
        try:
            self._client.make_bucket(self.bucket, location=self.region)
        except S3Error as error:
            # Another app instance created it between our check and our call.
            if error.code != "BucketAlreadyOwnedByYou":
                raise

    def _put_file(self, path: Path) -> BlobInfo:
        # Hash first (the key is the hash), then upload streaming from disk.
        # The caller must not change the file meanwhile; upload temp files are
        # ours alone, so that holds.
        return self._upload_hashed(path, hash_file(path))

    def _upload_hashed(self, path: Path, info: BlobInfo) -> BlobInfo:
        # No existence check first: the key is the content hash, so writing the
        # same object again changes nothing, and a HEAD would cost a round trip
        # on every new upload to save one on the rare repeat.
        key = self.key_for(info.sha256)
        self._client.fput_object(self.bucket, key, str(path), content_type=_CONTENT_TYPE)
        return info

    def _put_bytes(self, data: bytes) -> BlobInfo:
        info = hash_bytes(data)
        key = self.key_for(info.sha256)
        if not self._exists(key):
            self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=_CONTENT_TYPE
            )
        return info

    def _get_object(self, key: str, sha256: str) -> Any:
        try:
            return self._client.get_object(self.bucket, key)
        except S3Error as error:
            if error.code in _NOT_FOUND:
                raise BlobNotFound(sha256) from None
            raise

    def _read_bytes(self, key: str, sha256: str) -> bytes:
        response = self._get_object(key, sha256)
        try:
            data: bytes = response.read()
            return data
        finally:
            response.close()
            response.release_conn()

    def _exists(self, key: str) -> bool:
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as error:
            if error.code in _NOT_FOUND:
                return False
            raise
        return True


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266).

    Quotes, backslashes, control characters and non-ASCII never reach the
    plain `filename=` parameter, so a hostile name cannot break the header.
    """
    fallback = "".join(
        char if " " <= char <= "~" and char not in '"\\' else "_" for char in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
