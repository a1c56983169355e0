"""Storage URL parsing: what each setting builds, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import FilesystemBlobStore, S3BlobStore, open_blob_store
from tests.services import S3_ACCESS_KEY, S3_SECRET_KEY

DATA_DIR = Path("/srv/homeward/var")


def open_url(url: str | None, *, keys: bool = True) -> object:
    return open_blob_store(
        url,
        data_dir=DATA_DIR,
        s3_access_key=S3_ACCESS_KEY if keys else None,
        s3_secret_key=S3_SECRET_KEY if keys else None,
    )


@pytest.mark.parametrize("url", ["", None])
def test_no_url_means_a_blobs_folder_in_the_data_dir(url: str | None) -> None:
    store = open_url(url, keys=False)

    assert isinstance(store, FilesystemBlobStore)
    assert store.root == DATA_DIR / "blobs"


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("file:///mnt/blobs", Path("/mnt/blobs")),
        ("file://localhost/mnt/blobs", Path("/mnt/blobs")),
        ("FILE:///mnt/with%20space", Path("/mnt/with space")),
        ("file:var/blobs", Path.cwd() / "var/blobs"),
    ],
)
def test_file_urls_name_a_folder(url: str, root: Path) -> None:
    store = open_url(url, keys=False)

    assert isinstance(store, FilesystemBlobStore)
    assert store.root == root


def test_s3_url_with_every_parameter() -> None:
    store = open_url(
        "s3://homeward-blobs?endpoint=minio.internal:9000&secure=false"
        "&region=eu-central-1&prefix=prod/blobs"
    )

    assert isinstance(store, S3BlobStore)
    assert store.bucket == "homeward-blobs"
    assert store.endpoint == "minio.internal:9000"
    assert store.secure is False
    assert store.region == "eu-central-1"
    assert store.prefix == "prod/blobs/"
    assert store.key_for("ab" + "0" * 62) == "prod/blobs/ab/ab" + "0" * 62


def test_s3_url_defaults_to_aws_over_tls() -> None:
    store = open_url("s3://homeward.blobs")

    assert isinstance(store, S3BlobStore)
    assert store.endpoint == "s3.amazonaws.com"
    assert store.secure is True
    assert store.region is None
    assert store.prefix == "blobs/"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.org/blobs", "scheme 'http' is not supported"),
        ("/var/blobs", "scheme '/var/blobs' is not supported"),
        ("file://otherhost/blobs", "names a host"),
        ("file:///blobs?sync=1", "no \\?query"),
        ("file://", "has no path"),
        ("s3://", "bucket '' is not valid"),
        ("s3://Bad_Bucket?endpoint=h:9000", "bucket 'Bad_Bucket' is not valid"),
        ("s3://bucket/extra/path", "put the key prefix in \\?prefix"),
        ("s3://bucket?endpoint=h:9000&colour=blue", "unknown parameters \\['colour'\\]"),
        ("s3://bucket?secure=maybe", "secure='maybe' must be true or false"),
        ("s3://bucket?endpoint=http://h:9000", "must be HOST or HOST:PORT"),
        ("s3://bucket?endpoint=h:9000/path", "must be HOST or HOST:PORT"),
        ("s3://bucket?region=a&region=b", "repeats parameters \\['region'\\]"),
        ("s3://bucket?prefix=/abs", "must be relative"),
        ("s3://bucket?prefix=a/../b", "must be relative"),
    ],
)
def test_bad_urls_raise_value_error_saying_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_url(url)


def test_s3_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="must not contain credentials") as raised:
        open_url("s3://AKIAEXAMPLE:hunter2@bucket?endpoint=h:9000")

    assert "hunter2" not in str(raised.value)


def test_s3_url_needs_both_keys() -> None:
    with pytest.raises(ValueError, match="access key and the S3 secret key"):
        open_url("s3://bucket?endpoint=h:9000", keys=False)


async def test_s3_store_from_a_url_stores_and_reads(moto_endpoint: str, tmp_path: Path) -> None:
    store = open_blob_store(
        f"s3://from-a-url?endpoint={moto_endpoint}&secure=false",
        data_dir=tmp_path,
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
    )
    try:
        info = await store.put_bytes(b"via url")
        assert await store.read_bytes(info.sha256) == b"via url"
    finally:
        await store.close()
