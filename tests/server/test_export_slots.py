"""Exports write on threads of their own and are capped, so they never hang the process."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
import pytest

from server.services import exports as export_service
from tests.server.conftest import World
from tests.server.test_csv_export import PHOTO, export, read_zip, three_submissions


@pytest.fixture
async def scarce_default_threads() -> AsyncIterator[int]:
    """anyio's default limiter cut to two tokens, as if 38 other exports held the rest."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = limiter.total_tokens
    limiter.total_tokens = 2
    try:
        yield 2
    finally:
        limiter.total_tokens = before


async def test_exports_with_media_finish_when_they_outnumber_default_threads(
    world: World, scarce_default_threads: int
) -> None:
    await three_submissions(world)
    responses = []

    async def one() -> None:
        responses.append(await export(world))

    # Before exports had their own limiter, each writer held a default token and
    # waited for another to read its photo: this never finished.
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for _ in range(scarce_default_threads):
                group.start_soon(one)

    assert [r.status_code for r in responses] == [200] * scarce_default_threads
    for response in responses:
        assert read_zip(response.content)["media/p.jpg"] == PHOTO


async def test_export_beyond_the_cap_is_429_with_retry_after_and_slots_come_back(
    world: World,
) -> None:
    await three_submissions(world)
    rt = world.runtime
    held = [export_service.claim_export_slot(rt) for _ in range(rt.settings.max_exports)]

    refused = await export(world)

    assert refused.status_code == 429
    assert refused.json()["code"] == 429.1
    assert refused.headers["retry-after"] == "30"
    held.pop().release()
    assert (await export(world)).status_code == 200
    # The finished export gave its slot back: one more fits, then the cap holds again.
    held.append(export_service.claim_export_slot(rt))
    assert (await export(world)).status_code == 429
    for slot in held:
        slot.release()


async def test_media_are_stored_in_the_zip_not_deflated_again(world: World) -> None:
    await three_submissions(world)

    response = await export(world)

    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        photo = archive.getinfo("media/p.jpg")
        table = archive.getinfo("simple.csv")
        assert archive.read(photo) == PHOTO
    assert photo.compress_type == zipfile.ZIP_STORED
    assert table.compress_type == zipfile.ZIP_DEFLATED
