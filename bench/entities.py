"""Entity-list benchmark: a 100,000-returnee list served to Collect, and updates from submissions.

    python -m bench.entities [--count 100000] [--updates 1000] [--clients 8]
                             [--backend sqlite|postgres|all] [--workers 1,2] [--write-docs]

Publishes an intake form that declares the `returnees` list (five properties) and
a follow-up form that reads and updates it, and writes `--count` entities as
ingest stores them; then starts the server as it is deployed (bench.ingest's
machinery: `python -m server.cli serve` with its workers, SQLite or a private
PostgreSQL with durable commits) and, over loopback, times what Collect does on
every sync (the follow-up's manifest, with the list's hash) and the CSV download
(wall time, the server's CPU and its RSS growth), then `--updates` follow-up
submissions, each updating one entity, from `--clients` concurrent phones.
Afterwards the list is downloaded again to check every update is in it.
ODK Central takes 18-48 s to serve a 100k list (its issue #1901); the target is
under 1 s with flat memory, and 1,000 updates a second.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
from sqlalchemy import insert, select, text

from bench.ingest import (
    BACKENDS,
    SECRET_KEY,
    Backend,
    RssSampler,
    _cpu_seconds,
    _database_pids,
    _descendants,
    _multipart,
    _poster,
    _rss_kb,
    replace_block,
    running_server,
)
from forms.xlsform import compile_xlsform
from server.app import create_app
from server.db.models import Dataset, EntityDef, EntityRow
from server.runtime import Runtime, close_runtime, open_runtime
from server.services import accounts
from server.services.entity_lists import render_stored_line
from server.settings import Settings

EMAIL = "bench@example.org"
PASSWORD = "bench password 0123"  # noqa: S105 - a throwaway database
CHUNK = 5000
DOWNLOADS = 3
MARKERS = ("<!-- entity-figures:start", "<!-- entity-figures:end -->")
# The intake form's properties, in the order it declares them (the CSV's columns).
PROPERTIES = ("first_name", "municipality", "return_date", "counsellor", "status")

INTAKE = """
| survey |
| | type | name | label | save_to |
| | text | first_name | First name | first_name |
| | text | municipality | Municipality | municipality |
| | date | return_date | Return date | return_date |
| | text | counsellor | Counsellor | counsellor |
| | text | status | Status | status |
| entities |
| | list_name | label |
| | returnees | concat(${first_name}, ' ', ${municipality}) |
| settings |
| | form_id | version |
| | intake | 1 |
"""
FOLLOW_UP = """
| survey |
| | type | name | label | save_to |
| | select_one_from_file returnees.csv | who | Who | |
| | text | status | Status | status |
| entities |
| | list_name | entity_id |
| | returnees | ${who} |
| settings |
| | form_id | version |
| | follow_up | 1 |
"""


async def _setup(client: httpx.AsyncClient, rt: Runtime) -> tuple[dict[str, str], int, str]:
    async with rt.transaction() as db:
        actor, _ = await accounts.create_user(db, email=EMAIL, password=PASSWORD)
        await accounts.promote_to_admin(db, actor.id, by=None)
    signed_in = await client.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    project = await client.post("/v1/projects", json={"name": "Bench"}, headers=headers)
    pid: int = project.json()["id"]
    for markdown in (INTAKE, FOLLOW_UP):
        xml = compile_xlsform(markdown.encode(), file_name="f.md").xml
        published = await client.post(
            f"/v1/projects/{pid}/forms?publish=true",
            content=xml,
            headers=headers | {"Content-Type": "application/xml"},
        )
        published.raise_for_status()
    user = await client.post(
        f"/v1/projects/{pid}/app-users", json={"displayName": "Phone"}, headers=headers
    )
    actor_id, token = user.json()["id"], user.json()["token"]
    assigned = await client.post(
        f"/v1/projects/{pid}/forms/follow_up/assignments/app-user/{actor_id}", headers=headers
    )
    assigned.raise_for_status()
    return headers, pid, f"/v1/key/{token}/projects/{pid}"


async def _load(rt: Runtime, count: int) -> list[str]:
    """`count` entities at version 1, written as create_entity writes them."""
    async with rt.read() as db:
        dataset_id = await db.scalar(select(Dataset.id).where(Dataset.name == "returnees"))
    assert dataset_id is not None
    encode = msgspec.json.encode
    now = datetime.now(UTC)
    ids: list[str] = []
    for start in range(0, count, CHUNK):
        entities, defs = [], []
        for number in range(start, min(start + CHUNK, count)):
            entity_uuid = str(uuid.UUID(int=number + 1, version=4))
            ids.append(entity_uuid)
            values = {
                "first_name": f"Name{number}",
                "municipality": "Shkodër",
                "return_date": "2026-03-01",
                "counsellor": "Counsellor 7",
                "status": "registered",
            }
            data = encode(values)
            entities.append(
                {"id": number + 1, "dataset_id": dataset_id, "uuid": entity_uuid}
                | {"label": f"Name{number} Shkodër", "version": 1, "data": data}
                | {"current_def_id": number + 1, "creator_id": None, "created_at": now}
                | render_stored_line(PROPERTIES, entity_uuid, f"Name{number} Shkodër", 1, values)
            )
            defs.append(
                {"id": number + 1, "entity_id": number + 1, "version": 1}
                | {"label": f"Name{number} Shkodër", "data": data, "data_received": data}
                | {"created_at": now, "current": True}
            )
        async with rt.transaction() as db:
            await db.execute(insert(EntityRow), entities)
            await db.execute(insert(EntityDef), defs)
    if rt.engine.dialect.name == "postgresql":
        async with rt.transaction() as db:  # the sequences, past the ids given above
            await db.execute(
                text("SELECT setval('entities_id_seq', (SELECT max(id) FROM entities))")
            )
            await db.execute(
                text("SELECT setval('entity_defs_id_seq', (SELECT max(id) FROM entity_defs))")
            )
        connection = await rt.engine.connect()
        try:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE entities, entity_defs"))
        finally:
            await connection.close()
    return ids


@dataclass
class Figures:
    """One backend and worker count: what Collect waits for, and what it costs the server."""

    backend: str
    workers: int
    load: float  # the machine's 1-minute load average when the run began
    manifest_ms: float = 0.0
    csv_bytes: int = 0
    csv_s: float = 0.0  # median wall time of a download
    csv_server_cpu_s: float = 0.0  # per download
    csv_database_cpu_s: float | None = None
    csv_rss_growth_mb: float = 0.0
    updates: int = 0
    update_errors: int = 0
    update_s: float = 0.0
    update_p50_ms: float = 0.0
    update_p99_ms: float = 0.0
    update_server_cpu_s: float = 0.0
    update_database_cpu_s: float | None = None
    updated_rows: int = 0  # entities at version 2 in the list downloaded afterwards
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        ok = self.updates - self.update_errors
        return ok / self.update_s if self.update_s else 0.0

    def per_update_ms(self, cpu_s: float | None) -> str:
        ok = self.updates - self.update_errors
        return f"{1000 * cpu_s / ok:.2f} ms" if cpu_s is not None and ok else "–"


def _update_xml(entity_uuid: str, number: int) -> bytes:
    return (
        f'<data id="follow_up" version="1"><who>{entity_uuid}</who><status>wave {number}</status>'
        f"<meta><instanceID>uuid:{uuid.uuid4()}</instanceID>"
        f'<entity dataset="returnees" update="1" id="{entity_uuid}" baseVersion="1"'
        ' trunkVersion="1" branchId=""/></meta></data>'
    ).encode()


async def _seed(backend: Backend, count: int) -> tuple[str, list[str]]:
    """The forms, the app user and `count` entities, written before the server starts."""
    settings = Settings.from_env(backend.env | {"HOMEWARD_SECRET_KEY": SECRET_KEY})
    rt = await open_runtime(settings)
    try:
        app = create_app(settings, runtime=rt)
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            _, _, key_base = await _setup(client, rt)
        began = time.perf_counter()
        ids = await _load(rt, count)
        print(f"{backend.name}: loaded {count:,} entities in {time.perf_counter() - began:.1f} s")
        return key_base, ids
    finally:
        await close_runtime(rt)


def _download(client: httpx.Client, url: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    with client.stream("GET", url) as response:
        response.raise_for_status()
        body = b"".join(response.iter_bytes())
    return time.perf_counter() - began, body


async def _send_updates(
    base: str, path: str, ids: list[str], clients: int, figures: Figures
) -> list[float]:
    """`clients` phones, each sending follow-ups (one entity each) until `ids` run out."""
    queue = list(reversed(ids))
    latencies: list[float] = []

    async def phone() -> None:
        async with _poster("raw", base, path) as post:
            while queue:
                number = len(queue)
                body, content_type = _multipart(_update_xml(queue.pop(), number), None)
                began = time.perf_counter()
                try:
                    status = await post(body, content_type)
                except (OSError, asyncio.IncompleteReadError) as error:
                    status, detail = 0, repr(error)
                else:
                    detail = f"HTTP {status}"
                latencies.append(1000 * (time.perf_counter() - began))
                if status != 201:
                    figures.update_errors += 1
                    if len(figures.errors) < 5:
                        figures.errors.append(detail)

    await asyncio.gather(*(phone() for _ in range(clients)))
    return latencies


def _measure(
    backend: Backend,
    server: subprocess.Popen[bytes],
    base: str,
    key_base: str,
    ids: list[str],
    clients: int,
    figures: Figures,
) -> None:
    server_pids = _descendants(server.pid)
    database_pids = _database_pids(backend.ports)
    with httpx.Client(base_url=base, timeout=600) as client:
        manifest_ms = []
        for _ in range(20):
            began = time.perf_counter()
            client.get(f"{key_base}/forms/follow_up/manifest").raise_for_status()
            manifest_ms.append(1000 * (time.perf_counter() - began))
        figures.manifest_ms = statistics.median(manifest_ms)
        url = f"{key_base}/forms/follow_up/attachments/returnees.csv"
        _download(client, url)  # warm: the server's first page, the database's cache
        baseline_kb = sum(_rss_kb(pid) for pid in server_pids)
        walls = []
        server_cpu, database_cpu = _cpu_seconds(server_pids), _cpu_seconds(database_pids)
        with RssSampler(server.pid) as sampler:
            for _ in range(DOWNLOADS):
                wall, body = _download(client, url)
                walls.append(wall)
        figures.csv_s = statistics.median(walls)
        figures.csv_bytes = len(body)
        figures.csv_server_cpu_s = (_cpu_seconds(server_pids) - server_cpu) / DOWNLOADS
        if database_pids:
            used = _cpu_seconds(database_pids) - database_cpu
            figures.csv_database_cpu_s = used / DOWNLOADS
        figures.csv_rss_growth_mb = max(0, sampler.peak_kb - baseline_kb) / 1024

        path = f"{key_base}/submission?deviceID=collect%3Abench0000000000"
        asyncio.run(_send_updates(base, path, ids[-clients * 4 :], clients, Figures("", 0, 0)))
        sent = ids[: figures.updates]
        server_cpu, database_cpu = _cpu_seconds(server_pids), _cpu_seconds(database_pids)
        began = time.perf_counter()
        latencies = asyncio.run(_send_updates(base, path, sent, clients, figures))
        figures.update_s = time.perf_counter() - began
        figures.update_server_cpu_s = _cpu_seconds(server_pids) - server_cpu
        if database_pids:
            figures.update_database_cpu_s = _cpu_seconds(database_pids) - database_cpu
        ordered = sorted(latencies)
        figures.update_p50_ms = ordered[len(ordered) // 2]
        figures.update_p99_ms = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        _, body = _download(client, url)
        updated = set(sent)
        figures.updated_rows = sum(
            1
            for row in csv.reader(io.StringIO(body.decode()))
            if row[0] in updated and row[2] == "2"
        )


def run(name: str, count: int, updates: int, clients: int, workers: list[int]) -> list[Figures]:
    results: list[Figures] = []
    work = Path(tempfile.mkdtemp(prefix="homeward-entity-bench-"))
    try:
        with BACKENDS[name](work) as backend:
            key_base, ids = asyncio.run(_seed(backend, count))
            warm_ids = ids[count // 2 :]
            for run_number, worker_count in enumerate(workers):
                # Each run updates entities no earlier run touched (version 1 to 2).
                chosen = ids[run_number * updates : (run_number + 1) * updates]
                chosen += warm_ids[run_number * clients * 4 : (run_number + 1) * clients * 4]
                figures = Figures(
                    name.removesuffix("+files"), worker_count, os.getloadavg()[0], updates=updates
                )
                log_path = work / f"server-{name}-{worker_count}.log"
                with (
                    log_path.open("w+b") as log,
                    running_server(backend, worker_count, log) as (server, base),
                ):
                    _measure(backend, server, base, key_base, chosen, clients, figures)
                results.append(figures)
                print(_summary(figures), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _summary(f: Figures) -> str:
    return (
        f"{f.backend}, {f.workers} worker(s), load {f.load:.1f}: manifest {f.manifest_ms:.1f} ms; "
        f"CSV {f.csv_bytes / 1e6:.1f} MB in {f.csv_s:.2f} s (server CPU {f.csv_server_cpu_s:.2f} s"
        f", RSS +{f.csv_rss_growth_mb:.0f} MB); {f.updates} updates, {clients_text(f)}"
    )


def clients_text(f: Figures) -> str:
    return (
        f"{f.rate:.0f}/s, p50 {f.update_p50_ms:.0f} ms, p99 {f.update_p99_ms:.0f} ms, "
        f"server CPU {f.per_update_ms(f.update_server_cpu_s)}/update, "
        f"{f.update_errors} errors {f.errors[:2]}, {f.updated_rows} at version 2"
    )


def table(results: list[Figures], count: int, clients: int) -> str:
    cpu_note = (
        "PostgreSQL's own processes"
        if any(r.update_database_cpu_s is not None for r in results)
        else ""
    )
    lines = [
        f"{count:,} entities with five properties; a served process (`homeward serve`) "
        f"on loopback; {DOWNLOADS} downloads; {clients} concurrent clients sending "
        f"follow-ups; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| Backend | Workers | Load (1 min) | Measure | Wall | Server CPU | Database CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        head = f"| {r.backend} | {r.workers} | {r.load:.1f}"
        database = (
            f"{r.csv_database_cpu_s:.2f} s" if r.csv_database_cpu_s is not None else "(in server)"
        )
        update_database = (
            r.per_update_ms(r.update_database_cpu_s)
            if r.update_database_cpu_s is not None
            else "(in server)"
        )
        lines += [
            f"{head} | manifest with the list's hash, p50 | {r.manifest_ms:.1f} ms | – | – |",
            f"{head} | CSV of {count:,} entities ({r.csv_bytes / 1e6:.1f} MB), median "
            f"| {r.csv_s:.2f} s | {r.csv_server_cpu_s:.2f} s | {database} |",
            f"{head} | server RSS growth during the downloads | {r.csv_rss_growth_mb:.0f} MB "
            "| – | – |",
            f"{head} | updates from {r.updates:,} follow-up submissions "
            f"({r.update_errors} errors, {r.updated_rows:,} entities at version 2 after) "
            f"| **{r.rate:.0f}/s** (p50 {r.update_p50_ms:.0f} ms, p99 {r.update_p99_ms:.0f} ms) "
            f"| {r.per_update_ms(r.update_server_cpu_s)} per update "
            f"| {update_database} |",
        ]
    if cpu_note:
        lines += ["", f"Database CPU: {cpu_note}; on SQLite it is in the server's."]
    return "\n".join(lines)


def write_docs(results: list[Figures], count: int, clients: int) -> None:
    block = "\n".join(
        [
            f"{MARKERS[0]} (written by `python -m bench.entities --write-docs`) -->",
            table(results, count, clients),
            MARKERS[1],
        ]
    )
    replace_block(*MARKERS, block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8, help="Concurrent phones (default 8).")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument(
        "--workers",
        help="Comma-separated server worker counts (default: 1 for sqlite, 1,2 for postgres).",
    )
    parser.add_argument("--write-docs", action="store_true", help="Update docs/benchmarks.md.")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    results: list[Figures] = []
    for name in ("sqlite", "postgres"):
        if args.backend not in (name, "all"):
            continue
        workers = args.workers or ("1" if name == "sqlite" else "1,2")
        backend = "postgres+files" if name == "postgres" else name
        results += run(
            backend, args.count, args.updates, args.clients, [int(w) for w in workers.split(",")]
        )
    print()
    print(table(results, args.count, args.clients))
    if args.write_docs:
        write_docs(results, args.count, args.clients)


if __name__ == "__main__":
    main()
