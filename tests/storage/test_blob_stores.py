"""Behaviour every BlobStore shares, run against the filesystem store and S3 (moto)."""

from __future__ import annotations

import hashlib
import os
from contextlib import aclosing
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from minio import Minio

from storage import BlobInfo, BlobNotFound, BlobStore, FilesystemBlobStore, S3BlobStore
from tests.services import S3_ACCESS_KEY, S3_SECRET_KEY

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MISSING_SHA256 = "0" * 64


def expected_info(data: bytes) -> BlobInfo:
    return BlobInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        size=len(data),
    )


async def read_all(store: BlobStore, sha256: str, chunk_size: int = 65536) -> list[bytes]:
    return [chunk async for chunk in store.open(sha256, chunk_size=chunk_size)]


async def test_put_bytes_returns_hashlib_digests_and_reads_back(store: BlobStore) -> None:
    data = b"<h:html>a form</h:html>"

    info = await store.put_bytes(data)

    assert info == expected_info(data)
    assert await store.read_bytes(info.sha256) == data
    assert b"".join(await read_all(store, info.sha256)) == data


async def test_put_file_stores_the_bytes_and_leaves_the_file_in_place(
    store: BlobStore, tmp_path: Path
) -> None:
    data = os.urandom(200_000)
    source = tmp_path / "upload.jpg"
    source.write_bytes(data)

    info = await store.put_file(source)

    assert info == expected_info(data)
    assert source.read_bytes() == data
    assert await store.read_bytes(info.sha256) == data


async def test_empty_blob_round_trips(store: BlobStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")

    info = await store.put_file(empty)

    assert info.sha256 == EMPTY_SHA256
    assert info.size == 0
    assert await store.read_bytes(EMPTY_SHA256) == b""
    assert await read_all(store, EMPTY_SHA256) == []


async def test_putting_the_same_bytes_again_is_harmless(store: BlobStore, tmp_path: Path) -> None:
    data = b"resubmitted attachment"
    source = tmp_path / "a.bin"
    source.write_bytes(data)

    first = await store.put_bytes(data)
    second = await store.put_bytes(data)
    third = await store.put_file(source)

    assert first == second == third
    assert await store.read_bytes(first.sha256) == data


async def test_concurrent_puts_of_the_same_bytes_all_succeed(store: BlobStore) -> None:
    data = os.urandom(100_000)
    results: list[BlobInfo] = []

    async def put() -> None:
        results.append(await store.put_bytes(data))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(put)

    assert results == [expected_info(data)] * 8
    assert await store.read_bytes(results[0].sha256) == data


async def test_open_streams_a_5mb_blob_in_bounded_chunks(store: BlobStore, tmp_path: Path) -> None:
    # Just over 5 MiB, so the S3 upload goes multipart.
    data = os.urandom(5 * 1024 * 1024 + 123)
    source = tmp_path / "video.mp4"
    source.write_bytes(data)
    info = await store.put_file(source)

    chunks = await read_all(store, info.sha256, chunk_size=65536)

    assert len(chunks) > 1
    assert all(0 < len(chunk) <= 65536 for chunk in chunks)
    assert b"".join(chunks) == data


async def test_abandoning_a_stream_leaves_the_store_usable(store: BlobStore) -> None:
    data = os.urandom(1_000_000)
    info = await store.put_bytes(data)

    for _ in range(20):  # more than the S3 connection pool holds
        async with aclosing(store.open(info.sha256, chunk_size=1024)) as chunks:
            async for chunk in chunks:
                assert chunk == data[:1024]
                break

    assert await store.read_bytes(info.sha256) == data


async def test_missing_blob_raises_blob_not_found_before_any_byte(store: BlobStore) -> None:
    chunks = store.open(MISSING_SHA256)
    with pytest.raises(BlobNotFound):
        await anext(chunks)
    with pytest.raises(BlobNotFound):
        await store.read_bytes(MISSING_SHA256)


async def test_exists_and_delete(store: BlobStore) -> None:
    info = await store.put_bytes(b"to be deleted")
    assert await store.exists(info.sha256)
    assert not await store.exists(MISSING_SHA256)

    await store.delete(info.sha256)

    assert not await store.exists(info.sha256)
    with pytest.raises(BlobNotFound):
        await store.read_bytes(info.sha256)
    await store.delete(info.sha256)  # deleting again is not an error


@pytest.mark.parametrize(
    "key",
    [
        "../../../../etc/passwd",
        "/etc/passwd",
        "ab/" + "a" * 61,
        "A" * 64,
        "g" * 64,
        "a" * 63,
        "a" * 65,
        "a" * 64 + "\n",
        "",
    ],
)
async def test_keys_that_are_not_sha256_hex_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="not a sha256"):
        await anext(store.open(key))
    with pytest.raises(ValueError, match="not a sha256"):
        await store.read_bytes(key)
    with pytest.raises(ValueError, match="not a sha256"):
        await store.exists(key)
    with pytest.raises(ValueError, match="not a sha256"):
        await store.delete(key)
    with pytest.raises(ValueError, match="not a sha256"):
        await store.presigned_url(key, filename="x", content_type="text/plain")


