"""Ingest benchmark: ODK Collect-style submissions against the real server.

    python -m bench.ingest [--backend sqlite|postgres|postgres+files|all] [--count N | --seconds S]
                           [--clients 8] [--workers 1,2] [--client raw|httpx] [--write-docs]

For each backend it starts ``python -m server.cli serve`` as a subprocess (SQLite +
filesystem blobs in a temporary data directory, or a private PostgreSQL 15 cluster +
S3 on a moto server), seeds a project, a published 40-question form with a photo
question and an app user, then runs concurrent clients on loopback that POST
submissions exactly as Collect does (multipart, ``xml_submission_file`` + the photo
named by its file name, ``?deviceID=``, OpenRosa headers). Every scenario is bounded
by a count and a time limit; every service is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx

from bench.forms import build_xform, submission_xml
from tests import services

if TYPE_CHECKING:
    from server.auth import Principal
    from server.db.models import Form, Project
    from server.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
PHOTO_BYTES = 300 * 1024
USER_AGENT = "org.odk.collect.android/v2026.3.0 okhttp/4.12.0 (bench)"
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"  # noqa: S105

# What we promised, and what ODK Central publishes for a comparable machine.
TARGET_RATE = {"xml": 300.0, "photo": 100.0}
CENTRAL_RATE = {"xml": 121.0, "photo": 80.0}
TARGET_P99_MS = 250.0
TARGET_RSS_MB = 300.0
CENTRAL_RSS_MB = (140.0, 440.0)


# ---------------------------------------------------------------- measurements


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str  # "xml" or "photo"
    title: str
    photo: bool
    count: int


@dataclass
class Result:
    backend: str
    workers: int
    scenario: Scenario
    clients: int
    sent: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    database_cpu_s: float | None = None  # PostgreSQL's processes (SQLite's is the server's)
    s3_cpu_s: float | None = None  # the moto S3 server
    machine_busy: float = 0.0  # share of all cores busy during the run, 0..1
    other_cores: float = 0.0  # cores used by processes that are not part of the benchmark
    error_samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.sent - self.errors

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    @property
    def server_cpu_ms_per_submission(self) -> float:
        return self.ms_per_submission(self.server_cpu_s)

    def ms_per_submission(self, cpu_s: float) -> float:
        return 1000 * cpu_s / self.ok if self.ok else float("nan")


def _descendants(pid: int) -> list[int]:
    """pid and every process below it (uvicorn's workers and their helpers)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(parents.get(current, []))
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime (children already reaped count too)
        total += sum(int(v) for v in fields[11:15])
    return total / ticks


def _own_pids(server_pid: int, service_ports: tuple[int, ...]) -> list[int]:
    """Every process of the benchmark: this one and its children (server, moto) and
    the PostgreSQL cluster listening on one of ``service_ports``."""
    pids = set(_descendants(os.getpid())) | set(_descendants(server_pid))
    return sorted(pids | set(_database_pids(service_ports)))


def _database_pids(service_ports: tuple[int, ...]) -> list[int]:
    """The PostgreSQL cluster listening on one of ``service_ports``, with its backends."""
    pids: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(f"-p {port}".encode() in b" ".join(cmdline) for port in service_ports):
            pids |= set(_descendants(int(entry)))
    return sorted(pids)


def _s3_pids() -> list[int]:
    """The moto S3 server this benchmark started, if any."""
    found = []
    for pid in _descendants(os.getpid()):
        try:
            if b"moto.server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class RssSampler:
    """Polls the summed VmRSS of the server and its children every 50 ms."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._pids = _descendants(pid)
        self._last_scan = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if time.monotonic() - self._last_scan > 1:  # workers may restart
                self._pids = _descendants(self.pid)
                self._last_scan = time.monotonic()
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(p) for p in self._pids))

    def __enter__(self) -> RssSampler:
        self.peak_kb = sum(_rss_kb(p) for p in self._pids)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _wait_for_quiet(limit: float, threshold: float = 0.15) -> None:
    """Wait (up to ``limit`` s) until the machine is mostly idle: other jobs skew results."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy, total = _machine_ticks()
        time.sleep(1)
        busy2, total2 = _machine_ticks()
        if (busy2 - busy) / max(1, total2 - total) < threshold:
            return
    if limit:
        print("[machine still busy]", end=" ", flush=True)


# ---------------------------------------------------------------- HTTP clients

Poster = Callable[[bytes, str], Awaitable[int]]  # (body, content type) -> status


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client: what a phone's okhttp costs the server,
    without spending the load generator's CPU (on 2 cores it shares the machine)."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, content_type: str) -> int:
        for attempt in range(2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            head = (
                f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"User-Agent: {USER_AGENT}\r\nX-OpenRosa-Version: 1.0\r\n"
                f"Date: {formatdate(usegmt=True)}\r\nAccept-Encoding: gzip\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1")
            try:
                self._writer.write(head)
                self._writer.write(body)
                await self._writer.drain()
                return await self._read_response(self._reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _read_response(self, reader: asyncio.StreamReader) -> int:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            lowered = name.strip().lower()
            if lowered == "content-length":
                length = int(value)
            elif lowered == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif lowered == "connection" and "close" in value.lower():
                close = True
        if chunked:
            while size := int((await reader.readline()).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readline()
        else:
            await reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


@contextlib.asynccontextmanager
async def _poster(kind: str, base: str, path: str) -> AsyncIterator[Poster]:
    if kind == "httpx":
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:

            async def post(body: bytes, content_type: str) -> int:
                response = await client.post(
                    path,
                    content=body,
                    headers={
                        "Content-Type": content_type,
                        "X-OpenRosa-Version": "1.0",
                        "Date": formatdate(usegmt=True),
                        "User-Agent": USER_AGENT,
                    },
                )
                return response.status_code

            yield post
    else:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        connection = RawConnection(host, int(port), path)
        try:
            yield connection.post
        finally:
            await connection.close()


def _multipart(xml: bytes, photo: tuple[str, bytes] | None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
        f'filename="submission.xml"\r\nContent-Type: text/xml\r\n\r\n'.encode(),
        xml,
        b"\r\n",
    ]
    if photo is not None:
        name, data = photo
        parts += [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode(),
            data,
            b"\r\n",
        ]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def _drive(
    *,
    base: str,
    path: str,
    scenario: Scenario,
    clients: int,
    seconds: float,
    client_kind: str,
    result: Result,
    seed: int,
) -> None:
    """Run ``clients`` Collect phones until ``scenario.count`` are sent or time is up."""
    photo_noise = random.Random(seed).randbytes(PHOTO_BYTES)
    remaining = scenario.count
    deadline = time.monotonic() + seconds

    async def phone(number: int) -> None:
        nonlocal remaining
        rng = random.Random(seed * 1000 + number)
        async with _poster(client_kind, base, path) as post:
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                instance_id = f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
                photo = None
                if scenario.photo:
                    # Unique bytes per photo: blobs are content-addressed.
                    photo_name = f"{int(time.time() * 1000)}_{number}_{remaining}.jpg"
                    header = b"\xff\xd8\xff\xe0" + instance_id.encode()
                    photo = (photo_name, header + photo_noise[len(header) :])
                xml = submission_xml(instance_id, rng, photo[0] if photo else None)
                body, content_type = _multipart(xml, photo)
                started = time.perf_counter()
                try:
                    status = await post(body, content_type)
                except (OSError, httpx.HTTPError, asyncio.IncompleteReadError) as error:
                    status, detail = 0, repr(error)
                else:
                    detail = f"HTTP {status}"
                result.latencies_ms.append(1000 * (time.perf_counter() - started))
                result.sent += 1
                if status != 201:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(detail)

    await asyncio.gather(*(phone(n) for n in range(clients)))


def run_scenario(
    *,
    backend: str,
    workers: int,
    server: subprocess.Popen[bytes],
    base: str,
    submission_path: str,
    scenario: Scenario,
    clients: int,
    seconds: float,
    client_kind: str,
    seed: int,
    py_spy: str | None = None,
    service_ports: tuple[int, ...] = (),
    quiet_wait: float = 0.0,
) -> Result:
    # A short warm-up (not counted): connections, caches, the first blob directories.
    warm = Result(backend, workers, Scenario("warm", "", scenario.photo, 4 * clients), clients)
    asyncio.run(
        _drive(
            base=base,
            path=submission_path,
            scenario=warm.scenario,
            clients=clients,
            seconds=30,
            client_kind=client_kind,
            result=warm,
            seed=seed + 7,
        )
    )
    if warm.errors:
        raise RuntimeError(f"warm-up failed: {warm.error_samples}")
    result = Result(backend, workers, scenario, clients)
    _wait_for_quiet(quiet_wait)
    pids = _descendants(server.pid)
    own = _own_pids(server.pid, service_ports)
    database, s3 = _database_pids(service_ports), _s3_pids()
    server_cpu, client_cpu, own_cpu = _cpu_seconds(pids), time.process_time(), _cpu_seconds(own)
    database_cpu, s3_cpu = _cpu_seconds(database), _cpu_seconds(s3)
    busy, total = _machine_ticks()
    with RssSampler(server.pid) as sampler, _profiled(py_spy, server.pid, result):
        started = time.perf_counter()
        asyncio.run(
            _drive(
                base=base,
                path=submission_path,
                scenario=scenario,
                clients=clients,
                seconds=seconds,
                client_kind=client_kind,
                result=result,
                seed=seed,
            )
        )
        result.elapsed = time.perf_counter() - started
    result.server_cpu_s = _cpu_seconds(pids) - server_cpu
    result.client_cpu_s = time.process_time() - client_cpu
    if database:
        result.database_cpu_s = _cpu_seconds(database) - database_cpu
    if s3:
        result.s3_cpu_s = _cpu_seconds(s3) - s3_cpu
    busy2, total2 = _machine_ticks()
    result.machine_busy = (busy2 - busy) / max(1, total2 - total)
    own_used = _cpu_seconds(own) - own_cpu
    all_used = (busy2 - busy) / os.sysconf("SC_CLK_TCK")
    result.other_cores = max(0.0, all_used - own_used) / result.elapsed
    result.peak_rss_mb = sampler.peak_kb / 1024
    return result


PROFILES = Path(tempfile.gettempdir()) / "homeward-bench-profiles"


@contextlib.contextmanager
def _profiled(py_spy: str | None, pid: int, result: Result) -> Iterator[None]:
    """Sample the server with py-spy (collapsed stacks, one file per scenario)."""
    if py_spy is None:
        yield
        return
    PROFILES.mkdir(exist_ok=True)
    out = PROFILES / f"{result.backend}-w{result.workers}-{result.scenario.name}.txt"
    spy = subprocess.Popen(
        [
            *(py_spy, "record", "--format", "raw", "--subprocesses", "--rate", "200"),
            *("--pid", str(pid), "--output", str(out), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        print(f"[profile {out}]", end=" ", flush=True)


# ---------------------------------------------------------------- services and server


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    title: str
    env: dict[str, str]  # HOMEWARD_* for the server and the seeding step
    ports: tuple[int, ...] = ()  # where its services listen


@contextlib.contextmanager
def sqlite_backend(data_dir: Path) -> Iterator[Backend]:
    yield Backend(
        "sqlite",
        "SQLite + filesystem",
        {"HOMEWARD_DATA_DIR": str(data_dir / "sqlite")},
    )


@contextlib.contextmanager
def postgres_backend(data_dir: Path) -> Iterator[Backend]:
    """PostgreSQL + S3 on a moto server."""
    with postgres_cluster() as database_url, services.moto_s3_server() as endpoint:
        yield Backend(
            "postgres",
            "PostgreSQL 15 + S3 (moto)",
            {
                "HOMEWARD_DATA_DIR": str(data_dir / "postgres"),
                "HOMEWARD_DATABASE_URL": database_url,
                "HOMEWARD_STORAGE_URL": f"s3://bench?endpoint={endpoint}&secure=false",
                "HOMEWARD_S3_ACCESS_KEY": services.S3_ACCESS_KEY,
                "HOMEWARD_S3_SECRET_KEY": services.S3_SECRET_KEY,
            },
            (_port_of(database_url),),
        )


@contextlib.contextmanager
def postgres_files_backend(data_dir: Path) -> Iterator[Backend]:
    """PostgreSQL + filesystem blobs: the server's own cost without moto's."""
    with postgres_cluster() as database_url:
        yield Backend(
            "postgres+files",
            "PostgreSQL 15 + filesystem",
            {
                "HOMEWARD_DATA_DIR": str(data_dir / "postgres-files"),
                "HOMEWARD_DATABASE_URL": database_url,
            },
            (_port_of(database_url),),
        )


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    # The test helper runs PostgreSQL with fsync/synchronous_commit off; a benchmark
    # must pay for durable commits like a real deployment, so restore the defaults.
    services._PG_OPTIONS = ""
    with services.postgres_cluster() as database_url:
        yield database_url


def _port_of(database_url: str) -> int:
    return int(database_url.rsplit(":", 1)[1].split("/")[0])


BACKENDS = {
    "sqlite": sqlite_backend,
    "postgres": postgres_backend,
    "postgres+files": postgres_files_backend,
}


def _server_env(backend: Backend, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    return env | backend.env | {"HOMEWARD_PORT": str(port), "HOMEWARD_SECRET_KEY": SECRET_KEY}


async def seed_form(rt: Runtime, xform: bytes, purpose: str) -> tuple[Principal, Project, Form]:
    """An administrator, a project and the published benchmark form."""
    from server.services import accounts, forms, projects

    async with rt.transaction() as db:
        actor, _ = await accounts.create_user(
            db, email="bench@example.org", password=uuid.uuid4().hex
        )
        await accounts.promote_to_admin(db, actor.id, by=None)
        admin = await accounts.load_principal(db, actor)
        project = await projects.create_project(db, name="Benchmark", description=purpose, by=admin)
        form = await forms.create_form(
            rt,
            db,
            project_id=project.id,
            upload=forms.FormUpload(xform, "application/xml"),
            publish=True,
            ignore_warnings=True,
            by=admin,
        )
    return admin, project, form


async def _seed_async(backend: Backend) -> tuple[int, str]:
    """Admin, project, the published benchmark form, an app user assigned to it."""
    from server.roles import ROLES_BY_SYSTEM
    from server.runtime import close_runtime, open_runtime
    from server.services import accounts
    from server.settings import Settings

    settings = Settings.from_env(backend.env | {"HOMEWARD_SECRET_KEY": SECRET_KEY})
    rt = await open_runtime(settings)
    try:
        admin, project, form = await seed_form(rt, build_xform(), "Ingest benchmark")
        async with rt.transaction() as db:
            app_actor, _, token = await accounts.create_app_user(
                db,
                project_id=project.id,
                display_name="Bench phones",
                secret_key=rt.settings.secret_key,
                by=admin,
            )
            await accounts.assign(
                db,
                actor_id=app_actor.id,
                role=ROLES_BY_SYSTEM["app-user"],
                form_id=form.id,
                by=admin.actor_id,
            )
            return project.id, token
    finally:
        await close_runtime(rt)


@contextlib.contextmanager
def running_server(
    backend: Backend, workers: int, log: IO[bytes]
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    for _ in range(3):  # free_port() can race with another process
        port = services.free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--workers", str(workers)],
            cwd=ROOT,
            env=_server_env(backend, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if services._wait_for_http(process, port, timeout=60):
                break
        except BaseException:
            _stop_server(process)
            raise
        _stop_server(process)
    else:
        log.seek(0)
        raise RuntimeError(f"the server did not start:\n{log.read()[-4000:].decode()}")
    try:
        if workers > 1:  # wait until every worker has booted and answers
            deadline = time.monotonic() + 60
            while len(_descendants(process.pid)) < workers + 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
        yield process, f"http://127.0.0.1:{port}"
    finally:
        _stop_server(process)


def _stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):  # stray workers of the session
        os.killpg(process.pid, signal.SIGKILL)


# ---------------------------------------------------------------- report


def _mb(value: float) -> str:
    return f"{value:.0f}"


def _factor(ours: float, theirs: float, *, lower_is_better: bool = False) -> str:
    if not ours or not theirs:
        return "–"
    ratio = theirs / ours if lower_is_better else ours / theirs
    return f"{ratio:.2f}×"


def table(results: list[Result]) -> str:
    head = (
        "| Backend | Workers | Scenario | Sent | Errors | Submissions/s | p50 ms | p95 ms "
        "| p99 ms | Peak RSS MB | Server CPU ms/sub | Database CPU ms/sub | S3 CPU ms/sub "
        "| Client CPU % of a core | Machine busy | Other load (cores) |"
    )
    lines = [head, _rule(head)]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.workers} | {r.scenario.title} | {r.sent} | {r.errors} "
            f"| {r.rate:.0f} | {r.percentile(50):.0f} | {r.percentile(95):.0f} "
            f"| {r.percentile(99):.0f} | {_mb(r.peak_rss_mb)} "
            f"| {r.server_cpu_ms_per_submission:.1f} "
            f"| {_cpu_cell(r, r.database_cpu_s)} | {_cpu_cell(r, r.s3_cpu_s)} "
            f"| {100 * r.client_cpu_s / r.elapsed:.0f} | {100 * r.machine_busy:.0f} % "
            f"| {r.other_cores:.2f} |"
        )
    return "\n".join(lines)


def _cpu_cell(result: Result, cpu_s: float | None) -> str:
    return "–" if cpu_s is None else f"{result.ms_per_submission(cpu_s):.1f}"


def _rule(head: str) -> str:
    return "|" + "---|" * (head.count("|") - 1)


def targets_table(results: list[Result]) -> str:
    head = (
        "| Backend | Workers | Scenario | Submissions/s | vs target | vs Central "
        "| p99 ms (target < 250) | Peak RSS MB (target < 300) | vs Central RSS (140–440) |"
    )
    lines = [head, _rule(head)]
    for r in results:
        kind = r.scenario.name
        rate_ok = "✅" if r.rate >= TARGET_RATE[kind] else "❌"
        p99_ok = "✅" if r.percentile(99) < TARGET_P99_MS else "❌"
        rss_ok = "✅" if r.peak_rss_mb < TARGET_RSS_MB else "❌"
        lines.append(
            f"| {r.backend} | {r.workers} | {r.scenario.title} | {r.rate:.0f} "
            f"| {rate_ok} {_factor(r.rate, TARGET_RATE[kind])} of {TARGET_RATE[kind]:.0f} "
            f"| {_factor(r.rate, CENTRAL_RATE[kind])} of {CENTRAL_RATE[kind]:.0f} "
            f"| {p99_ok} {r.percentile(99):.0f} "
            f"| {rss_ok} {_mb(r.peak_rss_mb)} "
            f"| {_factor(r.peak_rss_mb, CENTRAL_RSS_MB[0], lower_is_better=True)} – "
            f"{_factor(r.peak_rss_mb, CENTRAL_RSS_MB[1], lower_is_better=True)} smaller |"
        )
    return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if match:
            cpu = match.group(1).strip()
    ram = "unknown"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    pg = "PostgreSQL 15"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        pg = subprocess.run(
            [str(services.PG_BIN / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {
        "Cores (nproc)": str(os.cpu_count()),
        "CPU": cpu,
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Database": pg,
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def replace_block(start: str, end: str, block: str) -> None:
    """Put `block` (which begins with `start` and ends with `end`) in docs/benchmarks.md,
    in place of the old one, or at the end when there is none yet."""
    text = DOCS.read_text() if DOCS.exists() else ""
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(text)


def write_docs(results: list[Result], args: argparse.Namespace, notes: str) -> None:
    facts = "\n".join(f"| {k} | {v} |" for k, v in machine().items())
    figures = (
        "<!-- figures:start (written by `python -m bench.ingest --write-docs`) -->\n"
        f"### Machine\n\n| | |\n|---|---|\n{facts}\n\n"
        f"Run: `python -m bench.ingest --backend {args.backend} --clients {args.clients}"
        f"{f' --seconds {args.seconds:g}' if args.seconds else ''}"
        f"{f' --count {args.count}' if args.count else ''} --client {args.client}`\n\n"
        f"### Figures\n\n{table(results)}\n\n"
        f"### Against the targets and ODK Central\n\n{targets_table(results)}\n"
        f"{notes}"
        "<!-- figures:end -->"
    )
    replace_block("<!-- figures:start", "<!-- figures:end -->", figures)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres", "postgres+files", "all"),
        default="all",
        help="postgres stores blobs on S3 (a moto server); postgres+files on the filesystem, "
        "to see the server's figures without moto's CPU. all runs the three.",
    )
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument(
        "--count", type=int, help="Submissions per scenario (default 3000, 1000 with photos)."
    )
    bound.add_argument("--seconds", type=float, help="Run each scenario this long instead.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent phones (default 8).")
    parser.add_argument(
        "--workers",
        help="Comma-separated uvicorn worker counts (default: 1 for sqlite, 1,2 for postgres).",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="Load generator: a minimal keep-alive HTTP/1.1 client (default; cheap on the "
        "shared CPU) or httpx.AsyncClient.",
    )
    parser.add_argument(
        "--scenario", choices=("xml", "photo", "all"), default="all", help="What to send."
    )
    parser.add_argument(
        "--py-spy",
        metavar="EXE",
        help="Profile the server with this py-spy binary during each scenario; collapsed "
        "stacks go to $TMPDIR/homeward-bench-profiles/.",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="Before each scenario, wait up to this many seconds for other load to stop.",
    )
    parser.add_argument("--write-docs", action="store_true", help="Update docs/benchmarks.md.")
    parser.add_argument("--keep-logs", action="store_true", help="Print the server log path.")
    return parser.parse_args(argv)


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    big = 10**9 if args.seconds else None
    chosen = [
        Scenario("xml", "2 KB XML", False, args.count or big or 3000),
        Scenario("photo", "2 KB XML + 300 KB photo", True, args.count or big or 1000),
    ]
    return [s for s in chosen if args.scenario in ("all", s.name)]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    seconds = args.seconds or 120.0
    backends = tuple(BACKENDS) if args.backend == "all" else (args.backend,)
    results: list[Result] = []
    work = Path(tempfile.mkdtemp(prefix="homeward-bench-"))
    try:
        for name in backends:
            factory = BACKENDS[name]
            worker_counts = [
                int(w) for w in (args.workers or ("1,2" if name == "postgres" else "1")).split(",")
            ]
            print(f"== {name}: starting services", flush=True)
            with factory(work) as backend:
                project_id, token = asyncio.run(_seed_async(backend))
                path = (
                    f"/v1/key/{token}/projects/{project_id}/submission"
                    "?deviceID=collect%3Abench0000000000"
                )
                for workers in worker_counts:
                    log_path = work / f"server-{name}-{workers}.log"
                    with (
                        log_path.open("w+b") as log,
                        running_server(backend, workers, log) as (server, base),
                    ):
                        for n, scenario in enumerate(scenarios(args)):
                            print(
                                f"   {name}, {workers} worker(s): {scenario.title} ...",
                                end=" ",
                                flush=True,
                            )
                            result = run_scenario(
                                backend=name,
                                workers=workers,
                                server=server,
                                base=base,
                                submission_path=path,
                                scenario=scenario,
                                clients=args.clients,
                                seconds=seconds,
                                client_kind=args.client,
                                seed=1000 * workers + n,
                                py_spy=args.py_spy,
                                service_ports=backend.ports,
                                quiet_wait=args.quiet_wait,
                            )
                            results.append(result)
                            print(
                                f"{result.rate:.0f}/s, p99 {result.percentile(99):.0f} ms, "
                                f"{result.errors} errors {result.error_samples[:2]}",
                                flush=True,
                            )
                    if args.keep_logs:
                        kept = Path(tempfile.gettempdir()) / log_path.name
                        shutil.copy(log_path, kept)
                        print(f"   server log: {kept}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(results))
    print()
    print(targets_table(results))
    if args.write_docs:
        write_docs(results, args, "")
        print(f"\nWrote {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
