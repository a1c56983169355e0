"""Real services for the test suite: a private PostgreSQL and an S3 endpoint.

Plain context managers, wired into session fixtures by tests/conftest.py. Each
starts its service on loopback and a free port, yields where to reach it, and
stops it and removes its files on exit, whatever happened in between.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PG_BIN = Path(os.environ.get("HOMEWARD_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
DATABASE_URL_VARIABLE = "HOMEWARD_TEST_DATABASE_URL"
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"

_PG_USER = "postgres"
_PG_OPTIONS = (
    # A throwaway cluster: durability buys nothing, speed buys a faster suite.
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
)
_START_ATTEMPTS = 3  # free_port() can race with another process taking the port


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A fresh PostgreSQL 15 cluster with a `homeward` database; yields its URL.

    Honours HOMEWARD_TEST_DATABASE_URL: when set, yields it and starts nothing.
    As root, the cluster runs as the `postgres` user (initdb refuses root).
    """
    external = os.environ.get(DATABASE_URL_VARIABLE)
    if external:
        yield external
        return

    as_postgres = ["runuser", "-u", _PG_USER, "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="homeward-pg-"))
    data = base / "data"
    try:
        if as_postgres:
            owner = pwd.getpwnam(_PG_USER)
            os.chown(base, owner.pw_uid, owner.pw_gid)
        _run(
            [
                *as_postgres,
                str(PG_BIN / "initdb"),
                f"--pgdata={data}",
                f"--username={_PG_USER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=base,
        )
        port = _start_postgres(as_postgres, base, data)
        _run(
            [
                str(PG_BIN / "createdb"),
                "--host=127.0.0.1",
                f"--port={port}",
                f"--username={_PG_USER}",
                "homeward",
            ],
            cwd=base,
        )
        yield f"postgresql+asyncpg://{_PG_USER}@127.0.0.1:{port}/homeward"
    finally:
        try:
            _stop_postgres(as_postgres, base, data)
        finally:
            shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """A moto S3 server in a subprocess; yields "127.0.0.1:PORT".

    Credentials are S3_ACCESS_KEY / S3_SECRET_KEY ("testing"); plain HTTP.
    """
    with tempfile.TemporaryFile(prefix="homeward-moto-") as log:
        process, port = _start_moto(log)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            _stop_process(process)


def _start_moto(log: IO[bytes]) -> tuple[subprocess.Popen[bytes], int]:
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if _wait_for_http(process, port, timeout=30):
                return process, port
        except BaseException:
            _stop_process(process)
            raise
        _stop_process(process)
    log.seek(0)
    output = log.read()[-4000:].decode(errors="replace")
    raise RuntimeError(f"moto_server did not start:\n{output}")


def _start_postgres(as_postgres: list[str], base: Path, data: Path) -> int:
    log = base / "postgres.log"
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        started = subprocess.run(
            [
                *as_postgres,
                str(PG_BIN / "pg_ctl"),
                "start",
                f"--pgdata={data}",
                f"--log={log}",
                "--wait",
                "--timeout=60",
                f"--options=-k {base} -h 127.0.0.1 -p {port} {_PG_OPTIONS}",
            ],
            cwd=base,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=90,
        )
        if started.returncode == 0 and _pg_isready(port):
            return port
        _stop_postgres(as_postgres, base, data)
    log_text = log.read_text(errors="replace") if log.exists() else "(no log)"
    raise RuntimeError(f"PostgreSQL did not start:\n{log_text[-4000:]}")


def _pg_isready(port: int) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = subprocess.run(
            [str(PG_BIN / "pg_isready"), "--host=127.0.0.1", f"--port={port}", "--timeout=2"],
            capture_output=True,
            check=False,
        )
        if ready.returncode == 0:
            return True
        if ready.returncode == 2:  # no response: the server is not running
            return False
        time.sleep(0.1)  # 1 = rejecting connections, still starting
    return False


def _stop_postgres(as_postgres: list[str], base: Path, data: Path) -> None:
    pid_file = data / "postmaster.pid"
    try:
        postmaster = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return  # never started, or already stopped
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "pg_ctl"),
            "stop",
            f"--pgdata={data}",
            "--mode=fast",
            "--wait",
            "--timeout=30",
        ],
        cwd=base,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=60,
    )
    # pg_ctl returns once the pid file is gone, a moment before the process
    # exits; wait for that too, and kill it if a fast shutdown did not work.
    if not _wait_until_gone(postmaster, timeout=10):
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGKILL)
        _wait_until_gone(postmaster, timeout=10)


def process_is_gone(pid: int) -> bool:
    """True if no process has this pid, or only its unreaped zombie is left."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: fall back to signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_until_gone(pid: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not process_is_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _run(command: list[str], *, cwd: Path) -> None:
    result = subprocess.run(
        command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=120
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}):\n{output}")


def _wait_for_http(process: subprocess.Popen[bytes], port: int, *, timeout: float) -> bool:
    """True once anything answers HTTP on the port; False if the process died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            connection.close()
    return False


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
