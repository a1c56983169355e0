"""Exports as jobs: asked for once, written by any app process, downloaded later.

A long export over a flaky connection should not have to hold that connection
for its whole run. `create_run` records what was asked (checked, with the
personal-data decision already made for the person asking); the worker of any
app process claims a queued run through the database, writes the export to a
temporary file with the same writers and export slots as a download, reports
progress (submissions written of the total) and stores the file as an object
in the BlobStore, where it is kept for `KEEP` and then removed. A run whose
process died is claimed again when its claim expires and starts over: it
survives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from exports import ExportError, ExportOptions
from server.db.models import ExportRun, Form, Project
from server.problems import Problem
from server.runtime import Runtime
from server.services import cleaning as cleaning_service
from server.services import exports as export_service
from server.services.export_slots import ExportSlot, export_slots
from server.services.personal import PersonalView, form_personal_fields

__all__ = [
    "KEEP",
    "ExportRequest",
    "create_run",
    "file_object",
    "forget_runs",
    "kept_personal",
    "run_export_worker",
    "run_waiting_exports",
]

log = logging.getLogger("homeward.export_runs")

KEEP = timedelta(hours=24)  # how long a finished export's file is kept
CLAIM = timedelta(minutes=2)  # renewed while the export runs; expires if its process dies
HEARTBEAT_SECONDS = 5.0
WORKER = f"{socket.gethostname()}:{os.getpid()}"
QUEUED, RUNNING, DONE, FAILED, EXPIRED = "queued", "running", "done", "failed", "expired"


class ExportRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What an export run was asked for, as the download routes' query options.

    `options` are ExportOptions without the pseudonym key, which is read from
    the project when the run starts (a secret is not copied into every job).
    """

    options: dict[str, Any]
    filter: str | None = None
    start: str | None = None
    end: str | None = None
    review_state: str | None = None
    attachments: bool = True
    deleted_fields: bool = False
    geo_table: str | None = None
    geo_field: str | None = None
    # The form's cleaning log applied (`cleaned=true`), as the download does.
    cleaned: bool = False


def request_for(options: ExportOptions, **query: Any) -> ExportRequest:
    settings = msgspec.to_builtins(options)
    settings.pop("pseudonym_key", None)
    return ExportRequest(options=settings, **query)


def kept_personal(run: ExportRun) -> bool:
    """Whether the run's file holds personal fields in clear (asked with personal=keep)."""
    request = msgspec.json.decode(run.request, type=ExportRequest)
    return bool(request.options.get("personal", "keep") == "keep")


def file_object(run: ExportRun, file_name: str) -> str:
    return f"exports/{run.id}/{file_name}"


def _now() -> datetime:
    return datetime.now(UTC)


async def create_run(
    db: AsyncSession, form: Form, requested_by: int | None, format: str, request: ExportRequest
) -> ExportRun:
    run = ExportRun(
        form_id=form.id,
        requested_by=requested_by,
        format=format,
        request=msgspec.json.encode(request),
        state=QUEUED,
        done=0,
        created_at=_now(),
    )
    db.add(run)
    await db.flush()
    return run


