"""Projects beyond create/list: extended metadata, ?forms=true, PATCH, PUT, DELETE;
forms' extended metadata and restore."""

from __future__ import annotations

from tests.server.conftest import World, submission_xml
from tests.server.test_submission_review import assert_problem, create

EXTENDED = {"X-Extended-Metadata": "true"}


async def test_extended_project_counts(world: World) -> None:
    plain = await world.client.get("/v1/projects", headers=world.admin_headers)
    assert "forms" not in plain.json()[0]
    assert "appUsers" not in plain.json()[0]
    empty = await world.client.get("/v1/projects", headers=world.admin_headers | EXTENDED)
    assert empty.json()[0]["lastSubmission"] is None
    await create(world, "uuid:a1")
    listed = await world.client.get("/v1/projects", headers=world.admin_headers | EXTENDED)
    [project] = listed.json()
    assert project["forms"] == 1
    assert project["appUsers"] == 1
    assert project["datasets"] == 0
    assert project["lastSubmission"].endswith("Z")
    one = await world.client.get(
        f"/v1/projects/{world.project_id}", headers=world.admin_headers | EXTENDED
    )
    assert one.json()["forms"] == 1
    assert "form.create" in one.json()["verbs"]


async def test_projects_with_nested_forms(world: World) -> None:
    await create(world, "uuid:a1")
    await world.client.patch(
        f"/v1/projects/{world.project_id}/forms/simple/submissions/uuid:a1",
        json={"reviewState": "hasIssues"},
        headers=world.admin_headers,
    )
    response = await world.client.get("/v1/projects?forms=true", headers=world.admin_headers)
    [project] = response.json()
    [form] = project["formList"]
    assert form["xmlFormId"] == "simple"
    assert form["submissions"] == 1
    assert form["reviewStates"] == {"received": 0, "hasIssues": 1, "edited": 0}
    assert form["lastSubmission"].endswith("Z")
    assert form["createdBy"]["type"] == "user"


async def test_form_extended_metadata(world: World) -> None:
    url = f"/v1/projects/{world.project_id}/forms/simple"
    plain = await world.client.get(url, headers=world.admin_headers)
    assert "submissions" not in plain.json()
    await create(world, "uuid:a1")
    await create(world, "uuid:a2")
    one = await world.client.get(url, headers=world.admin_headers | EXTENDED)
    assert one.json()["submissions"] == 2
    assert one.json()["reviewStates"]["received"] == 2
    listed = await world.client.get(
        f"/v1/projects/{world.project_id}/forms", headers=world.admin_headers | EXTENDED
    )
    assert listed.json()[0]["submissions"] == 2


async def test_patch_project(world: World) -> None:
    url = f"/v1/projects/{world.project_id}"
    renamed = await world.client.patch(
        url, json={"name": "Returns 2027", "archived": True}, headers=world.admin_headers
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Returns 2027"
    assert renamed.json()["archived"] is True
    empty = await world.client.patch(url, json={"name": " "}, headers=world.admin_headers)
    assert_problem(empty, 400, 400.8)
    missing = await world.client.patch(
        "/v1/projects/999999", json={"name": "x"}, headers=world.admin_headers
    )
    assert_problem(missing, 404, 404.1)


async def test_put_project_deep_update(world: World) -> None:
    url = f"/v1/projects/{world.project_id}"
    replaced = await world.client.put(
        url,
        json={
            "name": "Deep",
            "archived": False,
            "forms": [{"xmlFormId": "simple", "state": "closing", "assignments": []}],
        },
        headers=world.admin_headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "Deep"
    form = await world.client.get(f"{url}/forms/simple", headers=world.admin_headers)
    assert form.json()["state"] == "closing"
    # The app user lost its form-level role with the empty assignments list.
    actors = await world.client.get(
        f"{url}/forms/simple/assignments/app-user", headers=world.admin_headers
    )
    assert actors.json() == []
    back = await world.client.put(
        url,
        json={
            "name": "Deep",
            "forms": [
                {
                    "xmlFormId": "simple",
                    "assignments": [{"roleId": 2, "actorId": world.app_user_id}],
                }
            ],
        },
        headers=world.admin_headers,
    )
    assert back.status_code == 200
    actors = await world.client.get(
        f"{url}/forms/simple/assignments/app-user", headers=world.admin_headers
    )
    assert [a["id"] for a in actors.json()] == [world.app_user_id]
    unsupported = await world.client.put(
        url, json={"name": "Deep", "forms": []}, headers=world.admin_headers
    )
    assert_problem(unsupported, 501, 501.1)


async def test_delete_project(world: World) -> None:
    url = f"/v1/projects/{world.project_id}"
    deleted = await world.client.delete(url, headers=world.admin_headers)
    assert deleted.json() == {"success": True}
    assert_problem(await world.client.get(url, headers=world.admin_headers), 404, 404.1)
    assert (await world.client.get("/v1/projects", headers=world.admin_headers)).json() == []
    assert_problem(await world.client.delete(url, headers=world.admin_headers), 404, 404.1)
    audits = await world.client.get("/v1/audits?action=project", headers=world.admin_headers)
    assert [a["action"] for a in audits.json()] == ["project.delete", "project.create"]


async def test_delete_and_restore_form(world: World) -> None:
    forms = f"/v1/projects/{world.project_id}/forms"
    await world.client.delete(f"{forms}/simple", headers=world.admin_headers)
    trash = await world.client.get(f"{forms}?deleted=true", headers=world.admin_headers)
    [gone] = trash.json()
    assert gone["xmlFormId"] == "simple"
    assert gone["deletedAt"] is not None
    restored = await world.client.post(f"{forms}/{gone['id']}/restore", headers=world.admin_headers)
    assert restored.json() == {"success": True}
    assert (
        await world.client.get(f"{forms}/simple", headers=world.admin_headers)
    ).status_code == 200
    again = await world.client.post(f"{forms}/{gone['id']}/restore", headers=world.admin_headers)
    assert_problem(again, 404, 404.1)
    audits = await world.client.get("/v1/audits?action=form", headers=world.admin_headers)
    assert [a["action"] for a in audits.json()][:2] == ["form.restore", "form.delete"]


async def test_a_deleted_projects_forms_and_app_users_stop_working(world: World) -> None:
    await world.client.delete(f"/v1/projects/{world.project_id}", headers=world.admin_headers)
    form = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple", headers=world.admin_headers
    )
    assert_problem(form, 404, 404.1)
    listing = await world.client.get(
        f"{world.key_base}/formList", headers={"X-OpenRosa-Version": "1.0"}
    )
    assert listing.status_code == 403
    signed_in = await world.client.get(
        f"/v1/projects/{world.project_id}/formList",
        headers=world.admin_headers | {"X-OpenRosa-Version": "1.0"},
    )
    assert signed_in.status_code == 404  # as Central: the project is gone
    assert b"<xform>" not in signed_in.content  # no form of a deleted project is offered
    created = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/simple/submissions",
        content=submission_xml("uuid:late"),
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert_problem(created, 404, 404.1)
