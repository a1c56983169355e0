"""OData feed benchmark: pages of 1,000 rows from a form with many submissions.

    python -m bench.odata [--count 100000] [--repeat 30] [--backend sqlite|postgres|all]
                          [--write-docs]

Builds the app in-process (SQLite in a temporary folder, or a private PostgreSQL
15 cluster), publishes the 40-question benchmark form,
inserts ``--count`` submissions straight into the database (parsed records and
OData rows as ingest stores them, one second apart; on PostgreSQL then VACUUM ANALYZE, as
autovacuum would), then times requests through the ASGI app:
the first page (``$top=1000``), a page in the middle reached by ``$skiptoken``,
and a filtered page (``$filter`` on the submission date). Prints p50/p99 in ms.
The target is a p50 under 50 ms at 100,000 submissions.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import random
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msgspec
from sqlalchemy import insert, select, text

from bench.forms import FORM_ID, build_xform, submission_xml
from bench.ingest import replace_block
from exports.odata import render_fields
from forms.submission import parse_submission
from server.app import create_app
from server.db.models import Form, FormDef, Submission, SubmissionDef
from server.runtime import Runtime, close_runtime, open_runtime, settle_heap
from server.services import accounts
from server.services.forms import schema_of
from server.settings import Settings
from tests import services

EMAIL = "bench@example.org"
PASSWORD = "bench password 0123"  # noqa: S105 - a throwaway database
PAGE = 1000
CHUNK = 2000
START = datetime(2026, 1, 1, tzinfo=UTC)


async def _setup(client: httpx.AsyncClient, rt: Runtime) -> tuple[dict[str, str], int]:
    async with rt.transaction() as db:
        actor, _ = await accounts.create_user(db, email=EMAIL, password=PASSWORD)
        await accounts.promote_to_admin(db, actor.id, by=None)
    signed_in = await client.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    project = await client.post("/v1/projects", json={"name": "Bench"}, headers=headers)
    project_id: int = project.json()["id"]
    form = await client.post(
        f"/v1/projects/{project_id}/forms?publish=true",
        content=build_xform(),
        headers=headers | {"Content-Type": "application/xml"},
    )
    form.raise_for_status()
    return headers, project_id


async def _insert(rt: Runtime, count: int) -> None:
    async with rt.read() as db:
        form = (await db.execute(select(Form).where(Form.xml_form_id == FORM_ID))).scalar_one()
        form_def = await db.get(FormDef, form.current_def_id)
        assert form_def is not None
        schema = schema_of(form_def)
        form_id, def_id = form.id, form_def.id
    rng = random.Random(7)
    encode = msgspec.json.encode
    for start in range(0, count, CHUNK):
        submissions, defs = [], []
        for number in range(start, min(start + CHUNK, count)):
            instance_id = f"uuid:bench-{number:08d}"
            xml = submission_xml(instance_id, rng, None)
            parsed = parse_submission(xml, schema.repeat_paths)
            shape, row = render_fields(schema, instance_id, parsed.record)
            at = START + timedelta(seconds=number)
            submissions.append(
                {"id": number + 1, "form_id": form_id, "instance_id": instance_id, "draft": False}
                | {"created_at": at, "device_id": "collect:bench", "submitter_id": None}
            )
            defs.append(
                {"id": number + 1, "submission_id": number + 1, "form_def_id": def_id}
                | {"instance_id": instance_id, "xml": xml, "record": encode(parsed.record)}
                | {"odata_shape": shape, "odata_row": row}
                | {"xml_sha256": hashlib.sha256(xml).hexdigest(), "created_at": at}
                | {"current": True, "encrypted": False, "instance_name": parsed.instance_name}
            )
        async with rt.transaction() as db:
            await db.execute(insert(Submission), submissions)
            await db.execute(insert(SubmissionDef), defs)


async def _vacuum(rt: Runtime) -> None:
    """What autovacuum does after a bulk load: statistics, and the visibility map
    that lets PostgreSQL count from an index. A form that filled up over months
    has both; one loaded a second ago would not, for a minute or so."""
    connection = await rt.engine.connect()
    try:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE submissions, submission_defs"))
    finally:
        await connection.close()


async def _time(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], repeat: int
) -> list[float]:
    timings = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = await client.get(url, headers=headers)
        timings.append(1000 * (time.perf_counter() - began))
        response.raise_for_status()
        assert len(response.json()["value"]) == PAGE, url
    return timings


Figure = tuple[str, str, float, float]  # backend, request, p50 ms, p99 ms
MARKERS = ("<!-- odata-figures:start", "<!-- odata-figures:end -->")
TARGET_P50_MS = 50.0


def _report(backend: str, name: str, timings: list[float], into: list[Figure]) -> None:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))]
    p50 = statistics.median(ordered)
    into.append((backend, name, p50, p99))
    print(f"{backend:<9}{name:<34} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms", flush=True)


async def run(count: int, repeat: int, database_url: str) -> list[Figure]:
    backend = "postgres" if database_url else "sqlite"
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="homeward-odata-bench-") as folder:
        settings = Settings(
            data_dir=Path(folder), database_url=database_url, secret_key=secrets.token_hex(32)
        )
        rt = await open_runtime(settings)
        try:
            app = create_app(settings, runtime=rt)
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                headers, project_id = await _setup(client, rt)
                began = time.perf_counter()
                await _insert(rt, count)
                print(f"inserted {count} submissions in {time.perf_counter() - began:.1f} s")
                if database_url:
                    await _vacuum(rt)
                settle_heap()  # as the served app does once it has started
                base = f"/v1/projects/{project_id}/forms/{FORM_ID}.svc/Submissions"
                first = f"{base}?$top={PAGE}"
                timed = await _time(client, first, headers, repeat)
                _report(backend, "first page ($top=1000)", timed, figures)
                url = first
                for _ in range(count // PAGE // 2):
                    body = (await client.get(url, headers=headers)).json()
                    link = urlsplit(body["@odata.nextLink"])
                    url = f"{link.path}?{link.query}"
                timed = await _time(client, url, headers, repeat)
                _report(backend, "middle page ($skiptoken)", timed, figures)
                middle = (START + timedelta(seconds=count // 2)).isoformat().replace("+00:00", "Z")
                filtered = f"{base}?$top={PAGE}&$filter=__system/submissionDate lt {middle}"
                timed = await _time(client, filtered, headers, repeat)
                _report(backend, "filtered page ($filter)", timed, figures)
                counted = f"{first}&$count=true"
                timed = await _time(client, counted, headers, repeat)
                _report(backend, "first page with $count", timed, figures)
        finally:
            await close_runtime(rt)
    return figures


def write_docs(figures: list[Figure], count: int) -> None:
    lines = [
        f"{MARKERS[0]} (written by `python -m bench.odata --write-docs`) -->",
        f"{count:,} submissions of the 40-question form; pages of {PAGE:,} rows through the "
        f"app in-process; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| Backend | Request | p50 ms | p99 ms | Target p50 < 50 ms |",
        "|---|---|---|---|---|",
    ]
    for backend, name, p50, p99 in figures:
        verdict = "✅" if p50 < TARGET_P50_MS else "❌"
        lines.append(f"| {backend} | {name} | {p50:.1f} | {p99:.1f} | {verdict} |")
    lines.append(MARKERS[1])
    replace_block(*MARKERS, "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--write-docs", action="store_true", help="Update docs/benchmarks.md.")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    figures: list[Figure] = []
    if args.backend in ("sqlite", "all"):
        figures += asyncio.run(run(args.count, args.repeat, ""))
    if args.backend in ("postgres", "all"):
        with services.postgres_cluster() as database_url:
            figures += asyncio.run(run(args.count, args.repeat, database_url))
    if args.write_docs:
        write_docs(figures, args.count)


if __name__ == "__main__":
    main()
