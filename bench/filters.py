"""Answer filter benchmark: the office's submissions table filtered by answers.

    python -m bench.filters [--counts 20000,100000] [--repeat 5] [--backend sqlite|postgres|all]

Builds the app in-process (as bench.odata does: SQLite in a temporary folder, or a
private PostgreSQL 15 cluster), inserts N submissions of the 40-question form
straight into the database, writes the form's analysis copy
(`services.analysis.rebuild_copy`), and times the web app's request, a page of
50 with its count (`$top=50&$count=true&$filter=...`), for a few filters on
answers: once read from the stored records in SQL (the path before the copy),
once from the analysis copy (services.filter_copy). Both must select the same
number of submissions.

Per request: wall time (median of --repeat) and the app process's CPU time
(its threads, Polars' included; PostgreSQL's own CPU is not counted), with the
1-minute load average when the run ends, since other work on the machine
stretches wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.forms import FORM_ID
from bench.odata import _insert, _setup, _vacuum
from server.api import odata as odata_api
from server.app import create_app
from server.db.models import Form
from server.runtime import Runtime, close_runtime, open_runtime, settle_heap
from server.services import analysis
from server.settings import Settings
from tests import services

FILTERS = (
    "respondent/age ge 60",
    "contains(respondent/full_name, 're')",
    "contains(needs/needs, 'legal')",
    "migration/return_date ge 2025-10-01 and respondent/sex eq 'female'",
)


@dataclass(frozen=True, slots=True)
class Figure:
    backend: str
    count: int
    expression: str
    path: str  # "records (SQL)" | "analysis copy"
    wall_ms: float
    cpu_ms: float
    matched: int
    load: float


async def _sql_only(*_: Any) -> dict[Any, Any]:
    return {}


async def _time(
    client: httpx.AsyncClient,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    repeat: int,
) -> tuple[float, float, int]:
    walls, cpus = [], []
    matched = -1
    for _ in range(repeat):
        began, cpu = time.perf_counter(), time.process_time()
        response = await client.get(url, params=params, headers=headers)
        cpus.append(1000 * (time.process_time() - cpu))
        walls.append(1000 * (time.perf_counter() - began))
        response.raise_for_status()
        matched = response.json()["@odata.count"]
    return statistics.median(walls), statistics.median(cpus), matched


async def _form_id(rt: Runtime) -> int:
    async with rt.read() as db:
        return (await db.execute(select(Form.id).where(Form.xml_form_id == FORM_ID))).scalar_one()


async def run(count: int, repeat: int, database_url: str) -> list[Figure]:
    backend = "postgres" if database_url else "sqlite"
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="homeward-filter-bench-") as folder:
        settings = Settings(
            data_dir=Path(folder), database_url=database_url, secret_key=secrets.token_hex(32)
        )
        rt = await open_runtime(settings)
        try:
            app = create_app(settings, runtime=rt)
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                headers, project_id = await _setup(client, rt)
                await _insert(rt, count)
                if database_url:
                    await _vacuum(rt)
                began = time.perf_counter()
                copied = await analysis.rebuild_copy(rt, await _form_id(rt))
                print(
                    f"{backend}: {count:,} inserted, copy of {copied:,} written in "
                    f"{time.perf_counter() - began:.1f} s",
                    flush=True,
                )
                settle_heap()
                url = f"/v1/projects/{project_id}/forms/{FORM_ID}.svc/Submissions"
                for expression in FILTERS:
                    params = {"$top": "50", "$count": "true", "$filter": expression}
                    # The path before the copy: every answer read from the records in SQL.
                    real = getattr(odata_api, "decide_from_copy")  # noqa: B009
                    setattr(odata_api, "decide_from_copy", _sql_only)  # noqa: B010
                    try:
                        sql = await _time(client, url, params, headers, repeat)
                    finally:
                        setattr(odata_api, "decide_from_copy", real)  # noqa: B010
                    copy = await _time(client, url, params, headers, repeat)
                    assert sql[2] == copy[2], (expression, sql, copy)
                    load = os.getloadavg()[0]
                    for path, (wall, cpu, matched) in (("records (SQL)", sql), ("copy", copy)):
                        figure = Figure(backend, count, expression, path, wall, cpu, matched, load)
                        figures.append(figure)
                        print(
                            f"{backend:<9}{count:>8,} {path:<14} {wall:8.0f} ms wall "
                            f"{cpu:8.0f} ms CPU  {matched:>7,} matched  load {load:.2f}  "
                            f"{expression}",
                            flush=True,
                        )
        finally:
            await close_runtime(rt)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--counts", default="20000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    counts = [int(c) for c in args.counts.split(",")]
    if args.backend in ("sqlite", "all"):
        for count in counts:
            asyncio.run(run(count, args.repeat, ""))
    if args.backend in ("postgres", "all"):
        for count in counts:  # a fresh cluster each: ids are inserted from 1
            with services.postgres_cluster() as database_url:
                asyncio.run(run(count, args.repeat, database_url))


if __name__ == "__main__":
    main()
