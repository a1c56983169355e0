"""Object storage for blobs (attachments, XLSForms, media), content-addressed by sha256.

`open_blob_store` turns the storage URL setting into a store:

- empty or None: a folder `blobs` under the data directory (the embedded default);
- `file:///absolute/path` or `file:relative/path` (relative to the working directory);
- `s3://BUCKET?endpoint=HOST:PORT&secure=false&region=REGION&prefix=blobs/` for
  S3 or MinIO. `endpoint` defaults to `s3.amazonaws.com`, `secure` to true,
  `prefix` to `blobs/`. Credentials come from settings, never from the URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from storage.blobs import BlobInfo, BlobNotFound, BlobStore, hash_file
from storage.filesystem import FilesystemBlobStore

if TYPE_CHECKING:
    from storage.s3 import S3BlobStore

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "FilesystemBlobStore",
    "S3BlobStore",
    "hash_file",
    "open_blob_store",
]

_S3_PARAMETERS = frozenset({"endpoint", "secure", "region", "prefix"})
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# S3 bucket naming rules.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ENDPOINT = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def open_blob_store(
    url: str | None,
    *,
    data_dir: Path,
    s3_access_key: str | None,
    s3_secret_key: str | None,
) -> BlobStore:
    """Build the store a storage URL names; ValueError says what is wrong with it."""
    if not url:
        return FilesystemBlobStore(Path(data_dir) / "blobs")
    scheme, _, _ = url.partition(":")
    match scheme.lower():
        case "file":
            return _filesystem_store(url)
        case "s3":
            return _s3_store(url, access_key=s3_access_key, secret_key=s3_secret_key)
        case _:
            raise ValueError(
                f"storage URL scheme {scheme!r:.40} is not supported; "
                "use file:///path, file:relative/path or s3://bucket?endpoint=host:port"
            )


def _filesystem_store(url: str) -> FilesystemBlobStore:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"file storage URL names a host ({parts.netloc!r}); "
            "use file:///absolute/path or file:relative/path"
        )
    if parts.query or parts.fragment:
        raise ValueError("file storage URL takes no ?query or #fragment")
    path = unquote(parts.path)
    if not path:
        raise ValueError("file storage URL has no path; use file:///absolute/path")
    return FilesystemBlobStore(Path(path).absolute())


def __getattr__(name: str) -> Any:
    # The S3 store is imported when first named: minio and pycryptodome cost a few
    # tenths of a second of every process start, and the folder store needs neither.
    if name == "S3BlobStore":
        from storage.s3 import S3BlobStore

        return S3BlobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _s3_store(url: str, *, access_key: str | None, secret_key: str | None) -> S3BlobStore:
    from storage.s3 import S3BlobStore

    parts = urlsplit(url)
    if "@" in parts.netloc:
        # Do not echo the URL: it holds a secret.
        raise ValueError(
            "s3 storage URL must not contain credentials; set the S3 access and secret keys"
        )
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(
            f"s3 storage URL bucket {bucket!r:.80} is not valid: "
            "3-63 lowercase letters, digits, dots or hyphens, as in s3://homeward-blobs?endpoint=..."
        )
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError(
            "s3 storage URL has a path or #fragment; put the key prefix in ?prefix=... instead"
        )
    params = _single_valued(parse_qs(parts.query, keep_blank_values=True, strict_parsing=False))
    unknown = sorted(params.keys() - _S3_PARAMETERS)
    if unknown:
        raise ValueError(
            f"s3 storage URL has unknown parameters {unknown}; known: {sorted(_S3_PARAMETERS)}"
        )
    endpoint = params.get("endpoint", "s3.amazonaws.com")
    if not _ENDPOINT.fullmatch(endpoint):
        raise ValueError(
            f"s3 storage URL endpoint {endpoint!r:.80} must be HOST or HOST:PORT, "
            "without http:// (use secure=false for plain HTTP)"
        )
    secure_text = params.get("secure", "true").lower()
    if secure_text not in _BOOLEANS:
        raise ValueError(f"s3 storage URL secure={secure_text!r:.20} must be true or false")
    prefix = params.get("prefix", "blobs/")
    if prefix.startswith("/") or ".." in prefix.split("/"):
        raise ValueError(f"s3 storage URL prefix {prefix!r:.80} must be relative, without '..'")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if not access_key or not secret_key:
        raise ValueError("s3 storage needs both the S3 access key and the S3 secret key set")
    return S3BlobStore(
        endpoint=endpoint,
        bucket=bucket,
        access_key=access_key,
        secret_key=secret_key,
        secure=_BOOLEANS[secure_text],
        region=params.get("region") or None,
        prefix=prefix,
    )


def _single_valued(params: dict[str, list[str]]) -> dict[str, str]:
    repeated = sorted(name for name, values in params.items() if len(values) > 1)
    if repeated:
        raise ValueError(f"s3 storage URL repeats parameters {repeated}")
    return {name: values[0] for name, values in params.items()}