async def test_presigned_url_downloads_the_bytes_with_type_and_name(store: BlobStore) -> None:
    data = os.urandom(3000)
    info = await store.put_bytes(data)
    filename = 'photo "1" é.jpg'

    url = await store.presigned_url(info.sha256, filename=filename, content_type="image/jpeg")

    if isinstance(store, FilesystemBlobStore):
        assert url is None
        return
    assert url is not None
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''photo%20%221%22%20%C3%A9.jpg" in disposition


async def test_presigned_url_carries_the_requested_lifetime(moto_endpoint: str) -> None:
    # moto does not enforce expiry, so check what real S3/MinIO will enforce.
    store = S3BlobStore(
        endpoint=moto_endpoint,
        bucket="presign-lifetime",
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        secure=False,
    )
    try:
        url = await store.presigned_url(
            "a" * 64, filename="a.txt", content_type="text/plain", expires_seconds=90
        )
    finally:
        await store.close()

    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["90"]
    assert query["response-content-type"] == ["text/plain"]


async def test_filesystem_store_lays_blobs_out_by_hash_and_leaves_no_temp_files(
    tmp_path: Path,
) -> None:
    root = tmp_path / "blobs"
    store = FilesystemBlobStore(root)
    source = tmp_path / "in"
    source.write_bytes(b"layout")

    info = await store.put_file(source)
    await store.put_bytes(b"layout")

    sha = info.sha256
    assert (root / sha[:2] / sha[2:4] / sha).read_bytes() == b"layout"
    assert list((root / "tmp").iterdir()) == []


async def test_filesystem_put_of_a_missing_file_leaves_nothing_behind(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")

    with pytest.raises(FileNotFoundError):
        await store.put_file(tmp_path / "nope")

    assert [path for path in (tmp_path / "blobs").rglob("*") if path.is_file()] == []


async def test_s3_store_creates_its_bucket_and_keys_objects_by_hash(moto_endpoint: str) -> None:
    store = S3BlobStore(
        endpoint=moto_endpoint,
        bucket="bucket-made-by-the-store",
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        secure=False,
        region="eu-west-1",
        prefix="homeward/blobs/",
    )
    try:
        await store.ensure_bucket()
        await store.ensure_bucket()  # idempotent
        info = await store.put_bytes(b"keyed")
    finally:
        await store.close()

    client = Minio(moto_endpoint, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, secure=False)
    names = [item.object_name for item in client.list_objects(store.bucket, recursive=True)]
    assert names == [f"homeward/blobs/{info.sha256[:2]}/{info.sha256}"]


async def test_adopt_file_takes_a_hashed_file_and_consumes_it(
    store: BlobStore, tmp_path: Path
) -> None:
    data = os.urandom(200_000)
    first, second = tmp_path / "first.part", tmp_path / "second.part"
    first.write_bytes(data)
    second.write_bytes(data)
    known = BlobInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        size=len(data),
    )
    assert await store.adopt_file(first, known) == known
    assert not first.exists()
    assert await store.read_bytes(known.sha256) == data
    # The same bytes again: still one blob, and the second file is consumed too.
    assert await store.adopt_file(second, known) == known
    assert not second.exists()
    assert await store.read_bytes(known.sha256) == data


async def test_named_objects_round_trip_replace_and_delete(store: BlobStore) -> None:
    name = "analysis/p1/simple/simple/000001.parquet"
    await store.put_object(name, b"first")
    await store.put_object(name, b"second")  # replaced whole

    assert await store.read_object(name) == b"second"
    assert [chunk async for chunk in store.open_object(name, chunk_size=4)] == [b"seco", b"nd"]
    assert store.object_location(name).endswith(name)
    await store.delete_object(name)
    await store.delete_object(name)  # missing: not an error
    with pytest.raises(BlobNotFound):
        await store.read_object(name)


@pytest.mark.parametrize("name", ["../x", "/abs/x", "ab/x", "tmp/x", "a/../b", "analysis//x", ""])
async def test_object_names_that_could_escape_or_collide_are_refused(
    store: BlobStore, name: str
) -> None:
    with pytest.raises(ValueError, match="not a plain relative path"):
        await store.put_object(name, b"x")


async def test_named_object_from_a_file_streams_back(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "export.zip"
    source.write_bytes(os.urandom(300_000))

    await store.put_object_file("exports/7/form.csv.zip", source)

    chunks = [chunk async for chunk in store.open_object("exports/7/form.csv.zip")]
    assert b"".join(chunks) == source.read_bytes()
    assert source.exists()  # the caller's file stays
    with pytest.raises(BlobNotFound):
        await anext(store.open_object("exports/8/form.csv.zip"))
