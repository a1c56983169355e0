"""Central's entity routes beside the single-entity ones: creators, bulk delete and restore."""

from __future__ import annotations

from tests.server.conftest import World
from tests.server.test_entities import (
    FOLLOW_UP,
    INTAKE,
    _assign,
    _intake,
    _publish,
    _submit,
    _update,
)


async def _list(world: World, labels: list[str]) -> tuple[str, list[str]]:
    base = f"/v1/projects/{world.project_id}/datasets"
    headers = world.admin_headers
    assert (await world.client.post(base, json={"name": "cities"}, headers=headers)).is_success
    uuids = []
    for label in labels:
        made = await world.client.post(
            f"{base}/cities/entities", json={"label": label}, headers=headers
        )
        assert made.status_code == 200, made.text
        uuids.append(made.json()["uuid"])
    return f"{base}/cities", uuids


async def _live(world: World, url: str) -> list[str]:
    listed = await world.client.get(f"{url}/entities", headers=world.admin_headers)
    return sorted(e["currentVersion"]["label"] for e in listed.json())


async def test_bulk_delete_and_restore_count_what_they_changed(world: World) -> None:
    url, (perth, sydney, hobart) = await _list(world, ["Perth", "Sydney", "Hobart"])
    headers = world.admin_headers
    unknown = "00000000-0000-4000-8000-000000000000"

    deleted = await world.client.post(
        f"{url}/entities/bulk-delete", json={"ids": [perth, sydney, unknown]}, headers=headers
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"success": True, "count": 2}
    assert await _live(world, url) == ["Hobart"]
    again = await world.client.post(
        f"{url}/entities/bulk-delete", json={"ids": [perth, hobart]}, headers=headers
    )
    assert again.json()["count"] == 1  # Perth was gone already
    audits = await world.client.get(f"{url}/entities/{perth}/audits", headers=headers)
    assert [a["action"] for a in audits.json()] == ["entity.delete", "entity.create"]

    restored = await world.client.post(
        f"{url}/entities/bulk-restore", json={"ids": [perth, hobart, perth]}, headers=headers
    )
    assert restored.json() == {"success": True, "count": 2}
    assert await _live(world, url) == ["Hobart", "Perth"]

    missing = await world.client.post(f"{url}/entities/bulk-delete", json={}, headers=headers)
    assert missing.status_code == 400
    viewer_cannot = await world.client.post(
        f"{world.key_base}/datasets/cities/entities/bulk-delete", json={"ids": [sydney]}
    )
    assert viewer_cannot.status_code in (403, 404)
    assert await _live(world, url) == ["Hobart", "Perth"]


async def test_creators_are_the_actors_behind_live_entities_by_name(world: World) -> None:
    await _publish(world, INTAKE)
    await _assign(world, "intake")
    await _submit(world, _intake("0f9c6d1e-8a8b-4c1d-9e2f-3a4b5c6d7e8f"))
    url = f"/v1/projects/{world.project_id}/datasets/returnees"
    made = await world.client.post(
        f"{url}/entities", json={"label": "By hand"}, headers=world.admin_headers
    )
    assert made.status_code == 200

    creators = await world.client.get(f"{url}/entities/creators", headers=world.admin_headers)

    assert creators.status_code == 200, creators.text
    me = (await world.client.get("/v1/users/current", headers=world.admin_headers)).json()
    found = creators.json()
    assert sorted(a["id"] for a in found) == sorted([me["id"], world.app_user_id])
    names = [a["displayName"] for a in found]
    assert names == sorted(names)
    assert {a["type"] for a in found} == {"user", "field_key"}

    # Deleting the only entity an actor made takes them off the list.
    gone = await world.client.delete(
        f"{url}/entities/{made.json()['uuid']}", headers=world.admin_headers
    )
    assert gone.is_success
    left = await world.client.get(f"{url}/entities/creators", headers=world.admin_headers)
    assert [a["id"] for a in left.json()] == [world.app_user_id]


