"""How stored files reach a client: streamed by the app, or redirected to S3."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from server.app import create_app
from server.runtime import Runtime
from tests.conftest import Backend
from tests.server.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, World
from tests.server.test_forms_api import media_form

LOGO = b"\x89PNG\r\n\x1a\n" + b"logo" * 500


@pytest.fixture
async def streaming_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An app on the same database and store with S3 redirects turned off."""
    settings = msgspec.structs.replace(runtime.settings, blob_redirects=False)
    app = create_app(settings, runtime=dataclasses.replace(runtime, settings=settings))
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _published_logo(world: World) -> str:
    base = f"/v1/projects/{world.project_id}/forms"
    headers = world.admin_headers
    created = await world.client.post(
        base, content=media_form("1"), headers=headers | {"Content-Type": "application/xml"}
    )
    assert created.status_code == 200, created.text
    uploaded = await world.client.post(
        f"{base}/fruit/draft/attachments/logo.png",
        content=LOGO,
        headers=headers | {"Content-Type": "image/png"},
    )
    assert uploaded.status_code == 200, uploaded.text
    published = await world.client.post(f"{base}/fruit/draft/publish", headers=headers)
    assert published.status_code == 200, published.text
    return f"{base}/fruit/attachments/logo.png"


async def test_without_redirects_the_app_streams_the_file_itself(
    world: World, streaming_client: httpx.AsyncClient
) -> None:
    url = await _published_logo(world)
    response = await streaming_client.get(url, headers=world.admin_headers)
    assert response.status_code == 200
    assert response.content == LOGO
    assert response.headers["content-type"] == "image/png"


async def test_with_redirects_s3_files_go_through_a_presigned_url(
    world: World, backend: Backend
) -> None:
    url = await _published_logo(world)
    response = await world.client.get(url, headers=world.admin_headers)
    if backend.name == "sqlite":
        # The filesystem store has no URL of its own to redirect to.
        assert response.status_code == 200
        assert response.content == LOGO
        return
    assert response.status_code == 307
    location = response.headers["location"]
    assert "X-Amz-Signature" in location
    async with httpx.AsyncClient() as s3:
        fetched = await s3.get(location)
    assert fetched.status_code == 200
    assert fetched.content == LOGO


async def test_the_web_app_gets_files_from_this_origin_even_on_s3(world: World) -> None:
    url = await _published_logo(world)
    signed_in = await world.client.post(
        "/v1/web/session", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert signed_in.status_code == 200
    try:
        # Its pages allow images from 'self' only: no redirect to the S3 endpoint.
        response = await world.client.get(url)
    finally:
        world.client.cookies.clear()
    assert response.status_code == 200
    assert response.content == LOGO
