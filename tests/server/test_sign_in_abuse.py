"""Sign-in abuse: wrong passwords are throttled, and never checked inside a transaction."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from server import auth, problems
from server.runtime import Runtime
from server.services import accounts, users
from server.sign_in import PER_ACCOUNT, PER_ADDRESS, PER_PAIR, Budget, SignInThrottle
from tests.server.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, World


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: Litestar) -> Clock:
    made = Clock()
    app.state.sign_in = SignInThrottle(clock=made)
    return made


def client_from(app: Litestar, address: str, *, https: bool = False) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    scheme = "https" if https else "http"
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver")


@pytest.fixture
async def elsewhere(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with client_from(app, "203.0.113.9") as other:
        yield other


async def sign_in(client: httpx.AsyncClient, password: str) -> httpx.Response:
    return await client.post("/v1/sessions", json={"email": ADMIN_EMAIL, "password": password})


async def test_repeated_wrong_passwords_are_429_with_retry_after(
    world: World, clock: Clock, elsewhere: httpx.AsyncClient
) -> None:
    for _ in range(PER_PAIR.failures):
        assert (await sign_in(world.client, "wrong password")).status_code == 401
    refused = await sign_in(world.client, ADMIN_PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["code"] == 429.1
    assert "Too many failed sign-in attempts" in refused.json()["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= PER_PAIR.seconds
    # The same account from another address is not locked out ...
    assert (await sign_in(elsewhere, ADMIN_PASSWORD)).status_code == 200
    # ... and the lock on this address ends by itself within the window.
    clock.now += PER_PAIR.seconds
    assert (await sign_in(world.client, ADMIN_PASSWORD)).status_code == 200


async def test_a_throttled_attempt_does_no_argon2_work(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(PER_PAIR.failures):
        await sign_in(world.client, "wrong password")
    checked: list[str] = []
    real = auth.verify_password

    def counting(password: str, password_hash: str | None) -> bool:
        checked.append(password)
        return real(password, password_hash)

    monkeypatch.setattr(accounts, "verify_password", counting)
    assert (await sign_in(world.client, "wrong again")).status_code == 429
    assert checked == []


async def test_one_address_cannot_walk_through_many_accounts(app: Litestar, world: World) -> None:
    app.state.sign_in = SignInThrottle(per_address=Budget(4, 600.0), clock=Clock())
    for n in range(4):
        response = await world.client.post(
            "/v1/sessions", json={"email": f"guess{n}@example.org", "password": "wrong password"}
        )
        assert response.status_code == 401
    refused = await world.client.post(
        "/v1/sessions", json={"email": "another@example.org", "password": "wrong password"}
    )
    assert refused.status_code == 429


async def test_a_spray_from_many_addresses_does_not_lock_out_the_users_own_address(
    app: Litestar, world: World
) -> None:
    app.state.sign_in = SignInThrottle(per_account=Budget(6, 900.0), clock=Clock())
    # The real user signed in from this address before.
    assert (await sign_in(world.client, ADMIN_PASSWORD)).status_code == 200
    for n in range(6):
        async with client_from(app, f"198.51.100.{n}") as attacker:
            assert (await sign_in(attacker, "wrong password")).status_code == 401
    async with client_from(app, "198.51.100.200") as attacker:
        assert (await sign_in(attacker, ADMIN_PASSWORD)).status_code == 429
    assert (await sign_in(world.client, ADMIN_PASSWORD)).status_code == 200


async def test_concurrent_wrong_passwords_are_counted_before_they_are_checked() -> None:
    throttle = SignInThrottle(clock=Clock())
    for _ in range(PER_PAIR.failures):
        throttle.begin(ADMIN_EMAIL, "192.0.2.1")  # five checks still running
    with pytest.raises(problems.Problem) as refused:
        throttle.begin(ADMIN_EMAIL, "192.0.2.1")
    assert refused.value.code == 429.1
    throttle.succeeded(ADMIN_EMAIL, "192.0.2.1")
    throttle.begin(ADMIN_EMAIL, "192.0.2.1")


def test_budgets_are_ordered_so_a_typo_never_meets_the_larger_ones() -> None:
    assert PER_PAIR.failures < PER_ADDRESS.failures < PER_ACCOUNT.failures
    assert PER_PAIR.seconds <= 60


async def test_web_sign_in_is_throttled_too(world: World, clock: Clock) -> None:
    def attempt(password: str) -> dict[str, str]:
        return {"email": ADMIN_EMAIL, "password": password}

    for _ in range(PER_PAIR.failures):
        response = await world.client.post("/v1/web/session", json=attempt("wrong password"))
        assert response.status_code == 401
    refused = await world.client.post("/v1/web/session", json=attempt(ADMIN_PASSWORD))
    assert refused.status_code == 429
    assert refused.json()["code"] == 429.1
    assert "set-cookie" not in refused.headers
    # The bearer sign-in shares the budget: the pair is locked for both.
    assert (await sign_in(world.client, ADMIN_PASSWORD)).status_code == 429


async def test_basic_auth_is_throttled_too(app: Litestar, world: World, clock: Clock) -> None:
    wrong = base64.b64encode(f"{ADMIN_EMAIL}:wrong password".encode()).decode()
    async with client_from(app, "192.0.2.7", https=True) as phone:
        for _ in range(PER_PAIR.failures):
            response = await phone.get("/v1/projects", headers={"Authorization": f"Basic {wrong}"})
            assert response.status_code == 401
        response = await phone.get("/v1/projects", headers={"Authorization": f"Basic {wrong}"})
    assert response.status_code == 429
    assert response.json()["code"] == 429.1
    assert "retry-after" in response.headers


async def test_passwords_are_checked_outside_the_write_transaction(
    app: Litestar, world: World, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a transaction holds the one writer: argon2 must not run under it."""
    writer_held: list[bool] = []
    real = auth.verify_password

    def watching(password: str, password_hash: str | None) -> bool:
        writer_held.append(runtime.serial is not None and runtime.serial.locked())
        return real(password, password_hash)

    monkeypatch.setattr(accounts, "verify_password", watching)
    monkeypatch.setattr(users, "verify_password", watching)
    assert (await sign_in(world.client, "wrong password")).status_code == 401
    me = (await world.client.get("/v1/users/current", headers=world.admin_headers)).json()
    changed = await world.client.put(
        f"/v1/users/{me['id']}/password",
        json={"old": "not the password", "new": "a new long password"},
        headers=world.admin_headers,
    )
    assert changed.status_code == 401
    basic = base64.b64encode(f"{ADMIN_EMAIL}:{ADMIN_PASSWORD}x".encode()).decode()
    async with client_from(app, "192.0.2.8", https=True) as phone:
        response = await phone.post(
            f"/v1/projects/{world.project_id}/submission",
            headers={"Authorization": f"Basic {basic}", "X-OpenRosa-Version": "1.0"},
            content=b"x" * 1000,
        )
    assert response.status_code == 401
    assert len(writer_held) == 3
    assert not any(writer_held)