async def test_versions_say_which_conflicted_and_which_matter_for_resolving(
    world: World,
) -> None:
    await _publish(world, INTAKE)
    await _publish(world, FOLLOW_UP)
    await _assign(world, "intake")
    await _assign(world, "follow_up")
    entity_id = "6a1f3c52-9d4e-4b7a-8c2d-1e0f9a8b7c6d"
    await _submit(world, _intake(entity_id))
    await _submit(world, _update(entity_id, "a", base=1, trunk=1, branch="b1"))
    await _submit(world, _update(entity_id, "b", base=2, trunk=2, branch="b2"))
    await _submit(world, _update(entity_id, "c", base=2, trunk=2, branch="b3"))  # stale
    url = f"/v1/projects/{world.project_id}/datasets/returnees/entities/{entity_id}"
    headers = world.admin_headers

    versions = (await world.client.get(f"{url}/versions", headers=headers)).json()

    assert [v["conflict"] for v in versions] == [None, None, None, "hard"]
    assert [v["lastGoodVersion"] for v in versions] == [False, False, True, False]
    assert [v["relevantToConflict"] for v in versions] == [False, True, True, True]
    stale = versions[3]
    assert (stale["baseVersion"], stale["branchId"], stale["trunkVersion"]) == (2, "b3", 2)
    assert stale["dataReceived"] == {"status": "c"}
    assert stale["baseDiff"] == ["status"]  # against version 2 (status a)
    assert stale["serverDiff"] == ["status"]  # against version 3 (status b)
    assert stale["resolved"] is False
    assert versions[0]["dataReceived"]["label"] == "Ana T"
    assert "creator" not in versions[0]
    extended = await world.client.get(
        f"{url}/versions", headers=headers | {"X-Extended-Metadata": "true"}
    )
    assert {v["creator"]["id"] for v in extended.json()} == {world.app_user_id}
    assert extended.json()[0]["creator"]["displayName"] == "Phone 1"
    relevant = await world.client.get(
        f"{url}/versions", params={"relevantToConflict": "true"}, headers=headers
    )
    assert [v["version"] for v in relevant.json()] == [2, 3, 4]

    lists = f"/v1/projects/{world.project_id}/datasets"
    [listed] = (await world.client.get(lists, headers=headers)).json()
    assert (listed["entities"], listed["conflicts"]) == (1, 1)

    resolved = await world.client.patch(f"{url}?resolve=true", json={}, headers=headers)
    assert resolved.status_code == 200, resolved.text
    after = (await world.client.get(f"{url}/versions", headers=headers)).json()
    assert after[3]["resolved"] is True
    assert [v["lastGoodVersion"] for v in after] == [False, False, False, True]
    none = await world.client.get(
        f"{url}/versions", params={"relevantToConflict": "True"}, headers=headers
    )
    assert none.json() == []
    [listed] = (await world.client.get(lists, headers=headers)).json()
    assert listed["conflicts"] == 0


async def test_a_property_goes_only_when_no_form_writes_it_and_no_entity_holds_it(
    world: World,
) -> None:
    url, (perth,) = await _list(world, ["Perth"])
    headers = world.admin_headers
    for name in ("state", "population"):
        added = await world.client.post(f"{url}/properties", json={"name": name}, headers=headers)
        assert added.is_success
    filled = await world.client.patch(
        f"{url}/entities/{perth}?force=true", json={"data": {"state": "WA"}}, headers=headers
    )
    assert filled.status_code == 200

    unused = await world.client.delete(f"{url}/properties/population", headers=headers)
    assert unused.json() == {"success": True}
    shown = await world.client.get(url, headers=headers)
    assert [p["name"] for p in shown.json()["properties"]] == ["state"]
    csv_header = (await world.client.get(f"{url}/entities.csv", headers=headers)).text
    assert csv_header.splitlines()[0].split(",")[:3] == ["__id", "label", "state"]

    held = await world.client.delete(f"{url}/properties/state", headers=headers)
    assert held.status_code == 409
    assert held.json()["code"] == 409.22
    blocked = held.json()["details"]["prerequisites"]
    assert blocked["nonEmptyEntities"]["details"] == {
        "totalCount": 1,
        "entities": [{"uuid": perth, "label": "Perth"}],
    }
    cleared = await world.client.patch(
        f"{url}/entities/{perth}?force=true", json={"data": {"state": ""}}, headers=headers
    )
    assert cleared.status_code == 200
    gone = await world.client.delete(f"{url}/properties/state", headers=headers)
    assert gone.status_code == 200, gone.text
    missing = await world.client.delete(f"{url}/properties/state", headers=headers)
    assert missing.status_code == 404

    await _publish(world, INTAKE)
    returnees = f"/v1/projects/{world.project_id}/datasets/returnees"
    written = await world.client.delete(f"{returnees}/properties/status", headers=headers)
    assert written.json()["code"] == 409.22
    forms = written.json()["details"]["prerequisites"]["dependentForms"]["details"]["forms"]
    assert [f["xmlFormId"] for f in forms] == ["intake"]
