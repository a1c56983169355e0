"""Reviewing submissions through the API: edits (PUT), versions, diffs, review
states, comments, per-submission audits, deletion and restore, attachments."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.conftest import World, submission_xml

XML = {"Content-Type": "application/xml"}


def base(world: World) -> str:
    return f"/v1/projects/{world.project_id}/forms/simple/submissions"


async def create(world: World, instance_id: str, **fields: object) -> httpx.Response:
    response = await world.client.post(
        base(world),
        content=submission_xml(instance_id, **fields),  # type: ignore[arg-type]
        headers=world.admin_headers | XML,
    )
    assert response.status_code == 200, response.text
    return response


async def edit(world: World, instance_id: str, xml: bytes) -> httpx.Response:
    return await world.client.put(
        f"{base(world)}/{instance_id}", content=xml, headers=world.admin_headers | XML
    )


def assert_problem(response: httpx.Response, status: int, code: float) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["code"], float | int)
    assert body["message"]


async def test_create_answers_with_the_current_version(world: World) -> None:
    body = (await create(world, "uuid:a1")).json()
    assert body["instanceId"] == "uuid:a1"
    assert body["reviewState"] is None
    assert body["currentVersion"]["instanceId"] == "uuid:a1"
    assert body["currentVersion"]["current"] is True
    assert body["currentVersion"]["instanceName"] is None
    assert "submitter" not in body


async def test_edit_with_put_makes_a_new_current_version(world: World) -> None:
    await create(world, "uuid:a1")
    response = await edit(
        world, "uuid:a1", submission_xml("uuid:a2", name="Besa", deprecated_id="uuid:a1")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["instanceId"] == "uuid:a1"
    assert body["reviewState"] == "edited"
    assert body["currentVersion"]["instanceId"] == "uuid:a2"
    xml = await world.client.get(f"{base(world)}/uuid:a1.xml", headers=world.admin_headers)
    assert b"<name>Besa</name>" in xml.content

    versions = await world.client.get(
        f"{base(world)}/uuid:a1/versions", headers=world.admin_headers
    )
    assert [(v["instanceId"], v["current"]) for v in versions.json()] == [
        ("uuid:a2", True),
        ("uuid:a1", False),
    ]
    assert versions.json()[0]["formVersion"] == "1"
    one = await world.client.get(
        f"{base(world)}/uuid:a1/versions/uuid:a1", headers=world.admin_headers
    )
    assert one.json()["instanceId"] == "uuid:a1"
    assert one.json()["current"] is False
    old_xml = await world.client.get(
        f"{base(world)}/uuid:a1/versions/uuid:a1.xml", headers=world.admin_headers
    )
    assert b"<name>Arta</name>" in old_xml.content
    missing = await world.client.get(
        f"{base(world)}/uuid:a1/versions/uuid:nope", headers=world.admin_headers
    )
    assert_problem(missing, 404, 404.1)


async def test_put_without_deprecated_id_is_400_19(world: World) -> None:
    await create(world, "uuid:a1")
    assert_problem(await edit(world, "uuid:a1", submission_xml("uuid:a2")), 400, 400.19)


async def test_put_deprecating_an_old_version_is_409_9(world: World) -> None:
    await create(world, "uuid:a1")
    first = await edit(world, "uuid:a1", submission_xml("uuid:a2", deprecated_id="uuid:a1"))
    assert first.status_code == 200
    stale = await edit(world, "uuid:a1", submission_xml("uuid:a3", deprecated_id="uuid:a1"))
    assert_problem(stale, 409, 409.9)


async def test_put_to_an_unknown_submission_is_404(world: World) -> None:
    response = await edit(world, "uuid:zz", submission_xml("uuid:a2", deprecated_id="uuid:zz"))
    assert_problem(response, 404, 404.1)


async def test_edit_carries_attachments_over(world: World) -> None:
    await create(world, "uuid:a1")
    upload = await world.client.post(
        f"{base(world)}/uuid:a1/attachments/p.jpg",
        content=b"jpeg bytes",
        headers=world.admin_headers | {"Content-Type": "image/jpeg"},
    )
    assert upload.status_code == 200, upload.text
    assert upload.json() == {"success": True}
    await edit(world, "uuid:a1", submission_xml("uuid:a2", deprecated_id="uuid:a1"))
    listed = await world.client.get(
        f"{base(world)}/uuid:a1/attachments", headers=world.admin_headers
    )
    assert listed.json() == [{"name": "p.jpg", "exists": True}]
    photo = await world.client.get(
        f"{base(world)}/uuid:a1/attachments/p.jpg", headers=world.admin_headers
    )
    assert photo.status_code in (200, 307)


async def test_attachment_upload_and_clear(world: World) -> None:
    await create(world, "uuid:a1")
    url = f"{base(world)}/uuid:a1/attachments/p.jpg"
    unknown = await world.client.post(
        f"{base(world)}/uuid:a1/attachments/other.jpg", content=b"x", headers=world.admin_headers
    )
    assert_problem(unknown, 404, 404.1)
    await world.client.post(url, content=b"jpeg", headers=world.admin_headers)
    cleared = await world.client.delete(url, headers=world.admin_headers)
    assert cleared.status_code == 200
    assert cleared.json() == {"success": True}
    listed = await world.client.get(
        f"{base(world)}/uuid:a1/attachments", headers=world.admin_headers
    )
    assert listed.json() == [{"name": "p.jpg", "exists": False}]
    anonymous = await world.client.delete(url)
    assert_problem(anonymous, 401, 401.4)


async def test_app_user_may_fill_in_only_its_own_missing_file(world: World) -> None:
    await create(world, "uuid:a1")
    response = await world.client.post(
        f"/v1/key/{world.app_user_token}/projects/{world.project_id}/forms/simple/submissions/uuid:a1/attachments/p.jpg",
        content=b"jpeg",
    )
    assert response.status_code in (403, 404)


async def test_diffs_in_centrals_shape(world: World) -> None:
    await create(world, "uuid:a1", name="Dana", age=44)
    await edit(
        world, "uuid:a1", submission_xml("uuid:a2", name="Donna", age=55, deprecated_id="uuid:a1")
    )
    response = await world.client.get(f"{base(world)}/uuid:a1/diffs", headers=world.admin_headers)
    assert response.status_code == 200
    assert response.json() == {
        "uuid:a2": [
            {"old": "Dana", "new": "Donna", "path": ["name"]},
            {"old": "44", "new": "55", "path": ["age"]},
            {"old": "uuid:a1", "new": "uuid:a2", "path": ["meta", "instanceID"]},
            {"new": "uuid:a1", "path": ["meta", "deprecatedID"]},
        ]
    }
    missing = await world.client.get(f"{base(world)}/uuid:zz/diffs", headers=world.admin_headers)
    assert_problem(missing, 404, 404.1)


async def test_review_state_is_set_and_checked(world: World) -> None:
    await create(world, "uuid:a1")
    url = f"{base(world)}/uuid:a1"
    response = await world.client.patch(
        url, json={"reviewState": "approved"}, headers=world.admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["reviewState"] == "approved"
    wrong = await world.client.patch(
        url, json={"reviewState": "great"}, headers=world.admin_headers
    )
    assert_problem(wrong, 400, 400.8)
    back = await world.client.patch(
        url, json={"reviewState": "received"}, headers=world.admin_headers
    )
    assert back.json()["reviewState"] is None


async def test_comments(world: World) -> None:
    await create(world, "uuid:a1")
    url = f"{base(world)}/uuid:a1/comments"
    posted = await world.client.post(
        url, json={"body": "check the age"}, headers=world.admin_headers
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["body"] == "check the age"
    assert isinstance(posted.json()["actorId"], int)
    assert posted.json()["createdAt"].endswith("Z")
    listed = await world.client.get(
        url, headers=world.admin_headers | {"X-Extended-Metadata": "true"}
    )
    [comment] = listed.json()
    assert comment["body"] == "check the age"
    assert comment["actor"]["type"] == "user"
    empty = await world.client.post(url, json={"body": "  "}, headers=world.admin_headers)
    assert_problem(empty, 400, 400.2)
    missing = await world.client.get(f"{base(world)}/uuid:zz/comments", headers=world.admin_headers)
    assert_problem(missing, 404, 404.1)


async def test_delete_and_restore(world: World) -> None:
    await create(world, "uuid:a1")
    await create(world, "uuid:b1")
    url = f"{base(world)}/uuid:a1"
    deleted = await world.client.delete(url, headers=world.admin_headers)
    assert deleted.json() == {"success": True}
    assert_problem(await world.client.get(url, headers=world.admin_headers), 404, 404.1)
    listed = await world.client.get(base(world), headers=world.admin_headers)
    assert [s["instanceId"] for s in listed.json()] == ["uuid:b1"]
    trash = await world.client.get(f"{base(world)}?deleted=true", headers=world.admin_headers)
    assert [s["instanceId"] for s in trash.json()] == ["uuid:a1"]
    assert trash.json()[0]["deletedAt"] is not None
    again = await world.client.delete(url, headers=world.admin_headers)
    assert_problem(again, 404, 404.1)
    restored = await world.client.post(f"{url}/restore", headers=world.admin_headers)
    assert restored.json() == {"success": True}
    assert (await world.client.get(url, headers=world.admin_headers)).status_code == 200
    not_deleted = await world.client.post(f"{url}/restore", headers=world.admin_headers)
    assert_problem(not_deleted, 404, 404.1)


async def test_submission_audits_newest_first(world: World) -> None:
    await create(world, "uuid:a1")
    await world.client.patch(
        f"{base(world)}/uuid:a1", json={"reviewState": "hasIssues"}, headers=world.admin_headers
    )
    response = await world.client.get(
        f"{base(world)}/uuid:a1/audits",
        headers=world.admin_headers | {"X-Extended-Metadata": "true"},
    )
    assert response.status_code == 200
    actions = [a["action"] for a in response.json()]
    assert actions == ["submission.update", "submission.create"]
    first = response.json()[0]
    assert first["details"]["reviewState"] == "hasIssues"
    assert first["actor"]["type"] == "user"
    assert first["actee"]["instanceId"] == "uuid:a1"
    assert first["loggedAt"].endswith("Z")


async def test_list_pages_and_extended_metadata(world: World) -> None:
    for n in range(5):
        await create(world, f"uuid:{n}")
    page = await world.client.get(f"{base(world)}?limit=2&offset=1", headers=world.admin_headers)
    assert [s["instanceId"] for s in page.json()] == ["uuid:3", "uuid:2"]
    extended = await world.client.get(
        base(world), headers=world.admin_headers | {"X-Extended-Metadata": "true"}
    )
    first = extended.json()[0]
    assert first["submitter"]["displayName"]
    assert first["submitter"]["id"] == first["submitterId"]
    assert first["formVersion"] == "1"
    one = await world.client.get(
        f"{base(world)}/uuid:1", headers=world.admin_headers | {"X-Extended-Metadata": "true"}
    )
    assert one.json()["submitter"]["type"] == "user"
    negative = await world.client.get(f"{base(world)}?limit=-1", headers=world.admin_headers)
    assert_problem(negative, 400, 400.8)


async def test_an_edits_own_instance_id_redirects_to_its_version(world: World) -> None:
    await create(world, "uuid:a1")
    await edit(world, "uuid:a1", submission_xml("uuid:a2", deprecated_id="uuid:a1"))
    for suffix in ("", ".xml"):
        response = await world.client.get(
            f"{base(world)}/uuid:a2{suffix}", headers=world.admin_headers
        )
        assert response.status_code == 301
        assert response.headers["location"].endswith(
            f"/submissions/uuid:a1/versions/uuid:a2{suffix}"
        )
    followed = await world.client.get(
        f"{base(world)}/uuid:a2.xml", headers=world.admin_headers, follow_redirects=True
    )
    assert b"uuid:a2" in followed.content


async def test_every_submission_route_answers_404_for_an_unknown_submission(
    world: World,
) -> None:
    url = f"{base(world)}/uuid:nobody"
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", url, {}),
        ("GET", f"{url}.xml", {}),
        ("PATCH", url, {"json": {"reviewState": "approved"}}),
        ("DELETE", url, {}),
        ("POST", f"{url}/restore", {}),
        ("GET", f"{url}/versions", {}),
        ("GET", f"{url}/versions/uuid:nobody", {}),
        ("GET", f"{url}/diffs", {}),
        ("GET", f"{url}/comments", {}),
        ("POST", f"{url}/comments", {"json": {"body": "x"}}),
        ("GET", f"{url}/audits", {}),
        ("GET", f"{url}/attachments", {}),
        ("GET", f"{url}/attachments/p.jpg", {}),
        ("POST", f"{url}/attachments/p.jpg", {"content": b"x"}),
        ("DELETE", f"{url}/attachments/p.jpg", {}),
    ]
    for method, path, extra in calls:
        response = await world.client.request(method, path, headers=world.admin_headers, **extra)
        assert_problem(response, 404, 404.1)
        assert response.headers["content-type"].startswith("application/json")
