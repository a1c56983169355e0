"""The export as a client sees it: `GET .../submissions.csv.zip` from a running server.

`homeward export` measures a fresh process, start-up included. Central's published
figure (20,000 submissions in 6.4 s) is the time of the HTTP download from a server
that is already running, which is what pyodk, ruODK and a browser do; this module
measures the same thing. The server is started once (`homeward serve`); each
download is timed from the request to the last byte, the server's CPU seconds are
read from /proc before and after, and its peak RSS is the kernel's high-water mark
for the process, reset before each download. The time to the first byte of the body
is kept too: a download that stays silent for long trips proxies and looks hung.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.ingest import SECRET_KEY, Backend, running_server

ADMIN_EMAIL = "bench@example.org"


@dataclass(frozen=True, slots=True)
class Download:
    seconds: float
    first_byte_seconds: float
    server_cpu_seconds: float
    server_peak_rss_mb: float
    bytes: int
    ok: bool


async def _session_token(backend: Backend) -> str:
    """A bearer token for the benchmark's administrator (its password is random)."""
    from server.runtime import close_runtime, open_runtime
    from server.services import accounts
    from server.settings import Settings

    settings = Settings.from_env(backend.env | {"HOMEWARD_SECRET_KEY": SECRET_KEY})
    rt = await open_runtime(settings)
    try:
        async with rt.transaction() as db:
            found = await accounts.find_user(db, ADMIN_EMAIL)
            assert found is not None, "the benchmark form was seeded without its administrator"
            token, _ = await accounts.create_session(db, found[0], hours=2)
        return token
    finally:
        await close_runtime(rt)


def _cpu_seconds(pid: int) -> float:
    """User + system time of a process and all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _reset_peak_rss(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def serving(backend: Backend) -> Iterator[tuple[int, str, str]]:
    """`homeward serve` (one process) on the backend; yields its pid, URL and a token.

    The server runs no data checks: seeding bypasses ingest, so to the check worker
    every seeded submission would be new, and its first round over a million
    (bench.checks measures one) would share the downloads' CPU and peak RSS.
    """
    token = asyncio.run(_session_token(backend))
    exports_alone = dataclasses.replace(
        backend, env=backend.env | {"HOMEWARD_CHECKS_INTERVAL": "0"}
    )
    with (
        tempfile.TemporaryFile(prefix="homeward-bench-serve-") as log,
        running_server(exports_alone, 1, log) as (process, url),
    ):
        yield process.pid, url, token


def download(
    pid: int, url: str, token: str, project_id: int, form_id: str, *, attachments: bool
) -> Download:
    """One `GET submissions.csv.zip`, read to the end as a client would and discarded."""
    path = f"{url}/v1/projects/{project_id}/forms/{form_id}/submissions.csv.zip"
    params = {"attachments": "true" if attachments else "false"}
    headers = {"Authorization": f"Bearer {token}"}
    _reset_peak_rss(pid)
    cpu = _cpu_seconds(pid)
    received = 0
    first_byte = 0.0
    started = time.perf_counter()
    with (
        httpx.Client(timeout=600) as client,
        client.stream("GET", path, params=params, headers=headers) as response,
    ):
        # Chunks as they arrive (no chunk size): the first one is the first byte.
        for chunk in response.iter_raw():
            if not received and chunk:
                first_byte = time.perf_counter() - started
            received += len(chunk)
        ok = response.status_code == 200
    seconds = time.perf_counter() - started
    return Download(seconds, first_byte, _cpu_seconds(pid) - cpu, _peak_rss_mb(pid), received, ok)
