"""Abuse benchmark: Collect ingest while someone floods sign-in, and the memory an
oversized anonymous body costs.

    python -m bench.abuse [--submissions 400] [--phones 4] [--write-docs]

Starts ``python -m server.cli serve`` on SQLite + filesystem (the backend with
one writer, where a stalled transaction hurts most), as bench/ingest.py does,
seeds the benchmark form and an app user, then measures:

1. submission latency with nobody else on the server;
2. the same while wrong passwords arrive, 40 at a time, a round of 80 every
   second until the phones are done: from one address at one account, then from
   many addresses at many accounts (no budget is ever spent, every attempt is
   checked in full);
3. the server's RSS before and after an anonymous 20 MB ``PUT`` of submission
   XML, and how long a declared-but-unsent 90 MB body takes to be answered.

Everything is bounded by counts and time limits; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.forms import submission_xml
from bench.ingest import (
    _multipart,
    _rss_kb,
    _seed_async,
    running_server,
    sqlite_backend,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "# Sign-in floods and oversized bodies"
OPENROSA = {"X-OpenRosa-Version": "1.0", "User-Agent": "org.odk.collect.android/bench"}


@dataclass
class Run:
    title: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    logins: dict[int, int] = field(default_factory=dict)  # status -> count

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def ingest(base: str, path: str, count: int, phones: int, run: Run) -> None:
    remaining = count

    async def phone(number: int) -> None:
        nonlocal remaining
        rng = random.Random(number)
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            while remaining > 0:
                remaining -= 1
                instance_id = f"uuid:{uuid.uuid4()}"
                body, content_type = _multipart(submission_xml(instance_id, rng, None), None)
                started = time.perf_counter()
                response = await client.post(
                    path, content=body, headers=OPENROSA | {"Content-Type": content_type}
                )
                run.latencies_ms.append(1000 * (time.perf_counter() - started))
                if response.status_code != 201:
                    run.errors += 1

    await asyncio.gather(*(phone(n) for n in range(phones)))


async def flood(
    base: str, stop: asyncio.Event, run: Run, *, at_once: int, per_round: int, botnet: bool
) -> None:
    """Wrong passwords, ``at_once`` in flight, ``per_round`` a round, until stopped.

    ``botnet``: every attempt from another address (X-Forwarded-For, which uvicorn
    believes from 127.0.0.1) for another e-mail, so no budget is ever spent and
    every attempt costs a full argon2 check: the server's worst case.
    """
    limit = asyncio.Semaphore(at_once)
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def attempt(n: int) -> None:
            email = f"user{n}@example.org" if botnet else "bench@example.org"
            headers = {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}
            async with limit:
                response = await client.post(
                    "/v1/sessions",
                    json={"email": email, "password": f"guess-{n}"},
                    headers=headers if botnet else {},
                )
                run.logins[response.status_code] = run.logins.get(response.status_code, 0) + 1

        n = 0
        while not stop.is_set():
            started = time.monotonic()
            await asyncio.gather(*(attempt(n + i) for i in range(per_round)))
            n += per_round
            # One round a second at most: 80 wrong passwords a second, sustained.
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


async def measure(base: str, path: str, count: int, phones: int) -> list[Run]:
    quiet = Run("Collect ingest alone")
    await ingest(base, path, count, phones, quiet)
    runs = [quiet]
    for botnet in (False, True):
        flooded = Run(
            "… during a flood from many addresses at many accounts (every attempt checked)"
            if botnet
            else "… during a flood from one address at one account"
        )
        stop = asyncio.Event()
        attacker = asyncio.create_task(
            flood(base, stop, flooded, at_once=40, per_round=80, botnet=botnet)
        )
        await asyncio.sleep(0.2)  # the first round is in flight before the phones start
        try:
            await ingest(base, path, count, phones, flooded)
        finally:
            stop.set()
            await attacker
        runs.append(flooded)
    return runs


async def oversized(base: str, project_id: int, server_pid: int) -> dict[str, float]:
    """RSS around an anonymous 20 MB PUT; time to answer a declared 90 MB body."""
    rss_before = _rss_kb(server_pid) / 1024
    xml = b"<data id='bench'>" + b"<n>x</n>" * (20_000_000 // 8) + b"</data>"
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        started = time.perf_counter()
        response = await client.put(
            f"/v1/projects/{project_id}/forms/bench/submissions/uuid:big",
            content=xml,
            headers={"Content-Type": "application/xml"},
        )
        put_ms = 1000 * (time.perf_counter() - started)
    status = response.status_code
    await asyncio.sleep(1)
    rss_after = _rss_kb(server_pid) / 1024
    declared_ms, declared_status = await _declared_only(base, project_id)
    return {
        "put_status": status,
        "put_ms": put_ms,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "declared_status": declared_status,
        "declared_ms": declared_ms,
    }


async def _declared_only(base: str, project_id: int) -> tuple[float, int]:
    """Send the head of a 90 MB upload and no body; how soon does an answer come?"""
    host, port = re.match(r"http://([^:]+):(\d+)", base).groups()  # type: ignore[union-attr]
    head = (
        f"POST /v1/projects/{project_id}/forms/bench/submissions HTTP/1.1\r\n"
        f"Host: {host}\r\nContent-Type: application/xml\r\nContent-Length: 90000000\r\n\r\n"
    ).encode()

    def exchange() -> tuple[float, int]:
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            started = time.perf_counter()
            sock.sendall(head)
            answer = sock.recv(4096)
            elapsed = 1000 * (time.perf_counter() - started)
        return elapsed, int(answer.split(b" ", 2)[1]) if answer else 0

    return await asyncio.to_thread(exchange)


def report(runs: list[Run], memory: dict[str, float], phones: int) -> str:
    quiet = runs[0]
    lines = [
        SECTION,
        "",
        f"`python -m bench.abuse` on SQLite + filesystem, one process, {phones} phones "
        f"sending XML-only submissions; {len(quiet.latencies_ms)} submissions per run. "
        "The attacker sends wrong passwords, 40 in flight, a round of 80 every second "
        "(or as soon as the last round is answered) while the phones send. "
        f"Machine: {sys.platform}, 2 cores shared with other work, so the figures are noisy.",
        "",
        "| Run | Submissions | Errors | p50 ms | p95 ms | p99 ms | p99 / alone | Sign-in answers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        ratio = run.percentile(99) / quiet.percentile(99) if quiet.percentile(99) else 0.0
        logins = ", ".join(f"{n}× {status}" for status, n in sorted(run.logins.items())) or "–"
        lines.append(
            f"| {run.title} | {len(run.latencies_ms)} | {run.errors} "
            f"| {run.percentile(50):.0f} | {run.percentile(95):.0f} | {run.percentile(99):.0f} "
            f"| {ratio:.2f}× | {logins} |"
        )
    lines += [
        "",
        "Target: p99 within 2× of the run alone. 429 answers are throttled before any "
        "argon2 work; in the many-address run every attempt is checked, two at a time, "
        "outside any transaction.",
        "",
        f"Anonymous 20 MB `PUT` of submission XML: HTTP {memory['put_status']:.0f} in "
        f"{memory['put_ms']:.0f} ms (the client's send time included); server RSS "
        f"{memory['rss_before_mb']:.0f} MB before, {memory['rss_after_mb']:.0f} MB after. "
        f"A declared 90 MB body that never comes: HTTP {memory['declared_status']:.0f} "
        f"after {memory['declared_ms']:.0f} ms.",
        "",
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOCS.read_text()
    if SECTION in text:
        start = text.index(SECTION)
        following = text.find("\n# ", start + len(SECTION))
        text = text[:start] + section + (text[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=400)
    parser.add_argument("--phones", type=int, default=4)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="homeward-abuse-") as tmp,
        sqlite_backend(Path(tmp)) as backend,
    ):
        project_id, token = asyncio.run(_seed_async(backend))
        log_path = Path(tmp) / "server.log"
        with log_path.open("w+b") as log, running_server(backend, 1, log) as (server, base):
            path = f"/v1/key/{token}/projects/{project_id}/submission"
            runs = asyncio.run(measure(base, path, args.submissions, args.phones))
            memory = asyncio.run(oversized(base, project_id, server.pid))
    section = report(runs, memory, args.phones)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