async def _claim_next(rt: Runtime, worker: str) -> int | None:
    """The oldest queued run, or a running one whose process stopped renewing it."""
    now = _now()
    async with rt.transaction() as db:
        candidates = (
            await db.scalars(
                select(ExportRun.id)
                .where(
                    (ExportRun.state == QUEUED)
                    | ((ExportRun.state == RUNNING) & (ExportRun.claimed_until < now))
                )
                .order_by(ExportRun.id)
                .limit(5)
            )
        ).all()
        for run_id in candidates:
            claimed = await db.execute(
                update(ExportRun)
                .where(
                    ExportRun.id == run_id,
                    (ExportRun.state == QUEUED)
                    | ((ExportRun.state == RUNNING) & (ExportRun.claimed_until < now)),
                )
                .values(
                    state=RUNNING,
                    claimed_by=worker,
                    claimed_until=now + CLAIM,
                    started_at=now,
                    done=0,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                return run_id
    return None


@dataclass(slots=True)
class _Progress:
    done: int = 0


async def _heartbeat(rt: Runtime, run_id: int, worker: str, progress: _Progress) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        async with rt.transaction() as db:
            await db.execute(
                update(ExportRun)
                .where(ExportRun.id == run_id, ExportRun.claimed_by == worker)
                .values(done=progress.done, claimed_until=_now() + CLAIM)
                .execution_options(synchronize_session=False)
            )


async def _finish(rt: Runtime, run_id: int, worker: str, **values: Any) -> None:
    async with rt.transaction() as db:
        await db.execute(
            update(ExportRun)
            .where(ExportRun.id == run_id, ExportRun.claimed_by == worker)
            .values(finished_at=_now(), claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )


async def _prepare(
    rt: Runtime, run_id: int, progress: _Progress
) -> tuple[ExportRun, str, export_service.ExportJob, export_service.Page, int]:
    async with rt.read() as db:
        run = await db.get(ExportRun, run_id)
        assert run is not None
        form = await db.get(Form, run.form_id)
        project = None if form is None else await db.get(Project, form.project_id)
        if form is None or project is None or form.deleted_at is not None:
            raise ExportError("The form was deleted")
        request = msgspec.json.decode(run.request, type=ExportRequest)
        options = msgspec.convert(
            {**request.options, "pseudonym_key": project.pseudonym_secret.encode()},
            ExportOptions,
        )
        where = export_service.selection(
            request.filter, request.start, request.end, request.review_state
        )
        # The asker's personal decision is in `options.personal` (made when asked);
        # the files of personal questions stay out unless it kept personal fields.
        fields = await form_personal_fields(db, form.id)
        view = PersonalView(fields=fields, clear=options.personal == "keep", key=b"")
        job = await export_service.prepare_export(
            db,
            form,
            options,
            where,
            format=export_service.ExportFormat(run.format),
            media=request.attachments,
            spool_dir=rt.settings.data_dir / "tmp",
            deleted_fields=request.deleted_fields,
            geo_table=request.geo_table,
            geo_field=request.geo_field,
            hidden_files=view.files_left_out(options.personal),
        )
        if request.cleaned:
            job = await cleaning_service.cleaned_export(db, form, job)

        def count(pages: int) -> None:
            progress.done += pages

        job = dataclasses.replace(job, on_page=count)
        total = await export_service.count_selected(db, job)
        first = await export_service.fetch_page(db, job, None)
    return run, f"{form.xml_form_id}.{run.format}", job, first, total


async def _run(rt: Runtime, run_id: int, worker: str, slot: ExportSlot) -> None:
    progress = _Progress()
    heartbeat = asyncio.ensure_future(_heartbeat(rt, run_id, worker, progress))
    try:
        try:
            run, file_name, job, first, total = await _prepare(rt, run_id, progress)
        except (Problem, ExportError) as error:
            slot.release()
            message = error.message if isinstance(error, Problem) else str(error)
            await _finish(rt, run_id, worker, state=FAILED, error=message)
            return
        async with rt.transaction() as db:
            await db.execute(update(ExportRun).where(ExportRun.id == run_id).values(total=total))
        spool = rt.settings.data_dir / "tmp"
        spool.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=spool) as folder:
            path = Path(folder) / file_name
            size = await export_service.export_to_file(rt, job, first, path, slot)
            await rt.blobs.put_object_file(file_object(run, file_name), path)
        await _finish(
            rt,
            run_id,
            worker,
            state=DONE,
            done=progress.done,
            size=size,
            expires_at=_now() + KEEP,
        )
    except Exception:
        slot.release()
        log.exception("export run %s failed", run_id)
        await _finish(rt, run_id, worker, state=FAILED, error="The export failed; ask again.")
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat


async def forget_runs(db: AsyncSession, form_ids: Sequence[int]) -> list[str]:
    """Drop these forms' export runs (before a purge); the object names of their files."""
    names: list[str] = []
    for form_id in form_ids:
        form = await db.get(Form, form_id)
        runs = (await db.scalars(select(ExportRun).where(ExportRun.form_id == form_id))).all()
        if form is not None:
            names += [file_object(run, f"{form.xml_form_id}.{run.format}") for run in runs]
        await db.execute(delete(ExportRun).where(ExportRun.form_id == form_id))
    return names


async def _expire(rt: Runtime) -> int:
    """Remove the files of runs kept past `expires_at`; how many."""
    async with rt.read() as db:
        runs = (
            await db.scalars(
                select(ExportRun).where(ExportRun.state == DONE, ExportRun.expires_at < _now())
            )
        ).all()
        forms = {run.form_id: await db.get(Form, run.form_id) for run in runs}
    for run in runs:
        form = forms[run.form_id]
        if form is not None:
            await rt.blobs.delete_object(file_object(run, f"{form.xml_form_id}.{run.format}"))
        async with rt.transaction() as db:
            await db.execute(update(ExportRun).where(ExportRun.id == run.id).values(state=EXPIRED))
    return len(runs)


async def run_waiting_exports(rt: Runtime, *, worker: str = WORKER) -> int:
    """Run queued exports while an export slot is free; how many ran."""
    await _expire(rt)
    slots = export_slots(rt.settings.max_exports)
    ran = 0
    # One slot is left to downloads: jobs wait rather than refuse a person waiting.
    while slots.running < max(slots.size - 1, 1):
        slot = slots.claim()  # before the run: a download may not take it meanwhile
        run_id = await _claim_next(rt, worker)
        if run_id is None:
            slot.release()
            break
        await _run(rt, run_id, worker, slot)
        ran += 1
    return ran


async def run_export_worker(rt: Runtime, interval: float) -> None:
    """Runs until cancelled: queued exports every `interval` seconds."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_waiting_exports(rt)
        except Exception:
            log.exception("running queued exports failed; trying again later")
