"""Fixtures for the storage tests: every behaviour runs against both stores."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import BlobStore, FilesystemBlobStore, S3BlobStore
from tests.services import S3_ACCESS_KEY, S3_SECRET_KEY


def make_s3_store(endpoint: str) -> S3BlobStore:
    """A store on a bucket of its own, so tests never see each other's blobs."""
    return S3BlobStore(
        endpoint=endpoint,
        bucket=f"test-{uuid.uuid4().hex[:16]}",
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        secure=False,
    )


@pytest.fixture(params=["filesystem", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    blob_store: BlobStore
    if request.param == "filesystem":
        blob_store = FilesystemBlobStore(tmp_path / "blobs")
    else:
        blob_store = make_s3_store(request.getfixturevalue("moto_endpoint"))
    yield blob_store
    await blob_store.close()
