"""Settings: one struct, read from ``HOMEWARD_*`` environment variables by the CLI only.

Nothing reads the environment at import time; tests build as many apps as they like by
passing their own :class:`Settings` to :func:`server.app.create_app`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path("var")
    database_url: str = ""
    storage_url: str = ""
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8383
    public_url: str = ""
    secret_key: str = ""
    session_hours: int = 24
    # Digest stores an MD5-derived credential; only deployments that need Collect
    # sign-in with e-mail + password over plain HTTP turn it on.
    digest_auth: bool = False
    # S3 blobs are served by a 307 to a short-lived presigned URL; turn this off
    # when phones cannot reach the S3 endpoint (e.g. MinIO on a private network).
    blob_redirects: bool = True
    # uvicorn's line per request. Off by default: the proxy in front logs requests
    # anyway, and it costs about a tenth of a core at 300 submissions/s. When on,
    # credentials in paths (app-user and draft tokens, ?st=) are masked.
    access_log: bool = False
    # Base-map tiles for the web app's maps, as {z}/{x}/{y} template (for example a
    # tile server on the office network). Empty: the points are drawn without a map,
    # and no request leaves for a tile service.
    map_tile_url: str = ""
    max_submission_bytes: int = 100_000_000
    max_form_bytes: int = 20_000_000
    # Exports written at once (each on a thread of its own); more are refused with 429.
    max_exports: int = 4
    # Seconds between rounds of the job that extends each form's analysis copy
    # (services.analysis); 0 turns it off in this process.
    analysis_interval: int = 15
    # Seconds between rounds of the data checks on new submissions
    # (services.check_findings); 0 turns them off in this process.
    checks_interval: int = 30

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'homeward.sqlite3'}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"HOMEWARD_{name}")
            return value if value not in (None, "") else None

        data_dir = Path(get("DATA_DIR") or "var")
        fields: dict[str, object] = {"data_dir": data_dir}
        for name in (
            "database_url",
            "storage_url",
            "s3_access_key",
            "s3_secret_key",
            "host",
            "public_url",
            "secret_key",
            "map_tile_url",
        ):
            value = get(name.upper())
            if value is not None:
                fields[name] = value
        for name in (
            "port",
            "session_hours",
            "max_submission_bytes",
            "max_form_bytes",
            "max_exports",
            "analysis_interval",
            "checks_interval",
        ):
            value = get(name.upper())
            if value is not None:
                fields[name] = int(value)
        for name in ("digest_auth", "blob_redirects", "access_log"):
            flag = get(name.upper())
            if flag is not None:
                fields[name] = flag.lower() in {"1", "true", "yes", "on"}
        return msgspec.convert(fields, cls, strict=False)

    def with_secret(self) -> Settings:
        """Fill in a secret key kept under the data directory when none was configured.

        App-user tokens are derived from this key, so every app process of one
        deployment must share it: production sets ``HOMEWARD_SECRET_KEY``.
        """
        if self.secret_key:
            return self
        path = self.data_dir / "secret-key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return msgspec.structs.replace(self, secret_key=path.read_text().strip())
