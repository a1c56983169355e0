"""The app factory: settings in, a Litestar app out. Nothing here reads the environment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig

from server.api import (
    accounts,
    audits,
    export_jobs,
    exports,
    form_fields,
    forms,
    odata,
    projects,
    public_links,
    reviews,
    submissions,
    summaries,
    users,
)
from server.errors import handle_http_exception, handle_problem, handle_unexpected
from server.openrosa.routes import openrosa_routers
from server.problems import Problem
from server.requests import refuse_nul_bytes
from server.runtime import Runtime, close_runtime, open_runtime, settle_heap
from server.services.analysis import run_analysis_worker
from server.services.export_runs import run_export_worker
from server.settings import Settings

# Seconds between looks for queued export jobs.
EXPORT_JOB_INTERVAL = 2.0


@get("/healthz", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> Litestar:
    """Build the app; with ``runtime`` given (tests) the caller owns its lifetime."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        opened = await open_runtime(settings)
        app.state.runtime = opened
        settle_heap()
        # Background jobs of this process; others run them too, claiming through the database.
        workers = [asyncio.ensure_future(run_export_worker(opened, EXPORT_JOB_INTERVAL))]
        if settings.analysis_interval > 0:
            workers.append(
                asyncio.ensure_future(run_analysis_worker(opened, settings.analysis_interval))
            )
        try:
            yield
        finally:
            for worker in workers:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await close_runtime(opened)

    max_body = settings.max_submission_bytes
    app = Litestar(
        route_handlers=[
            health,
            accounts.router,
            users.router,
            projects.router,
            forms.router(settings.max_form_bytes),
            submissions.router(max_body),
            reviews.router,
            public_links.router,
            summaries.router,
            form_fields.router,
            audits.router,
            exports.router,
            export_jobs.router,
            odata.router,
            *openrosa_routers(max_body),
        ],
        lifespan=[lifespan],
        before_request=refuse_nul_bytes,
        exception_handlers={
            Problem: handle_problem,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        openapi_config=OpenAPIConfig(title="Homeward", version="0.1.0", path="/v1/openapi"),
        request_max_body_size=settings.max_form_bytes,
    )
    if runtime is not None:
        app.state.runtime = runtime
    return app
