"""Users administration (/v1/users) and site-wide roles (/v1/assignments)."""

from __future__ import annotations

import httpx
import pytest

from server import auth
from tests.server.conftest import ADMIN_EMAIL, World, sign_in
from tests.server.test_submission_review import assert_problem

PASSWORD = "a long enough password"


async def create_user(world: World, email: str, **extra: str) -> dict[str, object]:
    response = await world.client.post(
        "/v1/users",
        json={"email": email, "password": PASSWORD, **extra},
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_user_in_centrals_shape(world: World) -> None:
    body = await create_user(world, "Lule@Example.org")
    assert body["email"] == "lule@example.org"
    assert body["displayName"] == "lule@example.org"  # Central copies the e-mail
    assert body["type"] == "user"
    assert isinstance(body["id"], int)
    assert body["deletedAt"] is None
    named = await create_user(world, "drita@example.org", displayName="Drita")
    assert named["displayName"] == "Drita"
    duplicate = await world.client.post(
        "/v1/users", json={"email": "lule@example.org"}, headers=world.admin_headers
    )
    assert_problem(duplicate, 409, 409.3)
    short = await world.client.post(
        "/v1/users",
        json={"email": "x@example.org", "password": "short"},
        headers=world.admin_headers,
    )
    assert_problem(short, 400, 400.21)
    anonymous = await world.client.post("/v1/users", json={"email": "y@example.org"})
    assert_problem(anonymous, 401, 401.4)


async def test_list_and_search(world: World) -> None:
    await create_user(world, "lule@example.org", displayName="Lule Krasniqi")
    await create_user(world, "drita@example.org", displayName="Drita")
    everyone = await world.client.get("/v1/users", headers=world.admin_headers)
    assert [u["email"] for u in everyone.json()] == [
        ADMIN_EMAIL,
        "drita@example.org",
        "lule@example.org",
    ]
    found = await world.client.get("/v1/users?q=krasniqi", headers=world.admin_headers)
    assert [u["email"] for u in found.json()] == ["lule@example.org"]
    # Someone without user.list finds a user only by the exact e-mail.
    headers = await sign_in(world.client, "drita@example.org", PASSWORD)
    assert (await world.client.get("/v1/users?q=lule", headers=headers)).json() == []
    exact = await world.client.get("/v1/users?q=lule@example.org", headers=headers)
    assert [u["email"] for u in exact.json()] == ["lule@example.org"]


async def test_get_patch_delete(world: World) -> None:
    user = await create_user(world, "lule@example.org")
    url = f"/v1/users/{user['id']}"
    got = await world.client.get(url, headers=world.admin_headers)
    assert got.json()["email"] == "lule@example.org"
    patched = await world.client.patch(
        url, json={"displayName": "Lule K.", "email": "lk@example.org"}, headers=world.admin_headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["displayName"] == "Lule K."
    assert patched.json()["email"] == "lk@example.org"
    assert patched.json()["updatedAt"] is not None
    taken = await world.client.patch(url, json={"email": ADMIN_EMAIL}, headers=world.admin_headers)
    assert_problem(taken, 409, 409.3)
    # A user may read and rename itself, but not others.
    headers = await sign_in(world.client, "lk@example.org", PASSWORD)
    assert (await world.client.get(url, headers=headers)).status_code == 200
    renamed = await world.client.patch(url, json={"displayName": "Me"}, headers=headers)
    assert renamed.json()["displayName"] == "Me"
    admin_id = (await world.client.get("/v1/users/current", headers=world.admin_headers)).json()[
        "id"
    ]
    assert_problem(await world.client.get(f"/v1/users/{admin_id}", headers=headers), 403, 403.1)
    assert_problem(await world.client.delete(url, headers=headers), 403, 403.1)

    deleted = await world.client.delete(url, headers=world.admin_headers)
    assert deleted.json() == {"success": True}
    assert_problem(await world.client.get(url, headers=world.admin_headers), 404, 404.1)
    # Its sessions ended with it.
    assert_problem(await world.client.get("/v1/users/current", headers=headers), 401, 401.2)
    gone = await world.client.post(
        "/v1/sessions", json={"email": "lk@example.org", "password": PASSWORD}
    )
    assert_problem(gone, 401, 401.2)
    assert_problem(
        await world.client.get("/v1/users/999999", headers=world.admin_headers), 404, 404.1
    )


async def test_change_password(world: World) -> None:
    user = await create_user(world, "lule@example.org")
    headers = await sign_in(world.client, "lule@example.org", PASSWORD)
    other_session = await sign_in(world.client, "lule@example.org", PASSWORD)
    url = f"/v1/users/{user['id']}/password"
    wrong = await world.client.put(
        url, json={"old": "nope", "new": "another long one"}, headers=headers
    )
    assert_problem(wrong, 401, 401.2)
    changed = await world.client.put(
        url, json={"old": PASSWORD, "new": "another long one"}, headers=headers
    )
    assert changed.json() == {"success": True}
    # The session that changed it lives on; the others end.
    assert (await world.client.get("/v1/users/current", headers=headers)).status_code == 200
    assert (await world.client.get("/v1/users/current", headers=other_session)).status_code == 401
    await sign_in(world.client, "lule@example.org", "another long one")
    short = await world.client.put(
        url, json={"old": "another long one", "new": "short"}, headers=headers
    )
    assert_problem(short, 400, 400.21)


async def test_site_assignments(world: World) -> None:
    user = await create_user(world, "lule@example.org")
    actor_id = user["id"]
    granted = await world.client.post(
        f"/v1/assignments/admin/{actor_id}", headers=world.admin_headers
    )
    assert granted.json() == {"success": True}
    again = await world.client.post(f"/v1/assignments/1/{actor_id}", headers=world.admin_headers)
    assert_problem(again, 409, 409.3)
    listed = await world.client.get("/v1/assignments", headers=world.admin_headers)
    assert {"actorId": actor_id, "roleId": 1} in listed.json()
    admins = await world.client.get("/v1/assignments/admin", headers=world.admin_headers)
    assert actor_id in [a["id"] for a in admins.json()]
    # The new administrator may now list users.
    headers = await sign_in(world.client, "lule@example.org", PASSWORD)
    assert len((await world.client.get("/v1/users", headers=headers)).json()) == 2
    revoked = await world.client.delete(
        f"/v1/assignments/1/{actor_id}", headers=world.admin_headers
    )
    assert revoked.json() == {"success": True}
    assert_problem(await world.client.get("/v1/assignments", headers=headers), 403, 403.1)
    missing = await world.client.delete(
        f"/v1/assignments/1/{actor_id}", headers=world.admin_headers
    )
    assert_problem(missing, 404, 404.1)
    unknown = await world.client.get("/v1/assignments/wizard", headers=world.admin_headers)
    assert_problem(unknown, 404, 404.1)
    nobody = await world.client.post("/v1/assignments/1/999999", headers=world.admin_headers)
    assert_problem(nobody, 404, 404.1)


async def test_user_audits(world: World) -> None:
    user = await create_user(world, "lule@example.org")
    await world.client.patch(
        f"/v1/users/{user['id']}", json={"displayName": "L"}, headers=world.admin_headers
    )
    await world.client.post(f"/v1/assignments/admin/{user['id']}", headers=world.admin_headers)
    await world.client.delete(f"/v1/users/{user['id']}", headers=world.admin_headers)
    audits = await world.client.get("/v1/audits?action=user", headers=world.admin_headers)
    actions = [a["action"] for a in audits.json()]
    assert actions[:4] == [
        "user.delete",
        "user.assignment.create",
        "user.update",
        "user.create",
    ]
    assert "user.session.create" in actions


async def test_current_user_extended_has_site_verbs(world: World) -> None:
    extended = await world.client.get(
        "/v1/users/current", headers=world.admin_headers | {"X-Extended-Metadata": "true"}
    )
    assert "user.create" in extended.json()["verbs"]
    assert extended.json()["preferences"] == {"site": {}, "projects": {}}
    await create_user(world, "lule@example.org")
    headers = await sign_in(world.client, "lule@example.org", PASSWORD)
    plain_user = await world.client.get(
        "/v1/users/current", headers=headers | {"X-Extended-Metadata": "true"}
    )
    assert plain_user.json()["verbs"] == []
    plain = await world.client.get("/v1/users/current", headers=world.admin_headers)
    assert "verbs" not in plain.json()


async def test_signing_out_the_current_session(world: World) -> None:
    await create_user(world, "lule@example.org")
    headers = await sign_in(world.client, "lule@example.org", PASSWORD)
    ended = await world.client.delete("/v1/sessions/current", headers=headers)
    assert ended.json() == {"success": True}
    gone = await world.client.get("/v1/users/current", headers=headers)
    assert_problem(gone, 401, 401.2)
    assert_problem(await world.client.delete("/v1/sessions/current"), 401, 401.4)


async def test_basic_credentials_verify_once_and_end_with_the_password(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients that sign every request (Power BI, Collect) pay argon2 once, not per request."""
    user = await create_user(world, "basic@example.org")
    verified: list[str] = []
    real_verify = auth.verify_password

    def counting_verify(password: str, password_hash: str | None) -> bool:
        verified.append(password)
        return real_verify(password, password_hash)

    monkeypatch.setattr("server.services.accounts.verify_password", counting_verify)
    me = "https://testserver/v1/users/current"
    basic = httpx.BasicAuth("basic@example.org", PASSWORD)
    for _ in range(3):
        response = await world.client.get(me, auth=basic)
        assert response.status_code == 200
        assert response.json()["email"] == "basic@example.org"
    assert verified == [PASSWORD]
    wrong = await world.client.get(me, auth=httpx.BasicAuth("basic@example.org", "wrong one!!"))
    assert wrong.status_code == 401
    assert len(verified) == 2  # a wrong password is always checked in full

    # A new password ends the remembered one at once.
    changed = await world.client.put(
        f"/v1/users/{user['id']}/password",
        json={"old": PASSWORD, "new": "another long one"},
        auth=basic,
    )
    assert changed.status_code == 401  # over plain HTTP Basic is refused ...
    changed = await world.client.put(
        f"https://testserver/v1/users/{user['id']}/password",
        json={"old": PASSWORD, "new": "another long one"},
        auth=basic,
    )
    assert changed.json() == {"success": True}
    assert (await world.client.get(me, auth=basic)).status_code == 401
    renewed = httpx.BasicAuth("basic@example.org", "another long one")
    assert (await world.client.get(me, auth=renewed)).status_code == 200

    # So does removing the user.
    removed = await world.client.delete(f"/v1/users/{user['id']}", headers=world.admin_headers)
    assert removed.status_code == 200
    assert (await world.client.get(me, auth=renewed)).status_code == 401
