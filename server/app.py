"""The app factory: settings in, a Litestar app out. Nothing here reads the environment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from server.api import (
    accounts,
    audits,
    case_schedule,
    cleaning,
    datasets,
    erasure,
    export_jobs,
    exports,
    form_fields,
    forms,
    indicators,
    odata,
    projects,
    public_links,
    reviews,
    submissions,
    summaries,
    users,
)
from server.encoded_paths import HomewardApp, restore_path_params
from server.errors import handle_http_exception, handle_problem, handle_unexpected
from server.openrosa.routes import openrosa_routers
from server.problems import Problem
from server.requests import HomewardRequest, check_before_body
from server.runtime import Runtime, close_runtime, open_runtime, settle_heap
from server.security_headers import add_security_headers
from server.services.analysis import run_analysis_worker
from server.services.check_findings import run_check_worker
from server.services.export_runs import run_export_worker
from server.services.retention import run_retention_periodically
from server.settings import Settings
from server.sign_in import SignInThrottle
from server.web import assets, session

# Seconds between looks for queued export jobs.
EXPORT_JOB_INTERVAL = 2.0


@get("/healthz", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, web_dist: Path | None = None
) -> Litestar:
    """Build the app; with ``runtime`` given (tests) the caller owns its lifetime.

    ``web_dist`` is the built web app to serve at ``/`` (default: ``server/web/dist``).
    """

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
        workers = [
            asyncio.ensure_future(run_export_worker(opened, EXPORT_JOB_INTERVAL)),
            asyncio.ensure_future(run_retention_periodically(opened)),
        ]
        if settings.analysis_interval > 0:
            workers.append(
                asyncio.ensure_future(run_analysis_worker(opened, settings.analysis_interval))
            )
        if settings.checks_interval > 0:
            workers.append(
                asyncio.ensure_future(run_check_worker(opened, settings.checks_interval))
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
    app = HomewardApp(
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
            erasure.router,
            exports.router,
            cleaning.router,
            export_jobs.router,
            odata.router,
            datasets.router,
            case_schedule.router,
            indicators.router,
            *openrosa_routers(max_body),
            session.router,
            assets.web_router(web_dist),
        ],
        lifespan=[lifespan],
        middleware=[restore_path_params],
        before_request=check_before_body,
        request_class=HomewardRequest,
        exception_handlers={
            Problem: handle_problem,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        # The schema as JSON only: the bundled viewers load their scripts from CDNs,
        # which the CSP (rightly) refuses and an offline deployment cannot reach.
        openapi_config=OpenAPIConfig(
            title="Homeward",
            version="0.1.0",
            path="/v1/openapi",
            render_plugins=[JsonRenderPlugin()],
        ),
        before_send=[add_security_headers],
        request_max_body_size=settings.max_form_bytes,
    )
    app.state.sign_in = SignInThrottle()
    if runtime is not None:
        app.state.runtime = runtime
    return app
