"""Check round benchmark: every check over a form with many submissions.

    python -m bench.checks --data DIR [--form bench_reintegration] [--checks duplicate,...]

Opens a Homeward data folder seeded by bench.exports (`--keep DIR`: SQLite file,
blobs and the analysis copy; copy it first, the run may write to it) and runs
the form's check round as the button and the worker do
(services.cleaning.run_form_checks: the batches read from the analysis copy and
the row store beyond it, each tabulated to the columns the checks read and
checked as it arrives, exports.checks.CheckRound), with the form's stored
settings or `--checks`. Nothing is stored.

Measured in this process: wall time, CPU time (all threads, Polars' included),
the peak resident set (the kernel's ru_maxrss, so run one size per process),
the resident set before the round (imports and an open database), and the
1-minute load average.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import secrets
import time
from pathlib import Path

import msgspec
from sqlalchemy import select

from bench.forms import FORM_ID
from exports.checks import CHECKS
from server.db.models import Form
from server.runtime import close_runtime, open_runtime
from server.services import cleaning
from server.services.check_findings import form_settings
from server.settings import Settings


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def run(data: Path, form_id: str, checks: tuple[str, ...] | None) -> None:
    settings = Settings(data_dir=data, secret_key=secrets.token_hex(32))
    rt = await open_runtime(settings)
    try:
        async with rt.read() as db:
            form = (await db.execute(select(Form).where(Form.xml_form_id == form_id))).scalar_one()
            stored, _ = await form_settings(db, form.id)
        chosen = stored if checks is None else msgspec.structs.replace(stored, checks=checks)
        before = _rss_mb()
        began, cpu = time.perf_counter(), time.process_time()
        report = await cleaning.run_form_checks(rt, form, chosen)
        wall, used = time.perf_counter() - began, time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"checks {','.join(chosen.checks)}: {report.checked:,} submissions checked, "
            f"{len(report.suggestions):,} suggestions, {len(report.not_evaluated)} not evaluated; "
            f"{wall:.1f} s wall, {used:.1f} s CPU, peak RSS {peak:.0f} MB "
            f"(before the round {before:.0f} MB), load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    finally:
        await close_runtime(rt)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--form", default=FORM_ID)
    parser.add_argument("--checks", default=None, help=f"Comma-separated, of {', '.join(CHECKS)}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    checks = tuple(args.checks.split(",")) if args.checks else None
    asyncio.run(run(args.data, args.form, checks))


if __name__ == "__main__":
    main()
