"""The real server, as a subprocess, for whole-journey tests over real HTTP.

``live_server`` seeds an administrator through the ``runtime`` fixture (the same
database and blob store as the ``settings`` fixture, so both backends), starts
``python -m server.cli serve`` on 127.0.0.1 and a free port with ``HOMEWARD_*``
variables taken from those settings, waits for ``/healthz``, yields the base
URL, and stops the process (and its process group) whatever happened.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.runtime import Runtime
from server.services import accounts
from server.settings import Settings
from tests.services import free_port, process_is_gone

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"

REPO_ROOT = Path(__file__).resolve().parents[2]
_START_ATTEMPTS = 3
_START_TIMEOUT = 60.0
# Lines in the server log that mean a request failed inside the server.
_SERVER_ERRORS = ("unexpected error on", "Traceback (most recent call last)")


@pytest.fixture
async def seeded_admin(runtime: Runtime) -> str:
    """An administrator in the live server's database; returns the e-mail."""
    async with runtime.transaction() as db:
        actor, _ = await accounts.create_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
        await accounts.promote_to_admin(db, actor.id, by=None)
    return ADMIN_EMAIL


def server_environment(
    settings: Settings, port: int, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    env |= {
        "HOMEWARD_DATA_DIR": str(settings.data_dir),
        "HOMEWARD_HOST": "127.0.0.1",
        "HOMEWARD_PORT": str(port),
        "HOMEWARD_SECRET_KEY": settings.secret_key,
        "PYTHONUNBUFFERED": "1",
    }
    optional = {
        "HOMEWARD_DATABASE_URL": settings.database_url,
        "HOMEWARD_STORAGE_URL": settings.storage_url,
        "HOMEWARD_S3_ACCESS_KEY": settings.s3_access_key,
        "HOMEWARD_S3_SECRET_KEY": settings.s3_secret_key,
    }
    env |= {name: value for name, value in optional.items() if value}
    return env | (extra or {})


def _healthy(process: subprocess.Popen[bytes], port: int, *, timeout: float) -> bool:
    """True once GET /healthz answers 200; False if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return True
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers; reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def running_server(
    settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """``homeward serve`` in a subprocess of its own session; yields its base URL."""
    with log_path.open("ab") as log:
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"],
                cwd=REPO_ROOT,
                env=server_environment(settings, port, extra_env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                if _healthy(process, port, timeout=_START_TIMEOUT):
                    yield f"http://127.0.0.1:{port}"
                    return
            finally:
                _stop(process)
                assert process_is_gone(process.pid), f"server process {process.pid} survived"
    output = log_path.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"homeward serve did not start:\n{output}")


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "homeward-serve.log"


@pytest.fixture
def server_extra_env() -> dict[str, str]:
    """More ``HOMEWARD_*`` variables for the live server; override it in a module."""
    return {}


@pytest.fixture
def live_server(
    settings: Settings, seeded_admin: str, server_log: Path, server_extra_env: dict[str, str]
) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT``) of a real ``homeward serve`` process.

    On teardown the server is stopped, and a request that failed inside the
    server (a traceback in its log) fails the test.
    """
    with running_server(settings, server_log, server_extra_env) as url:
        yield url
    log = server_log.read_text(errors="replace")
    errors = [line for line in log.splitlines() if any(e in line for e in _SERVER_ERRORS)]
    assert not errors, f"the server logged errors:\n{log[-6000:]}"
