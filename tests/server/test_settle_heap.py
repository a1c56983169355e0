"""A served app tunes the garbage collector once it has started (server.runtime.settle_heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.runtime import Runtime
from server.settings import Settings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """The test process keeps its own collector settings whatever the test does."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_served_app_freezes_its_startup_heap(
    settings: Settings, restored_collector: None
) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    # Without a runtime handed in, the app opens its own: the served path.
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() > 10_000  # the app and its libraries
        assert gc.get_threshold()[0] == 20_000


async def test_app_with_a_given_runtime_leaves_the_collector_alone(
    settings: Settings, restored_collector: None, runtime: Runtime
) -> None:
    gc.unfreeze()
    app = create_app(settings, runtime=runtime)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() == 0
