"""Central's read-only summaries: form assignments, submitters, keys, and the
attachments of one submission version."""

from __future__ import annotations

from tests.server.conftest import World, submission_xml
from tests.server.test_submission_review import assert_problem, base, create, edit


async def test_form_assignments_across_the_project(world: World) -> None:
    url = f"/v1/projects/{world.project_id}/assignments/forms"
    plain = await world.client.get(url, headers=world.admin_headers)
    assert plain.json() == [{"actorId": world.app_user_id, "xmlFormId": "simple", "roleId": 2}]
    extended = await world.client.get(
        f"{url}/app-user", headers=world.admin_headers | {"X-Extended-Metadata": "true"}
    )
    [row] = extended.json()
    assert row["actor"]["id"] == world.app_user_id
    assert "actorId" not in row
    assert (await world.client.get(f"{url}/viewer", headers=world.admin_headers)).json() == []
    assert_problem(await world.client.get(f"{url}/wizard", headers=world.admin_headers), 404, 404.1)
    form = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple/assignments", headers=world.admin_headers
    )
    assert form.json() == [{"actorId": world.app_user_id, "roleId": 2}]


async def test_submitters_and_keys(world: World) -> None:
    await create(world, "uuid:a1")
    submitters = await world.client.get(f"{base(world)}/submitters", headers=world.admin_headers)
    assert [a["type"] for a in submitters.json()] == ["user"]
    keys = await world.client.get(f"{base(world)}/keys", headers=world.admin_headers)
    assert keys.json() == []
    missing = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/nope/submissions/keys", headers=world.admin_headers
    )
    assert_problem(missing, 404, 404.1)


async def test_attachments_of_one_version(world: World) -> None:
    await create(world, "uuid:a1")
    await world.client.post(
        f"{base(world)}/uuid:a1/attachments/p.jpg", content=b"old", headers=world.admin_headers
    )
    await edit(world, "uuid:a1", submission_xml("uuid:a2", photo="q.jpg", deprecated_id="uuid:a1"))
    first = await world.client.get(
        f"{base(world)}/uuid:a1/versions/uuid:a1/attachments", headers=world.admin_headers
    )
    assert first.json() == [{"name": "p.jpg", "exists": True}]
    second = await world.client.get(
        f"{base(world)}/uuid:a1/versions/uuid:a2/attachments", headers=world.admin_headers
    )
    assert second.json() == [{"name": "q.jpg", "exists": False}]
    photo = await world.client.get(
        f"{base(world)}/uuid:a1/versions/uuid:a1/attachments/p.jpg", headers=world.admin_headers
    )
    # The bytes, or on S3 a redirect to them.
    assert photo.status_code in (200, 307)
    if photo.status_code == 200:
        assert photo.content == b"old"
    absent = await world.client.get(
        f"{base(world)}/uuid:a1/versions/uuid:a2/attachments/q.jpg", headers=world.admin_headers
    )
    assert_problem(absent, 404, 404.1)


async def test_clearing_a_file_of_an_old_version(world: World) -> None:
    await create(world, "uuid:a1")
    await world.client.post(
        f"{base(world)}/uuid:a1/attachments/p.jpg", content=b"old", headers=world.admin_headers
    )
    await edit(world, "uuid:a1", submission_xml("uuid:a2", deprecated_id="uuid:a1"))
    url = f"{base(world)}/uuid:a1/versions/uuid:a1/attachments/p.jpg"
    cleared = await world.client.delete(url, headers=world.admin_headers)
    assert cleared.json() == {"success": True}
    old = await world.client.get(
        f"{base(world)}/uuid:a1/versions/uuid:a1/attachments", headers=world.admin_headers
    )
    assert old.json() == [{"name": "p.jpg", "exists": False}]
    # The current version carried the bytes over and keeps them.
    current = await world.client.get(
        f"{base(world)}/uuid:a1/attachments", headers=world.admin_headers
    )
    assert current.json() == [{"name": "p.jpg", "exists": True}]
    missing = await world.client.delete(
        f"{base(world)}/uuid:a1/versions/uuid:zz/attachments/p.jpg", headers=world.admin_headers
    )
    assert_problem(missing, 404, 404.1)
