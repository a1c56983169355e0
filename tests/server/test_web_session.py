"""The web app's cookie sessions and its place at ``/`` beside the API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.auth import SESSION_COOKIE
from server.runtime import Runtime
from server.settings import Settings
from tests.server.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, World

CREDENTIALS = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}


async def web_sign_in(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/web/session", json=CREDENTIALS)
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf"]
    return csrf


async def test_sign_in_sets_an_httponly_strict_cookie_over_plain_http(world: World) -> None:
    response = await world.client.post("/v1/web/session", json=CREDENTIALS)
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP on loopback: a trial needs no TLS
    body = response.json()
    assert len(body["csrf"]) == 64
    assert body["serverUrl"] == "http://testserver"
    assert body["mapTileUrl"] == ""  # no tile service unless the deployment names one
    me = await world.client.get("/v1/users/current")
    assert me.status_code == 200
    assert me.json()["email"] == ADMIN_EMAIL


async def test_cookie_is_secure_over_https(world: World) -> None:
    response = await world.client.post("https://testserver/v1/web/session", json=CREDENTIALS)
    assert response.status_code == 200
    assert "Secure" in response.headers["set-cookie"]


async def test_wrong_password_sets_no_cookie(world: World) -> None:
    response = await world.client.post(
        "/v1/web/session", json={"email": ADMIN_EMAIL, "password": "not it"}
    )
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "www-authenticate" not in response.headers


async def test_writes_with_the_cookie_need_the_csrf_header(world: World) -> None:
    csrf = await web_sign_in(world.client)
    refused = await world.client.post("/v1/projects", json={"name": "Forged"})
    assert refused.status_code == 403
    assert refused.json()["code"] == 403.2
    wrong = await world.client.post(
        "/v1/projects", json={"name": "Forged"}, headers={"X-CSRF-Token": "0" * 64}
    )
    assert wrong.status_code == 403
    listed = await world.client.get("/v1/projects")
    assert "Forged" not in {p["name"] for p in listed.json()}
    made = await world.client.post(
        "/v1/projects", json={"name": "Made"}, headers={"X-CSRF-Token": csrf}
    )
    assert made.status_code == 200, made.text
    # After a reload the app asks for the token again, with the cookie alone.
    again = await world.client.get("/v1/web/session")
    assert again.json()["csrf"] == csrf


async def test_sign_out_ends_the_session(world: World) -> None:
    csrf = await web_sign_in(world.client)
    token = world.client.cookies[SESSION_COOKIE]
    without_csrf = await world.client.delete("/v1/web/session")
    assert without_csrf.status_code == 403
    out = await world.client.delete("/v1/web/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    assert world.client.cookies.get(SESSION_COOKIE) is None
    # The same token is dead on the API too: one sessions table.
    stale = await world.client.get(
        "/v1/users/current", headers={"Authorization": f"Bearer {token}"}
    )
    assert stale.status_code == 401
    assert (await world.client.get("/v1/web/session")).status_code == 401


async def test_a_stale_cookie_is_no_credential_for_a_body(world: World) -> None:
    csrf = await web_sign_in(world.client)
    token = world.client.cookies[SESSION_COOKIE]
    await world.client.delete("/v1/web/session", headers={"X-CSRF-Token": csrf})
    world.client.cookies.set(SESSION_COOKIE, token)
    refused = await world.client.post(
        "/v1/projects", json={"name": "Late"}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == 401.4
    world.client.cookies.clear()
    # Signing in again with the stale cookie still riding along works.
    world.client.cookies.set(SESSION_COOKIE, token)
    assert await web_sign_in(world.client)


async def test_a_bearer_token_wins_over_a_cookie(world: World) -> None:
    await web_sign_in(world.client)
    # Bearer callers (pyodk, scripts) need no CSRF header even if a cookie rides along.
    made = await world.client.post(
        "/v1/projects", json={"name": "By bearer"}, headers=world.admin_headers
    )
    assert made.status_code == 200


async def test_browser_requests_get_no_basic_challenge(world: World) -> None:
    plain = await world.client.get("/v1/projects")
    assert plain.status_code == 401
    assert "www-authenticate" not in plain.headers
    openrosa = await world.client.head(
        f"/v1/projects/{world.project_id}/submission", headers={"X-OpenRosa-Version": "1.0"}
    )
    assert openrosa.headers["www-authenticate"].startswith("Basic ")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>app</title>")
    (dist / "assets" / "index-abc.js").write_text("console.log(1)")
    return dist


@pytest.fixture
async def web_client(settings: Settings, runtime: Runtime, built: Path) -> httpx.AsyncClient:
    app = create_app(settings, runtime=runtime, web_dist=built)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://testserver",
    )


async def test_app_paths_fall_back_to_index_but_never_shadow_the_api(
    web_client: httpx.AsyncClient,
) -> None:
    async with web_client as client:
        for path in ("/", "/login", "/projects/3/forms/intake/submissions"):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert page.text.startswith("<!doctype html>")
            assert page.headers["cache-control"] == "no-cache"
        asset = await client.get("/assets/index-abc.js")
        assert asset.headers["cache-control"].endswith("immutable")
        assert asset.headers["content-type"].startswith("text/javascript")
        for path in ("/v1/nothing", "/v1", "/schema", "/assets/missing.js", "/favicon.ico"):
            gone = await client.get(path)
            assert gone.status_code == 404, path
            assert gone.json()["code"] == 404.1
        escape = await client.get("/assets/..%2F..%2Fetc%2Fpasswd")
        assert escape.status_code == 404 or "root:" not in escape.text


async def test_the_api_root_typed_into_a_browser_opens_the_app(
    web_client: httpx.AsyncClient,
) -> None:
    page = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with web_client as client:
        for path in ("/v1", "/v1/"):
            visit = await client.get(path, headers=page)
            assert visit.status_code == 303, path
            assert visit.headers["location"] == "/"
        navigate = await client.get("/v1", headers={"Sec-Fetch-Mode": "navigate"})
        assert navigate.status_code == 303
        # A script or API client still gets Central's JSON answer, and deeper API
        # paths are never redirected.
        assert (await client.get("/v1", headers={"Accept": "application/json"})).status_code == 404
        deeper = await client.get("/v1/nothing", headers=page)
        assert deeper.status_code == 404
        assert deeper.json()["code"] == 404.1


async def test_only_the_fill_pages_relax_the_csp_for_web_forms(
    web_client: httpx.AsyncClient,
) -> None:
    async with web_client as client:
        for path in ("/projects/3/forms/intake/fill", "/projects/3/forms/intake/draft/fill"):
            csp = (await client.get(path)).headers["content-security-policy"]
            assert "script-src 'self' 'wasm-unsafe-eval';" in csp, path
            assert "style-src 'self' 'unsafe-inline';" in csp
            assert "frame-ancestors 'none'" in csp
            assert "'unsafe-eval'" not in csp
        for path in (
            "/",
            "/projects/3/forms/intake/submissions",
            "/projects/3/forms/fill",
            "/assets/index-abc.js",
            "/v1/projects/3/forms/intake/fill",
        ):
            csp = (await client.get(path)).headers["content-security-policy"]
            assert "unsafe" not in csp, path
