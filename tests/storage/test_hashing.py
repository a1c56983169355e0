"""Hashing and header helpers shared by the stores."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from storage import hash_file
from storage.blobs import CHUNK_SIZE, hash_bytes
from storage.s3 import content_disposition


@given(
    st.one_of(
        st.binary(max_size=2000),
        # Sizes around the chunk boundary, where an off-by-one would hide.
        st.integers(CHUNK_SIZE - 2, CHUNK_SIZE + 2).map(lambda n: bytes(range(256)) * (n // 256)),
        st.integers(CHUNK_SIZE - 2, CHUNK_SIZE + 2).map(lambda n: b"x" * n),
    )
)
def test_hash_file_and_hash_bytes_agree_with_hashlib(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "blob"
        path.write_bytes(data)

        info = hash_file(path)

    assert info == hash_bytes(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert info.size == len(data)


@given(st.text())
def test_content_disposition_keeps_hostile_names_inside_the_header(filename: str) -> None:
    header = content_disposition(filename)

    assert header.isascii()
    assert "\r" not in header
    assert "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"; filename*=', 1)[0]
    assert '"' not in fallback
    assert "\\" not in fallback


def test_content_disposition_for_a_plain_name() -> None:
    assert content_disposition("form.xml") == (
        "attachment; filename=\"form.xml\"; filename*=UTF-8''form.xml"
    )
