"""A signed-in administrator, a project, a published form and an app user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar

from server.app import create_app
from server.runtime import Runtime, close_runtime, open_runtime
from server.services import accounts
from tests.conftest import Backend, backend_settings

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

SIMPLE_FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
<h:head><h:title>Simple</h:title><model>
<instance><data id="simple" version="1"><name/><age/><photo/>
<meta><instanceID/></meta></data></instance>
<bind nodeset="/data/name" type="string"/><bind nodeset="/data/age" type="int"/>
<bind nodeset="/data/photo" type="binary"/>
<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
</model></h:head>
<h:body><input ref="/data/name"><label>Name</label></input>
<input ref="/data/age"><label>Age</label></input>
<upload ref="/data/photo" mediatype="image/*"><label>Photo</label></upload></h:body></h:html>"""


def submission_xml(
    instance_id: str,
    *,
    name: str = "Arta",
    age: int = 30,
    photo: str = "p.jpg",
    version: str = "1",
    deprecated_id: str | None = None,
) -> bytes:
    deprecated = f"<deprecatedID>{deprecated_id}</deprecatedID>" if deprecated_id else ""
    return (
        f'<data id="simple" version="{version}"><name>{name}</name><age>{age}</age>'
        f"<photo>{photo}</photo><meta><instanceID>{instance_id}</instanceID>{deprecated}</meta></data>"
    ).encode()


@dataclass
class World:
    client: httpx.AsyncClient
    runtime: Runtime
    admin_headers: dict[str, str]
    project_id: int
    app_user_id: int
    app_user_token: str
    app: Litestar | None = None

    @property
    def key_base(self) -> str:
        return f"/v1/key/{self.app_user_token}/projects/{self.project_id}"


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post("/v1/sessions", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
async def world(client: httpx.AsyncClient, runtime: Runtime) -> World:
    return await make_world(client, runtime)


@pytest.fixture(scope="module")
async def module_world(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """One world for a whole module, for tests that only read it or make their own targets."""
    settings = await backend_settings(backend, tmp_path_factory.mktemp("var"))
    runtime = await open_runtime(settings)
    app = create_app(settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            made = await make_world(client, runtime)
            made.app = app
            yield made
    finally:
        await close_runtime(runtime)


async def make_world(client: httpx.AsyncClient, runtime: Runtime) -> World:
    async with runtime.transaction() as db:
        actor, _ = await accounts.create_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
        await accounts.promote_to_admin(db, actor.id, by=None)
    headers = await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    project = await client.post("/v1/projects", json={"name": "Returns"}, headers=headers)
    project_id = project.json()["id"]
    form = await client.post(
        f"/v1/projects/{project_id}/forms?publish=true",
        content=SIMPLE_FORM,
        headers=headers | {"Content-Type": "application/xml"},
    )
    assert form.status_code == 200, form.text
    app_user = await client.post(
        f"/v1/projects/{project_id}/app-users", json={"displayName": "Phone 1"}, headers=headers
    )
    body = app_user.json()
    assigned = await client.post(
        f"/v1/projects/{project_id}/forms/simple/assignments/app-user/{body['id']}", headers=headers
    )
    assert assigned.status_code == 200, assigned.text
    return World(client, runtime, headers, project_id, body["id"], body["token"])
