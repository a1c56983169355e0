"""Suite-wide fixtures: the two backends every server test runs on.

``sqlite``   — SQLite file + blob folder, the embedded default.
``postgres`` — a private PostgreSQL 15 cluster + S3 (moto's server, real minio client).

Both services start once per session, on loopback, and stop at its end. Each test
gets a database of its own: a fresh SQLite file, or a PostgreSQL database cloned
from a migrated template. ``HOMEWARD_TEST_BACKENDS=sqlite`` narrows a local run.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from server.app import create_app
from server.runtime import Runtime, close_runtime, open_runtime
from server.settings import Settings
from tests.services import S3_ACCESS_KEY, S3_SECRET_KEY, moto_s3_server, postgres_cluster

BACKENDS = [b for b in os.environ.get("HOMEWARD_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


@dataclass(frozen=True)
class Backend:
    name: str
    postgres_url: str | None = None
    s3_endpoint: str | None = None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder beside the repository: real XLSForms and Central's answers.

    ``HOMEWARD_SHARED_DIR`` overrides where it is. A developer's checkout without
    it skips the tests that need it; CI (``CI`` set) always has it, so there a
    missing folder fails instead of hiding them.
    """
    override = os.environ.get("HOMEWARD_SHARED_DIR")
    shared = Path(override) if override else Path(__file__).resolve().parents[2] / "shared"
    if not (shared / "xlsforms").is_dir() or not (shared / "central-golden").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared folder with xlsforms/ and central-golden/ not found in {shared}")
        pytest.skip(f"shared folder with xlsforms/ and central-golden/ not found in {shared}")
    return shared


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """HOST:PORT of a moto S3 server shared by the session."""
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked postgres_only exists only for the PostgreSQL backend: it is
    left out for SQLite (deselected), not skipped."""
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("backend") == "sqlite"
        (left_out if on_sqlite and item.get_closest_marker("postgres_only") else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite")
    return Backend(
        "postgres",
        postgres_url=request.getfixturevalue("postgres_url"),
        s3_endpoint=request.getfixturevalue("moto_endpoint"),
    )


async def _fresh_postgres_database(admin_url: str) -> str:
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def backend_settings(backend: Backend, data_dir: Path) -> Settings:
    """Settings for a fresh database (and bucket) on ``backend``, files under ``data_dir``."""
    if backend.name == "sqlite":
        return Settings(data_dir=data_dir, secret_key=secrets.token_urlsafe(32))
    assert backend.postgres_url
    assert backend.s3_endpoint
    return Settings(
        data_dir=data_dir,
        database_url=await _fresh_postgres_database(backend.postgres_url),
        storage_url=f"s3://b-{uuid.uuid4().hex[:12]}?endpoint={backend.s3_endpoint}&secure=false",
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
        secret_key=secrets.token_urlsafe(32),
    )


@pytest.fixture
async def settings(backend: Backend, tmp_path: Path) -> Settings:
    return await backend_settings(backend, tmp_path / "var")


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = await open_runtime(settings)
    yield rt
    await close_runtime(rt)


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> Litestar:
    return create_app(settings, runtime=runtime)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Requests straight into the app, on the test's own event loop (so the
    runtime's database connections stay on one loop)."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as test_client:
        yield test_client
