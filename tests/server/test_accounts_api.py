"""Sessions, users, roles, app users and their QR codes, permissions, and Digest sign-in."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from server.app import create_app
from server.qr import collect_settings, decode_payload, qr_png, settings_payload
from server.runtime import Runtime
from server.services import accounts
from tests.server.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, World, sign_in

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOKEN = re.compile(r"[A-Za-z0-9!$]{64}")
OPENROSA = {"X-OpenRosa-Version": "1.0"}
PASSWORD = "long enough password"


async def new_user(runtime: Runtime, email: str, *, keep_digest: bool = False) -> int:
    async with runtime.transaction() as db:
        actor, _ = await accounts.create_user(
            db, email=email, password=PASSWORD, keep_digest=keep_digest
        )
    return actor.id


async def new_app_user(world: World, name: str) -> dict[str, object]:
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/app-users",
        json={"displayName": name},
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_sign_in_and_out(world: World) -> None:
    client = world.client
    signed_in = await client.post(
        "/v1/sessions", json={"email": ADMIN_EMAIL.upper(), "password": ADMIN_PASSWORD}
    )
    assert signed_in.status_code == 200
    session = signed_in.json()
    assert {"token", "createdAt", "expiresAt"} <= session.keys()
    assert TOKEN.fullmatch(session["token"])
    headers = {"Authorization": f"Bearer {session['token']}"}

    me = await client.get("/v1/users/current", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == ADMIN_EMAIL
    assert me.json()["type"] == "user"
    assert {"id", "displayName", "createdAt", "updatedAt", "deletedAt"} <= me.json().keys()

    ended = await client.delete(f"/v1/sessions/{session['token']}", headers=headers)
    assert ended.status_code == 200
    assert ended.json() == {"success": True}
    after = await client.get("/v1/users/current", headers=headers)
    assert after.status_code == 401
    # The fixture's own session is untouched.
    assert (await client.get("/v1/users/current", headers=world.admin_headers)).status_code == 200


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": ADMIN_EMAIL, "password": "wrong password"},
        {"email": "nobody@example.org", "password": ADMIN_PASSWORD},
    ],
)
async def test_bad_credentials_are_401_2_in_centrals_shape(
    world: World, credentials: dict[str, str]
) -> None:
    response = await world.client.post("/v1/sessions", json=credentials)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    problem = response.json()
    assert set(problem) == {"code", "message"}
    assert problem["code"] == 401.2
    assert isinstance(problem["message"], str)


async def test_unauthenticated_and_unknown_bearer_are_401_with_a_challenge(world: World) -> None:
    # Basic is challenged only where it would be accepted (HTTPS): over plain HTTP
    # a browser would ask for a password it must then refuse, forever.
    anonymous = await world.client.get("https://testserver/v1/projects")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic ")
    assert anonymous.json()["code"] == 401.4
    plain = await world.client.get("/v1/projects")
    assert plain.status_code == 401
    assert "www-authenticate" not in plain.headers
    from_the_app = await world.client.get(
        "https://testserver/v1/projects", headers={"Sec-Fetch-Mode": "cors"}
    )
    assert "www-authenticate" not in from_the_app.headers
    stale = await world.client.get(
        "/v1/users/current", headers={"Authorization": "Bearer " + "x" * 64}
    )
    assert stale.status_code == 401
    assert stale.json()["code"] == 401.2
    # Basic sign-in is only accepted over HTTPS.
    basic = await world.client.get(
        "/v1/users/current", auth=httpx.BasicAuth(ADMIN_EMAIL, ADMIN_PASSWORD)
    )
    assert basic.status_code == 401
    claimed = await world.client.get(
        "/v1/users/current",
        auth=httpx.BasicAuth(ADMIN_EMAIL, ADMIN_PASSWORD),
        headers={"X-Forwarded-Proto": "https"},
    )
    assert claimed.status_code == 401  # a client's own claim of TLS is not believed
    over_tls = await world.client.get(
        "https://testserver/v1/users/current", auth=httpx.BasicAuth(ADMIN_EMAIL, ADMIN_PASSWORD)
    )
    assert over_tls.status_code == 200


async def test_roles_carry_centrals_ids_and_system_names(world: World) -> None:
    response = await world.client.get("/v1/roles", headers=world.admin_headers)
    assert response.status_code == 200
    roles = {role["system"]: role for role in response.json()}
    assert {system: role["id"] for system, role in roles.items()} == {
        "admin": 1,
        "app-user": 2,
        "manager": 5,
        "viewer": 6,
        "form-viewer": 7,
        "formfill": 8,
        "pub-link": 9,
    }
    assert "submission.create" in roles["app-user"]["verbs"]
    by_id = await world.client.get("/v1/roles/2", headers=world.admin_headers)
    by_name = await world.client.get("/v1/roles/app-user", headers=world.admin_headers)
    assert by_id.json() == by_name.json() == roles["app-user"]
    assert (await world.client.get("/v1/roles/3", headers=world.admin_headers)).status_code == 404


async def test_app_user_is_listed_with_its_token_and_qr_code(world: World) -> None:
    created = await new_app_user(world, "Phone 2")
    token = created["token"]
    assert isinstance(token, str)
    assert TOKEN.fullmatch(token)
    assert created["projectId"] == world.project_id
    assert created["type"] == "field_key"
    assert created["displayName"] == "Phone 2"

    listing = await world.client.get(
        f"/v1/projects/{world.project_id}/app-users", headers=world.admin_headers
    )
    assert listing.status_code == 200
    tokens = {user["id"]: user["token"] for user in listing.json()}
    assert tokens == {created["id"]: token, world.app_user_id: world.app_user_token}

    qr = await world.client.get(
        f"/v1/projects/{world.project_id}/app-users/{created['id']}/qr.png",
        headers=world.admin_headers,
    )
    assert qr.status_code == 200
    assert qr.headers["content-type"] == "image/png"
    assert qr.content.startswith(PNG_SIGNATURE)
    server_url = f"http://testserver/v1/key/{token}/projects/{world.project_id}"
    payload = settings_payload(collect_settings(server_url, "Returns"))
    # The image encodes exactly this payload (segno is deterministic).
    assert qr.content == qr_png(payload)
    decoded = decode_payload(payload)
    general, admin = decoded["general"], decoded["admin"]
    assert isinstance(general, dict)
    assert general["server_url"] == server_url
    assert general["form_update_mode"] == "match_exactly"
    assert admin == {}
    assert "\n" not in payload


async def test_revoked_and_deleted_app_users_are_403_on_key_urls(world: World) -> None:
    client, headers = world.client, world.admin_headers
    assert (await client.get(f"{world.key_base}/formList", headers=OPENROSA)).status_code == 200

    revoked = await client.delete(f"/v1/sessions/{world.app_user_token}", headers=headers)
    assert revoked.status_code == 200, revoked.text
    for path in ("formList", "forms/simple.xml"):
        refused = await client.get(f"{world.key_base}/{path}", headers=OPENROSA)
        assert refused.status_code == 403
        assert b"OpenRosaResponse" in refused.content
    listing = await client.get(f"/v1/projects/{world.project_id}/app-users", headers=headers)
    assert [user["token"] for user in listing.json()] == [None]
    qr = await client.get(
        f"/v1/projects/{world.project_id}/app-users/{world.app_user_id}/qr.png", headers=headers
    )
    assert qr.status_code == 409

    other = await new_app_user(world, "Phone 3")
    other_base = f"/v1/key/{other['token']}/projects/{world.project_id}"
    assert (await client.head(f"{other_base}/submission", headers=OPENROSA)).status_code == 204
    deleted = await client.delete(
        f"/v1/projects/{world.project_id}/app-users/{other['id']}", headers=headers
    )
    assert deleted.status_code == 200
    assert (await client.get(f"{other_base}/formList", headers=OPENROSA)).status_code == 403
    assert (await client.head(f"{other_base}/submission", headers=OPENROSA)).status_code == 403
    listing = await client.get(f"/v1/projects/{world.project_id}/app-users", headers=headers)
    assert other["id"] not in {user["id"] for user in listing.json()}


async def test_form_assignment_by_role_id_or_name(world: World) -> None:
    client, headers = world.client, world.admin_headers
    assignments = f"/v1/projects/{world.project_id}/forms/simple/assignments"
    by_id = await new_app_user(world, "By id")
    by_name = await new_app_user(world, "By name")
    assert (await client.post(f"{assignments}/2/{by_id['id']}", headers=headers)).status_code == 200
    assert (
        await client.post(f"{assignments}/app-user/{by_name['id']}", headers=headers)
    ).status_code == 200
    listed = await client.get(f"{assignments}/app-user", headers=headers)
    assert {a["id"] for a in listed.json()} == {world.app_user_id, by_id["id"], by_name["id"]}
    assert {a["id"] for a in (await client.get(f"{assignments}/2", headers=headers)).json()} == {
        world.app_user_id,
        by_id["id"],
        by_name["id"],
    }

    base = f"/v1/key/{by_id['token']}/projects/{world.project_id}"
    assert (
        b"<formID>simple</formID>"
        in (await client.get(f"{base}/formList", headers=OPENROSA)).content
    )

    duplicate = await client.post(f"{assignments}/2/{by_id['id']}", headers=headers)
    assert duplicate.status_code == 409
    unknown = await client.post(f"{assignments}/wizard/{by_id['id']}", headers=headers)
    assert unknown.status_code == 404
    assert (await client.post(f"{assignments}/2/999999", headers=headers)).status_code == 404

    removed = await client.delete(f"{assignments}/2/{by_id['id']}", headers=headers)
    assert removed.status_code == 200
    assert b"<formID>" not in (await client.get(f"{base}/formList", headers=OPENROSA)).content


async def test_user_without_roles_sees_nothing_and_creates_nothing(world: World) -> None:
    await new_user(world.runtime, "nobody@example.org")
    headers = await sign_in(world.client, "nobody@example.org", PASSWORD)
    assert (await world.client.get("/v1/projects", headers=headers)).json() == []
    created = await world.client.post("/v1/projects", json={"name": "Mine"}, headers=headers)
    assert created.status_code == 403
    assert created.json()["code"] == 403.1
    forms = await world.client.get(f"/v1/projects/{world.project_id}/forms", headers=headers)
    assert forms.status_code == 403
    # As in Central: no user.list, no listing (an exact e-mail still finds one user).
    assert (await world.client.get("/v1/users", headers=headers)).json() == []


async def test_project_viewer_reads_forms_but_cannot_create_them(world: World) -> None:
    client = world.client
    actor_id = await new_user(world.runtime, "viewer@example.org")
    assigned = await client.post(
        f"/v1/projects/{world.project_id}/assignments/viewer/{actor_id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text
    headers = await sign_in(client, "viewer@example.org", PASSWORD)
    projects = await client.get("/v1/projects", headers=headers)
    assert [p["id"] for p in projects.json()] == [world.project_id]
    forms = await client.get(f"/v1/projects/{world.project_id}/forms", headers=headers)
    assert forms.status_code == 200
    assert [f["xmlFormId"] for f in forms.json()] == ["simple"]
    created = await client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=b"<h:html/>",
        headers=headers | {"Content-Type": "application/xml"},
    )
    assert created.status_code == 403
    app_user = await client.post(
        f"/v1/projects/{world.project_id}/app-users", json={"displayName": "x"}, headers=headers
    )
    assert app_user.status_code == 403

    project_assignments = f"/v1/projects/{world.project_id}/assignments"
    listed = await client.get(project_assignments, headers=world.admin_headers)
    assert {"actorId": actor_id, "roleId": 6} in listed.json()
    viewers = await client.get(f"{project_assignments}/6", headers=world.admin_headers)
    assert [a["id"] for a in viewers.json()] == [actor_id]
    again = await client.post(
        f"{project_assignments}/viewer/{actor_id}", headers=world.admin_headers
    )
    assert again.status_code == 409
    revoked = await client.delete(
        f"{project_assignments}/viewer/{actor_id}", headers=world.admin_headers
    )
    assert revoked.status_code == 200
    gone = await client.get(f"/v1/projects/{world.project_id}/forms", headers=headers)
    assert gone.status_code == 403
    assert (
        await client.delete(f"{project_assignments}/viewer/{actor_id}", headers=world.admin_headers)
    ).status_code == 404


@pytest.fixture
async def digest_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An app on the same database with Digest sign-in turned on."""
    settings = msgspec.structs.replace(runtime.settings, digest_auth=True)
    digest_runtime = dataclasses.replace(runtime, settings=settings)
    app = create_app(settings, runtime=digest_runtime)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_authorization(
    challenge: str, *, method: str, uri: str, username: str, password: str, count: int = 1
) -> str:
    """What Collect answers to a Digest challenge (RFC 7616, MD5, qop=auth); it
    counts the requests it makes with one nonce."""
    assert challenge.startswith("Digest ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    assert params["qop"] == "auth"
    nc, cnonce = f"{count:08x}", "0a4f113b"
    ha1 = _md5(f"{username}:{params['realm']}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    response = _md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{username}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}", '
        f'response="{response}"'
    )


async def test_collect_signs_in_with_digest_where_enabled(
    world: World, digest_client: httpx.AsyncClient
) -> None:
    email = "enumerator@example.org"
    actor_id = await new_user(world.runtime, email, keep_digest=True)
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/assignments/formfill/{actor_id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text
    uri = f"/v1/projects/{world.project_id}/formList"

    challenged = await digest_client.get(uri, headers=OPENROSA)
    assert challenged.status_code == 401
    challenge = challenged.headers["www-authenticate"]
    answer = digest_authorization(
        challenge, method="GET", uri=uri, username=email, password=PASSWORD
    )
    listing = await digest_client.get(uri, headers=OPENROSA | {"Authorization": answer})
    assert listing.status_code == 200, listing.text
    assert b"<formID>simple</formID>" in listing.content

    # Collect appends ?deviceID=... to every URL; its answer signs the whole URI.
    with_device = f"{uri}?deviceID=collect%3Aabc"
    device_answer = digest_authorization(
        challenge, method="GET", uri=with_device, username=email, password=PASSWORD, count=2
    )
    from_collect = await digest_client.get(
        with_device, headers=OPENROSA | {"Authorization": device_answer}
    )
    assert from_collect.status_code == 200, from_collect.text
    # An answer signed for one path does not open another.
    elsewhere = await digest_client.get(
        "/v1/users/current", headers=OPENROSA | {"Authorization": answer}
    )
    assert elsewhere.status_code == 401

    wrong = digest_authorization(
        challenge, method="GET", uri=uri, username=email, password="not the password"
    )
    refused = await digest_client.get(uri, headers=OPENROSA | {"Authorization": wrong})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Digest ")
    forged = answer.replace(challenge.split('nonce="')[1].split('"')[0], "123.abc")
    assert (
        await digest_client.get(uri, headers=OPENROSA | {"Authorization": forged})
    ).status_code == 401

    # Without the MD5 credential (kept only on request) Digest cannot succeed.
    await new_user(world.runtime, "plain@example.org")
    plain = digest_authorization(
        challenge, method="GET", uri=uri, username="plain@example.org", password=PASSWORD
    )
    assert (
        await digest_client.get(uri, headers=OPENROSA | {"Authorization": plain})
    ).status_code == 401
    # Where Digest is off, the same answer is refused.
    assert (
        await world.client.get(uri, headers=OPENROSA | {"Authorization": answer})
    ).status_code == 401


async def test_a_captured_digest_answer_opens_one_request_only(
    world: World, digest_client: httpx.AsyncClient
) -> None:
    email = "replayed@example.org"
    actor_id = await new_user(world.runtime, email, keep_digest=True)
    await world.client.post(
        f"/v1/projects/{world.project_id}/assignments/formfill/{actor_id}",
        headers=world.admin_headers,
    )
    uri = f"/v1/projects/{world.project_id}/formList"
    challenge = (await digest_client.get(uri, headers=OPENROSA)).headers["www-authenticate"]
    answer = digest_authorization(
        challenge, method="GET", uri=uri, username=email, password=PASSWORD
    )
    assert (
        await digest_client.get(uri, headers=OPENROSA | {"Authorization": answer})
    ).status_code == 200
    replayed = await digest_client.get(uri, headers=OPENROSA | {"Authorization": answer})
    assert replayed.status_code == 401
    # Bound to the method: the GET answer with a fresh count still cannot POST.
    as_get = digest_authorization(
        challenge,
        method="GET",
        uri=uri.replace("formList", "submission"),
        username=email,
        password=PASSWORD,
        count=2,
    )
    posted = await digest_client.post(
        uri.replace("formList", "submission"),
        headers=OPENROSA | {"Authorization": as_get},
        content=b"<data/>",
    )
    assert posted.status_code == 401
    # Bound to the query when it is signed.
    signed = digest_authorization(
        challenge, method="GET", uri=f"{uri}?formID=a", username=email, password=PASSWORD, count=3
    )
    other_query = await digest_client.get(
        f"{uri}?formID=b", headers=OPENROSA | {"Authorization": signed}
    )
    assert other_query.status_code == 401
    # The next count of the same nonce is Collect's next request, and works.
    following = digest_authorization(
        challenge, method="GET", uri=uri, username=email, password=PASSWORD, count=4
    )
    assert (
        await digest_client.get(uri, headers=OPENROSA | {"Authorization": following})
    ).status_code == 200
