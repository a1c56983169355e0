"""GET /v1/audits: Central's action groups, date range, paging, extended metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.server.conftest import World, sign_in
from tests.server.test_submission_review import assert_problem, create
from tests.server.test_users_api import PASSWORD, create_user


async def actions(world: World, query: str = "") -> list[str]:
    response = await world.client.get(f"/v1/audits{query}", headers=world.admin_headers)
    assert response.status_code == 200, response.text
    return [a["action"] for a in response.json()]


async def test_every_write_of_the_fixture_is_logged_newest_first(world: World) -> None:
    logged = await actions(world)
    assert logged[-1] == "user.create"
    for action in (
        "user.session.create",
        "project.create",
        "form.create",
        "field_key.create",
        "field_key.assignment.create",
    ):
        assert action in logged


async def test_action_groups_and_nonverbose(world: World) -> None:
    await create(world, "uuid:a1")
    assert await actions(world, "?action=submission") == ["submission.create"]
    assert await actions(world, "?action=submission.create") == ["submission.create"]
    assert "submission.create" not in await actions(world, "?action=nonverbose")
    assert set(await actions(world, "?action=form")) <= {
        "form.create",
        "form.update.publish",
        "form.update.draft.set",
    }
    assert await actions(world, "?action=no.such.thing") == []


async def test_date_range_and_paging(world: World) -> None:
    everything = await actions(world)
    page = await actions(world, "?limit=2&offset=1")
    assert page == everything[1:3]
    future = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert await actions(world, f"?start={future}") == []
    assert await actions(world, f"?end={future}") == everything
    assert await actions(world, "?end=2000-01-01") == []
    bad = await world.client.get("/v1/audits?start=yesterday", headers=world.admin_headers)
    assert_problem(bad, 400, 400.8)


async def test_extended_metadata_names_actor_and_actee(world: World) -> None:
    response = await world.client.get(
        "/v1/audits?action=project", headers=world.admin_headers | {"X-Extended-Metadata": "true"}
    )
    [created] = response.json()
    assert created["actor"]["type"] == "user"
    assert created["actee"]["name"] == "Returns"
    assert created["acteeId"] == f"project/{world.project_id}"
    assert created["loggedAt"].endswith("Z")
    plain = await world.client.get("/v1/audits?action=project", headers=world.admin_headers)
    assert "actor" not in plain.json()[0]


async def test_only_administrators_read_the_log(world: World) -> None:
    await create_user(world, "lule@example.org")
    headers = await sign_in(world.client, "lule@example.org", PASSWORD)
    assert_problem(await world.client.get("/v1/audits", headers=headers), 403, 403.1)
    assert_problem(await world.client.get("/v1/audits"), 401, 401.4)
