# ruff: noqa: E501 - the table keeps one route per line
"""Who may call what: every route of the app × six callers, against Central's answers.

The routes come from Litestar's own route table, so a route added later without a
row here fails ``test_every_route_has_a_row``. Columns, in order:

    anon   no credentials
    app    the project's app user (Bearer token; form-level app-user role on `simple`)
    coll   data collector (formfill) on the project
    view   project viewer
    mgr    project manager
    admin  site administrator

``ok`` is any success (2xx, or 307 to a presigned S3 URL); otherwise the exact
status. Rows that destroy or need their own target (DELETE, restore, publish...)
get a fresh one before every caller.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy import select

from server.db.models import CheckFinding, Submission
from server.services import accounts
from tests.server.conftest import SIMPLE_FORM, World, sign_in, submission_xml

CALLERS = ("anon", "app", "coll", "view", "mgr", "admin")
PASSWORD = "a long enough password"
XML = {"Content-Type": "application/xml"}
OPENROSA = {"X-OpenRosa-Version": "1.0"}
_serial = itertools.count(1)


@dataclass
class Ctx:
    world: World
    headers: dict[str, dict[str, str]]
    values: dict[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.world.client

    @property
    def admin(self) -> dict[str, str]:
        return self.world.admin_headers

    @property
    def forms(self) -> str:
        return f"/v1/projects/{self.world.project_id}/forms"


Body = Callable[[Ctx], dict[str, Any]]
Fresh = Callable[[Ctx], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expected: str
    body: Body | None = None
    fresh: Fresh | None = field(default=None, compare=False)


def n() -> int:
    return next(_serial)


async def new_user(ctx: Ctx) -> str:
    response = await ctx.client.post(
        "/v1/users", json={"email": f"u{n()}@example.org", "password": PASSWORD}, headers=ctx.admin
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def ok(response: Awaitable[httpx.Response]) -> httpx.Response:
    answered = await response
    assert answered.status_code < 300, answered.text
    return answered


# -- fresh targets for rows that consume theirs ------------------------------------


def given(**values: str) -> Fresh:
    """Values a row uses instead of the shared ones (no new target is made)."""

    async def fixed(ctx: Ctx) -> dict[str, str]:
        return values

    return fixed


async def fresh_user(ctx: Ctx) -> dict[str, str]:
    return {"actor_id": await new_user(ctx)}


async def fresh_site_admin(ctx: Ctx) -> dict[str, str]:
    actor_id = await new_user(ctx)
    await ok(ctx.client.post(f"/v1/assignments/admin/{actor_id}", headers=ctx.admin))
    return {"actor_id": actor_id, "role": "admin"}


async def fresh_project_viewer(ctx: Ctx) -> dict[str, str]:
    actor_id = await new_user(ctx)
    project = ctx.values["project_id"]
    await ok(
        ctx.client.post(f"/v1/projects/{project}/assignments/viewer/{actor_id}", headers=ctx.admin)
    )
    return {"actor_id": actor_id, "role": "viewer"}


async def fresh_form_viewer(ctx: Ctx) -> dict[str, str]:
    actor_id = await new_user(ctx)
    await ok(
        ctx.client.post(f"{ctx.forms}/simple/assignments/form-viewer/{actor_id}", headers=ctx.admin)
    )
    return {"actor_id": actor_id, "role": "form-viewer"}


async def fresh_export_job(ctx: Ctx) -> dict[str, str]:
    created = await ok(ctx.client.post(f"{ctx.forms}/simple/export-jobs", headers=ctx.admin))
    return {"job_id": str(created.json()["id"])}


async def fresh_session(ctx: Ctx) -> dict[str, str]:
    email = f"s{n()}@example.org"
    await ok(
        ctx.client.post("/v1/users", json={"email": email, "password": PASSWORD}, headers=ctx.admin)
    )
    headers = await sign_in(ctx.client, email, PASSWORD)
    return {"token": headers["Authorization"].removeprefix("Bearer ")}


async def fresh_project(ctx: Ctx) -> dict[str, str]:
    created = await ok(ctx.client.post("/v1/projects", json={"name": "P"}, headers=ctx.admin))
    project = created.json()["id"]
    await ok(
        ctx.client.post(
            f"/v1/projects/{project}/assignments/manager/{ctx.values['mgr_id']}", headers=ctx.admin
        )
    )
    return {"project_id": str(project)}


async def fresh_app_user(ctx: Ctx) -> dict[str, str]:
    created = await ok(
        ctx.client.post(
            f"/v1/projects/{ctx.values['project_id']}/app-users",
            json={"displayName": "Phone"},
            headers=ctx.admin,
        )
    )
    return {"actor_id": str(created.json()["id"])}


def form_xml(xml_form_id: str) -> bytes:
    return SIMPLE_FORM.replace(b'id="simple"', f'id="{xml_form_id}"'.encode())


async def fresh_form(ctx: Ctx) -> dict[str, str]:
    xml_form_id = f"f{n()}"
    await ok(
        ctx.client.post(
            f"{ctx.forms}?publish=true", content=form_xml(xml_form_id), headers=ctx.admin | XML
        )
    )
    return {"xml_form_id": xml_form_id}


async def fresh_deleted_form(ctx: Ctx) -> dict[str, str]:
    xml_form_id = (await fresh_form(ctx))["xml_form_id"]
    await ok(ctx.client.delete(f"{ctx.forms}/{xml_form_id}", headers=ctx.admin))
    trash = await ok(ctx.client.get(f"{ctx.forms}?deleted=true", headers=ctx.admin))
    [form] = [f for f in trash.json() if f["xmlFormId"] == xml_form_id]
    return {"form_id": str(form["id"])}


async def fresh_entity(ctx: Ctx) -> dict[str, str]:
    created = await ok(
        ctx.client.post(
            f"/v1/projects/{ctx.world.project_id}/datasets/people/entities",
            json={"label": f"E{n()}"},
            headers=ctx.admin,
        )
    )
    return {"entity_uuid": created.json()["uuid"]}


async def fresh_deleted_entity(ctx: Ctx) -> dict[str, str]:
    made = await fresh_entity(ctx)
    await ok(
        ctx.client.delete(
            f"/v1/projects/{ctx.world.project_id}/datasets/people/entities/{made['entity_uuid']}",
            headers=ctx.admin,
        )
    )
    return made


async def fresh_property(ctx: Ctx) -> dict[str, str]:
    name = f"unused{n()}"
    await ok(
        ctx.client.post(
            f"/v1/projects/{ctx.world.project_id}/datasets/people/properties",
            json={"name": name},
            headers=ctx.admin,
        )
    )
    return {"property_name": name}


# A published form that downloads the `people` list, assigned to the world's app user.
PEOPLE_FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
<h:head><h:title>People</h:title><model>
<instance><data id="people_visit"><who/><meta><instanceID/></meta></data></instance>
<instance id="people" src="jr://file-csv/people.csv"/>
<bind nodeset="/data/who" type="string"/></model></h:head>
<h:body><select1 ref="/data/who"><label>Who</label>
<itemset nodeset="instance('people')/root/item"><value ref="name"/><label ref="label"/></itemset>
</select1></h:body></h:html>"""


async def people_list(ctx: Ctx) -> str:
    """The `people` entity list with one entity, linked to a form the app user has."""
    admin, base = ctx.admin, f"/v1/projects/{ctx.world.project_id}"
    await ok(ctx.client.post(f"{base}/datasets", json={"name": "people"}, headers=admin))
    entity = await fresh_entity(ctx)
    await ok(
        ctx.client.post(f"{base}/forms?publish=true", content=PEOPLE_FORM, headers=admin | XML)
    )
    await ok(
        ctx.client.post(
            f"{base}/forms/people_visit/assignments/app-user/{ctx.world.app_user_id}",
            headers=admin,
        )
    )
    return entity["entity_uuid"]


async def fresh_draft(ctx: Ctx) -> dict[str, str]:
    await ok(ctx.client.post(f"{ctx.forms}/simple/draft", headers=ctx.admin))
    return {}


async def fresh_draft_token(ctx: Ctx) -> dict[str, str]:
    await fresh_draft(ctx)
    draft = await ok(ctx.client.get(f"{ctx.forms}/simple/draft", headers=ctx.admin))
    return {"draft_token": draft.json()["draftToken"]}


async def fresh_submission(ctx: Ctx) -> dict[str, str]:
    instance_id = f"uuid:fresh{n()}"
    await ok(
        ctx.client.post(
            f"{ctx.forms}/simple/submissions",
            content=submission_xml(instance_id),
            headers=ctx.admin | XML,
        )
    )
    return {"instance_ref": instance_id, "instance_id": instance_id}


async def fresh_submission_with_photo(ctx: Ctx) -> dict[str, str]:
    made = await fresh_submission(ctx)
    await ok(
        ctx.client.post(
            f"{ctx.forms}/simple/submissions/{made['instance_id']}/attachments/p.jpg",
            content=b"jpeg",
            headers=ctx.admin,
        )
    )
    return made | {"version_id": made["instance_id"]}


async def fresh_deleted_submission(ctx: Ctx) -> dict[str, str]:
    made = await fresh_submission(ctx)
    await ok(
        ctx.client.delete(
            f"{ctx.forms}/simple/submissions/{made['instance_id']}", headers=ctx.admin
        )
    )
    return made


async def fresh_cleaning_entry(ctx: Ctx) -> dict[str, str]:
    made = await fresh_submission(ctx)
    created = await ok(
        ctx.client.post(
            f"{ctx.forms}/simple/cleaning-log",
            json={
                "instanceId": made["instance_id"],
                "field": "/age",
                "newValue": "1",
                "reason": "r",
            },
            headers=ctx.admin,
        )
    )
    return {"entry_id": str(created.json()["id"])}


async def fresh_finding(ctx: Ctx) -> dict[str, str]:
    """An open finding of a data check on a fresh submission's age, as the checks
    worker stores them (running the checks needs more data than this world has)."""
    made = await fresh_submission(ctx)
    async with ctx.world.runtime.transaction() as db:
        submission = await db.scalar(
            select(Submission).where(Submission.instance_id == made["instance_id"])
        )
        assert submission is not None
        finding = CheckFinding(
            form_id=submission.form_id,
            submission_id=submission.id,
            instance_id=made["instance_id"],
            kind="outlier",
            field="/age",
            field_key="/age",
            value="30",
            message="age 30 is high",
            related="[]",
            status="open",
            created_at=datetime.now(UTC),
        )
        db.add(finding)
        await db.flush()
        return {"finding_id": str(finding.id)}


async def fresh_link(ctx: Ctx) -> dict[str, str]:
    created = await ok(
        ctx.client.post(
            f"{ctx.forms}/simple/public-links", json={"displayName": "L"}, headers=ctx.admin
        )
    )
    return {"link_id": str(created.json()["id"])}


# -- request bodies ----------------------------------------------------------------


def new_submission(ctx: Ctx) -> dict[str, Any]:
    return {"content": submission_xml(f"uuid:new{n()}"), "headers": XML}


def openrosa_submission(ctx: Ctx) -> dict[str, Any]:
    xml = submission_xml(f"uuid:or{n()}")
    return {"files": {"xml_submission_file": ("x.xml", xml, "text/xml")}, "headers": OPENROSA}


def edit_of_current(ctx: Ctx) -> dict[str, Any]:
    current = ctx.values["instance_ref"]
    xml = submission_xml(f"uuid:edit{n()}", deprecated_id=current)
    return {"content": xml, "headers": XML}


def cleaning_entry(ctx: Ctx) -> dict[str, Any]:
    entry = {"instanceId": ctx.values["instance_ref"], "field": "/age", "newValue": "2"}
    return {"json": entry | {"reason": "r"}}


def cleaning_upload(ctx: Ctx) -> dict[str, Any]:
    text = f"instanceId,field,newValue,reason\n{ctx.values['instance_ref']},/age,3,r\n"
    return {"content": text.encode(), "headers": {"Content-Type": "text/csv"}}


def new_form(ctx: Ctx) -> dict[str, Any]:
    return {"content": form_xml(f"new{n()}"), "headers": XML}


def new_user_body(ctx: Ctx) -> dict[str, Any]:
    return {"json": {"email": f"new{n()}@example.org"}}


def json_body(value: dict[str, Any]) -> Body:
    return lambda ctx: {"json": value}


ANY_SIGN_IN = json_body({"email": "admin@example.org", "password": "correct horse battery"})
OPENROSA_ONLY: Body = lambda ctx: {"headers": OPENROSA}  # noqa: E731
PHOTO: Body = lambda ctx: {"content": b"jpeg", "headers": {"Content-Type": "image/jpeg"}}  # noqa: E731

P = "/v1/projects/{project_id:int}"
F = P + "/forms/{xml_form_id:str}"
S = F + "/submissions/{instance_id:str}"
KEY = "/v1/key/{token:str}/projects/{project_id:int}"
TEST = "/v1/test/{draft_token:str}/projects/{project_id:int}/forms/{xml_form_id:str}"

# fmt: off
ROWS = [
    #    method    path                                            anon app coll view mgr admin
    Row("POST",   "/v1/sessions",                                  "ok  ok  ok  ok  ok  ok", ANY_SIGN_IN),
    # The web app's cookie session: bearer callers have no cookie, so no session here
    Row("POST",   "/v1/web/session",                               "ok  ok  ok  ok  ok  ok", ANY_SIGN_IN),
    Row("GET",    "/v1/web/session",                               "401 401 401 401 401 401"),
    Row("DELETE", "/v1/web/session",                               "401 401 401 401 401 401"),
    # The API's root is nothing to a client (a browser's page visit goes to the app)
    Row("GET",    "/v1",                                           "404 404 404 404 404 404"),
    Row("DELETE", "/v1/sessions/{token:str}",                      "401 403 403 403 403 ok", fresh=fresh_session),
    Row("GET",    "/v1/users/current",                             "401 404 ok  ok  ok  ok"),
    Row("GET",    "/v1/users",                                     "401 ok  ok  ok  ok  ok"),
    Row("POST",   "/v1/users",                                     "401 403 403 403 403 ok", new_user_body),
    Row("GET",    "/v1/users/{actor_id:int}",                      "401 403 403 403 403 ok"),
    Row("PATCH",  "/v1/users/{actor_id:int}",                      "401 403 403 403 403 ok", json_body({"displayName": "T"})),
    Row("DELETE", "/v1/users/{actor_id:int}",                      "401 403 403 403 403 ok", fresh=fresh_user),
    Row("PUT",    "/v1/users/{actor_id:int}/password",             "401 403 403 403 403 ok", json_body({"old": PASSWORD, "new": PASSWORD})),
    Row("GET",    "/v1/roles",                                     "ok  ok  ok  ok  ok  ok"),
    Row("GET",    "/v1/roles/{role:str}",                          "ok  ok  ok  ok  ok  ok"),
    Row("GET",    "/v1/assignments",                               "401 403 403 403 403 ok"),
    Row("GET",    "/v1/assignments/{role:str}",                    "401 403 403 403 403 ok"),
    Row("POST",   "/v1/assignments/{role:str}/{actor_id:int}",     "401 403 403 403 403 ok", fresh=fresh_user),
    Row("DELETE", "/v1/assignments/{role:str}/{actor_id:int}",     "401 403 403 403 403 ok", fresh=fresh_site_admin),
    Row("GET",    "/v1/audits",                                    "401 403 403 403 403 ok"),
    Row("GET",    "/v1/projects",                                  "401 ok  ok  ok  ok  ok"),
    Row("POST",   "/v1/projects",                                  "401 403 403 403 403 ok", json_body({"name": "New"})),
    Row("GET",    P,                                               "401 403 ok  ok  ok  ok"),
    Row("PATCH",  P,                                               "401 403 403 403 ok  ok", json_body({"description": "d"})),
    Row("PUT",    P,                                               "401 403 403 403 ok  ok", json_body({"name": "Returns"})),
    Row("DELETE", P,                                               "401 403 403 403 ok  ok", fresh=fresh_project),
    Row("GET",    P + "/app-users",                                "401 403 403 403 ok  ok"),
    Row("POST",   P + "/app-users",                                "401 403 403 403 ok  ok", json_body({"displayName": "A"})),
    Row("DELETE", P + "/app-users/{actor_id:int}",                 "401 403 403 403 ok  ok", fresh=fresh_app_user),
    Row("GET",    P + "/app-users/{actor_id:int}/qr.png",          "401 403 403 403 ok  ok", fresh=fresh_app_user),
    Row("GET",    P + "/assignments",                              "401 403 403 403 ok  ok"),
    Row("GET",    P + "/assignments/{role:str}",                   "401 403 403 403 ok  ok"),
    Row("POST",   P + "/assignments/{role:str}/{actor_id:int}",    "401 403 403 403 ok  ok", fresh=fresh_user),
    Row("DELETE", P + "/assignments/{role:str}/{actor_id:int}",    "401 403 403 403 ok  ok", fresh=fresh_project_viewer),
    Row("POST",   P + "/erasures",                                 "401 403 403 403 ok  ok", json_body({"caseField": "name", "caseValue": "nobody"})),
    Row("GET",    P + "/assignments/forms",                        "401 403 403 403 ok  ok"),
    Row("GET",    P + "/assignments/forms/{role:str}",             "401 403 403 403 ok  ok"),
    Row("GET",    P + "/forms",                                    "401 403 ok  ok  ok  ok"),
    Row("POST",   P + "/forms",                                    "401 403 403 403 ok  ok", new_form),
    Row("POST",   P + "/forms/{form_id:int}/restore",              "401 403 403 403 ok  ok", fresh=fresh_deleted_form),
    Row("GET",    P + "/forms/{form_ref:str}",                     "401 ok  ok  ok  ok  ok"),
    Row("PATCH",  F,                                               "401 403 403 403 ok  ok", json_body({"state": "open"})),
    Row("DELETE", F,                                               "401 403 403 403 ok  ok", fresh=fresh_form),
    Row("GET",    F + "/versions",                                 "401 ok  ok  ok  ok  ok"),
    Row("GET",    F + "/versions/{version_ref:str}",               "401 ok  ok  ok  ok  ok", fresh=given(version_ref="1")),
    Row("GET",    F + "/versions/{version_ref:str}/fields",        "401 ok  ok  ok  ok  ok", fresh=given(version_ref="1")),
    Row("GET",    F + "/versions/{version_ref:str}/attachments",   "401 ok  ok  ok  ok  ok", fresh=given(version_ref="1")),
    Row("GET",    F + "/versions/{version_ref:str}/attachments/{name:str}", "401 404 404 404 404 404", fresh=given(version_ref="1")),
    Row("GET",    F + "/draft.xml",                                "401 ok  ok  ok  ok  ok", fresh=fresh_draft),
    Row("GET",    F + "/draft.xlsx",                               "401 404 404 404 404 404", fresh=fresh_draft),
    Row("GET",    F + "/draft.xls",                                "401 404 404 404 404 404", fresh=fresh_draft),
    Row("GET",    F + "/fields",                                   "401 ok  ok  ok  ok  ok"),
    Row("GET",    F + "/draft/fields",                             "401 ok  ok  ok  ok  ok", fresh=fresh_draft),
    Row("GET",    F + "/attachments",                              "401 ok  ok  ok  ok  ok"),
    Row("GET",    F + "/attachments/{name:str}",                   "401 404 404 404 404 404"),
    Row("POST",   F + "/draft",                                    "401 403 403 403 ok  ok"),
    Row("GET",    F + "/draft",                                    "401 ok  ok  ok  ok  ok", fresh=fresh_draft),
    Row("DELETE", F + "/draft",                                    "401 403 403 403 ok  ok", fresh=fresh_draft),
    Row("GET",    F + "/draft/attachments",                        "401 ok  ok  ok  ok  ok", fresh=fresh_draft),
    Row("GET",    F + "/draft/attachments/{name:str}",             "401 404 404 404 404 404"),
    Row("POST",   F + "/draft/attachments/{name:str}",             "401 403 403 403 404 404", PHOTO),
    Row("POST",   F + "/draft/publish",                            "401 403 403 403 ok  ok", lambda ctx: {"params": {"version": f"v{n()}"}}, fresh=fresh_draft),
    Row("GET",    F + "/assignments",                              "401 403 403 403 ok  ok"),
    Row("GET",    F + "/assignments/{role:str}",                   "401 403 403 403 ok  ok"),
    Row("POST",   F + "/assignments/{role:str}/{actor_id:int}",    "401 403 403 403 ok  ok", fresh=fresh_user),
    Row("DELETE", F + "/assignments/{role:str}/{actor_id:int}",    "401 403 403 403 ok  ok", fresh=fresh_form_viewer),
    Row("GET",    F + "/public-links",                             "401 403 403 403 ok  ok"),
    Row("POST",   F + "/public-links",                             "401 403 403 403 ok  ok", json_body({"displayName": "L"})),
    Row("GET",    F + "/public-links/{link_id:int}",               "401 403 403 403 ok  ok"),
    Row("DELETE", F + "/public-links/{link_id:int}",               "401 403 403 403 ok  ok", fresh=fresh_link),
    Row("GET",    F + "/submissions",                              "401 403 403 ok  ok  ok"),
    Row("POST",   F + "/submissions",                              "401 ok  ok  403 ok  ok", new_submission),
    Row("GET",    F + "/submissions.csv",                          "401 403 403 ok  ok  ok"),
    Row("GET",    F + "/submissions.csv.zip",                      "401 403 403 ok  ok  ok"),
    Row("POST",   F + "/submissions.csv.zip",                      "401 403 403 ok  ok  ok"),
    Row("GET",    F + "/cleaning-log",                             "401 403 403 ok  ok  ok"),
    Row("GET",    F + "/cleaning-log.csv",                         "401 403 403 ok  ok  ok"),
    Row("POST",   F + "/cleaning-log",                             "401 403 403 403 ok  ok", cleaning_entry),
    Row("POST",   F + "/cleaning-log.csv",                         "401 403 403 403 ok  ok", cleaning_upload),
    Row("DELETE", F + "/cleaning-log/{entry_id:int}",              "401 403 403 403 ok  ok", fresh=fresh_cleaning_entry),
    Row("POST",   F + "/cleaning-checks",                          "401 403 403 403 ok  ok"),
    Row("GET",    F + "/cleaning-findings",                        "401 403 403 403 ok  ok"),
    Row("POST",   F + "/cleaning-findings/run",                    "401 403 403 403 ok  ok"),
    Row("POST",   F + "/cleaning-findings/{finding_id:int}/accept",  "401 403 403 403 ok  ok", json_body({"newValue": "30"}), fresh=fresh_finding),
    Row("POST",   F + "/cleaning-findings/{finding_id:int}/dismiss", "401 403 403 403 ok  ok", json_body({"reason": "real"}), fresh=fresh_finding),
    Row("GET",    F + "/cleaning-check-settings",                  "401 403 403 403 ok  ok"),
    Row("PUT",    F + "/cleaning-check-settings",                  "401 403 403 403 ok  ok", json_body({"checks": ["outlier"]})),
    Row("DELETE", F + "/cleaning-check-settings",                  "401 403 403 403 ok  ok"),
    Row("GET",    F + "/submissions.xlsx",                         "401 403 403 ok  ok  ok"),
    Row("GET",    F + "/submissions.parquet.zip",                  "401 403 403 ok  ok  ok"),
    Row("POST",   F + "/export-jobs",                              "401 403 403 ok  ok  ok"),
    Row("GET",    F + "/export-jobs/{job_id:int}",                 "401 403 403 ok  ok  ok", fresh=fresh_export_job),
    # A job not run yet: those who may read are told its file is not ready (409)
    Row("GET",    F + "/export-jobs/{job_id:int}/file",            "401 403 403 409 409 409", fresh=fresh_export_job),
    # `simple` has no geo question: those who may read are told so (400), the others 403
    Row("GET",    F + "/submissions.geojson",                      "401 403 403 400 400 400"),
    # OData: {xmlFormId}.svc/... and draft.svc/... (here the published feed's rows)
    Row("GET",    P + "/forms/{form_ref:str}/{rest:path}",         "401 403 403 ok  ok  ok", fresh=given(form_ref="simple.svc", rest="Submissions")),
    Row("GET",    F + "/submissions/submitters",                   "401 403 403 ok  ok  ok"),
    Row("GET",    F + "/submissions/keys",                         "401 403 403 ok  ok  ok"),
    Row("GET",    F + "/submissions/{instance_ref:str}",           "401 403 403 ok  ok  ok"),
    Row("PUT",    F + "/submissions/{instance_ref:str}",           "401 403 403 403 ok  ok", edit_of_current, fresh=fresh_submission),
    Row("PATCH",  F + "/submissions/{instance_ref:str}",           "401 403 403 403 ok  ok", json_body({"reviewState": "approved"})),
    Row("DELETE", F + "/submissions/{instance_ref:str}",           "401 403 403 403 ok  ok", fresh=fresh_submission),
    Row("POST",   S + "/restore",                                  "401 403 403 403 ok  ok", fresh=fresh_deleted_submission),
    Row("GET",    S + "/attachments",                              "401 403 403 ok  ok  ok"),
    Row("GET",    S + "/attachments/{name:str}",                   "401 403 403 ok  ok  ok"),
    Row("POST",   S + "/attachments/{name:str}",                   "401 403 403 403 ok  ok", PHOTO),
    Row("DELETE", S + "/attachments/{name:str}",                   "401 403 403 403 ok  ok"),
    Row("GET",    S + "/versions",                                 "401 403 403 ok  ok  ok"),
    Row("GET",    S + "/versions/{version_ref:str}",               "401 403 403 ok  ok  ok"),
    Row("GET",    S + "/versions/{version_id:str}/attachments",    "401 403 403 ok  ok  ok"),
    Row("GET",    S + "/versions/{version_id:str}/attachments/{name:str}", "401 403 403 ok  ok  ok", fresh=fresh_submission_with_photo),
    Row("DELETE", S + "/versions/{version_id:str}/attachments/{name:str}", "401 403 403 403 ok  ok", fresh=fresh_submission_with_photo),
    Row("GET",    S + "/diffs",                                    "401 403 403 ok  ok  ok"),
    Row("GET",    S + "/comments",                                 "401 403 403 ok  ok  ok"),
    Row("POST",   S + "/comments",                                 "401 403 403 ok  ok  ok", json_body({"body": "c"})),
    Row("GET",    S + "/audits",                                   "401 403 403 ok  ok  ok"),
    # OpenRosa, signed in (the app user's Bearer token works as in Central)
    Row("GET",    P + "/formList",                                 "401 ok  ok  ok  ok  ok", OPENROSA_ONLY),
    Row("HEAD",   P + "/submission",                               "401 ok  ok  ok  ok  ok", OPENROSA_ONLY),
    Row("POST",   P + "/submission",                               "401 ok  ok  403 ok  ok", openrosa_submission),
    Row("GET",    F + "/manifest",                                 "401 ok  ok  ok  ok  ok", OPENROSA_ONLY),
    # OpenRosa with the app user's token in the path: the path is the credential
    Row("GET",    KEY + "/datasets/{dataset_name:str}/integrity",  "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY),
    Row("GET",    P + "/datasets/{dataset_name:str}/integrity",    "401 ok  ok  ok  ok  ok", OPENROSA_ONLY),
    Row("GET",    P + "/datasets",                                 "401 403 403 ok  ok  ok"),
    Row("POST",   P + "/datasets",                                 "401 403 403 403 ok  ok", lambda ctx: {"json": {"name": f"d{n()}"}}),
    Row("GET",    P + "/datasets/{dataset_name:str}",              "401 403 403 ok  ok  ok"),
    Row("PATCH",  P + "/datasets/{dataset_name:str}",              "401 403 403 403 ok  ok", json_body({"approvalRequired": False})),
    Row("POST",   P + "/datasets/{dataset_name:str}/properties",   "401 403 403 403 ok  ok", lambda ctx: {"json": {"name": f"p{n()}"}}),
    Row("GET",    P + "/datasets/{dataset_name:str}/entities",     "401 403 403 ok  ok  ok"),
    Row("POST",   P + "/datasets/{dataset_name:str}/entities",     "401 403 403 403 ok  ok", json_body({"label": "New"})),
    Row("GET",    P + "/datasets/{dataset_name:str}/entities.csv", "401 403 403 ok  ok  ok"),
    Row("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}", "401 403 403 ok  ok  ok"),
    Row("PATCH",  P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}", "401 403 403 403 400 400", json_body({"label": "L"})),
    Row("DELETE", P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}", "401 403 403 403 ok  ok", fresh=fresh_entity),
    Row("POST",   P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/restore", "401 403 403 403 ok  ok", fresh=fresh_deleted_entity),
    Row("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/versions", "401 403 403 ok  ok  ok"),
    Row("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/diffs", "401 403 403 ok  ok  ok"),
    Row("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/audits", "401 403 403 ok  ok  ok"),
    Row("DELETE", P + "/datasets/{dataset_name:str}/properties/{property_name:str}", "401 403 403 403 ok  ok", fresh=fresh_property),
    Row("GET",    P + "/datasets/{dataset_name:str}/entities/creators", "401 403 403 ok  ok  ok"),
    Row("POST",   P + "/datasets/{dataset_name:str}/entities/bulk-delete", "401 403 403 403 ok  ok", json_body({"ids": []})),
    Row("POST",   P + "/datasets/{dataset_name:str}/entities/bulk-restore", "401 403 403 403 ok  ok", json_body({"ids": []})),
    Row("GET",    P + "/datasets/{dataset_ref:str}/{rest:path}",   "401 403 403 ok  ok  ok"),
    Row("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/sources", "401 403 403 ok  ok  ok"),
    Row("GET",    P + "/case-schedule",                            "401 403 403 ok  ok  ok", lambda ctx: {"params": {"dataset": "people"}}),
    Row("GET",    P + "/indicators",                               "401 403 403 ok  ok  ok", lambda ctx: {"params": {"intakeForm": "simple"}}),
    Row("GET",    F + "/dataset-diff",                             "401 ok  ok  ok  ok  ok"),
    Row("GET",    F + "/draft/dataset-diff",                       "401 ok  ok  ok  ok  ok", fresh=fresh_draft),
    Row("GET",    KEY + "/formList",                               "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY),
    Row("GET",    KEY + "/forms/{form_file:str}",                  "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY),
    Row("GET",    KEY + "/forms/{xml_form_id:str}/manifest",       "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY),
    Row("GET",    KEY + "/forms/{xml_form_id:str}/attachments/{name:str}", "404 404 404 404 404 404", OPENROSA_ONLY),
    Row("HEAD",   KEY + "/submission",                             "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY),
    Row("POST",   KEY + "/submission",                             "ok  ok  ok  ok  ok  ok", openrosa_submission),
    # Draft test links: the draft token in the path is the credential
    Row("GET",    TEST + "/draft/formList",                        "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY, fresh=fresh_draft_token),
    Row("GET",    TEST + "/draft.xml",                             "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY, fresh=fresh_draft_token),
    Row("GET",    TEST + "/draft/manifest",                        "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY, fresh=fresh_draft_token),
    Row("GET",    TEST + "/draft/attachments/{name:str}",          "404 404 404 404 404 404", OPENROSA_ONLY, fresh=fresh_draft_token),
    Row("HEAD",   TEST + "/draft/submission",                      "ok  ok  ok  ok  ok  ok", OPENROSA_ONLY, fresh=fresh_draft_token),
    Row("POST",   TEST + "/draft/submission",                      "ok  ok  ok  ok  ok  ok", openrosa_submission, fresh=fresh_draft_token),
]
# fmt: on

# Routes that need no row: the health probe, the published OpenAPI documents, and the
# web app's files (the same to everyone; its data comes through the rows above).
UNCHECKED = re.compile(r"^/healthz$|^/v1/openapi(/.*)?$|^/$|^/\{path:path\}$")


def app_routes(app: Litestar) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or UNCHECKED.match(route.path):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if method != "OPTIONS":
                    found.add((str(method), route.path))
    return found


def test_every_route_has_a_row(app: Litestar) -> None:
    rows = {(row.method, row.path) for row in ROWS}
    assert len(rows) == len(ROWS), "a route has two rows"
    assert sorted(app_routes(app) - rows) == [], "routes without a row in ROWS"
    assert sorted(rows - app_routes(app)) == [], "rows for routes the app does not have"


async def build(world: World) -> Ctx:
    client, admin = world.client, world.admin_headers
    ids: dict[str, str] = {}
    headers: dict[str, dict[str, str]] = {
        "anon": {},
        "app": {"Authorization": f"Bearer {world.app_user_token}"},
        "admin": admin,
    }
    for caller, role in (("coll", "formfill"), ("view", "viewer"), ("mgr", "manager")):
        email = f"{caller}@example.org"
        async with world.runtime.transaction() as db:
            actor, _ = await accounts.create_user(db, email=email, password=PASSWORD)
        ids[f"{caller}_id"] = str(actor.id)
        await ok(
            client.post(
                f"/v1/projects/{world.project_id}/assignments/{role}/{actor.id}", headers=admin
            )
        )
        headers[caller] = await sign_in(client, email, PASSWORD)
    ctx = Ctx(world, headers, ids)
    target = await new_user(ctx)
    await ok(
        client.post(
            f"{ctx.forms}/simple/submissions",
            content=submission_xml("uuid:s1"),
            headers=admin | XML,
        )
    )
    await ok(
        client.post(
            f"{ctx.forms}/simple/submissions/uuid:s1/attachments/p.jpg",
            content=b"jpeg",
            headers=admin,
        )
    )
    await fresh_draft(ctx)
    draft = await ok(client.get(f"{ctx.forms}/simple/draft", headers=admin))
    link = await fresh_link(ctx)
    entity_uuid = await people_list(ctx)
    ids |= {
        "dataset_name": "people",
        "entity_uuid": entity_uuid,
        "dataset_ref": "people.svc",
        "rest": "Entities",
        "project_id": str(world.project_id),
        "xml_form_id": "simple",
        "form_ref": "simple",
        "form_file": "simple.xml",
        "form_id": "999999",
        "instance_ref": "uuid:s1",
        "instance_id": "uuid:s1",
        "version_ref": "uuid:s1",
        "version_id": "uuid:s1",
        "name": "p.jpg",
        "actor_id": target,
        "role": "viewer",
        "link_id": link["link_id"],
        "token": world.app_user_token,
        "draft_token": draft.json()["draftToken"],
    }
    return ctx


def url_of(path: str, values: dict[str, str]) -> str:
    """A route's path with its parameters filled in from ``values``."""

    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, path)


def outcome(status: int) -> str:
    return "ok" if status < 300 or status == 307 else str(status)


async def test_each_caller_gets_centrals_answer_on_each_route(world: World, app: Litestar) -> None:
    ctx = await build(world)
    mismatches: list[str] = []
    for row in ROWS:
        expected = row.expected.split()
        assert len(expected) == len(CALLERS), row
        for caller, wanted in zip(CALLERS, expected, strict=True):
            values = dict(ctx.values)
            if row.fresh is not None:
                values |= await row.fresh(ctx)
            ctx.values, saved = values, ctx.values
            try:
                request = row.body(ctx) if row.body else {}
            finally:
                ctx.values = saved
            headers = ctx.headers[caller] | request.pop("headers", {})
            response = await ctx.client.request(
                row.method, url_of(row.path, values), headers=headers, **request
            )
            ctx.client.cookies.clear()  # a cookie one row sets must not sign in the next
            got = outcome(response.status_code)
            if got != wanted:
                mismatches.append(
                    f"{row.method} {row.path} as {caller}: {got}, expected {wanted}"
                    f" ({response.text[:120]})"
                )
    assert not mismatches, "\n".join(mismatches)


async def test_a_manager_grants_only_roles_up_to_their_own(world: World) -> None:
    """As Central: granting needs every verb of the role there (403.1 otherwise)."""
    ctx = Ctx(world, {}, {})
    project = world.project_id
    manager = await new_user(ctx)
    await ok(
        ctx.client.post(f"/v1/projects/{project}/assignments/manager/{manager}", headers=ctx.admin)
    )
    email = (await ctx.client.get(f"/v1/users/{manager}", headers=ctx.admin)).json()["email"]
    mgr = await sign_in(ctx.client, email, PASSWORD)
    target = await new_user(ctx)
    base = f"/v1/projects/{project}"
    refused = [
        await ctx.client.post(f"{base}/assignments/admin/{target}", headers=mgr),
        await ctx.client.post(f"{base}/forms/simple/assignments/admin/{target}", headers=mgr),
        await ctx.client.put(
            base,
            json={
                "name": "Returns",
                "forms": [
                    {"xmlFormId": "simple", "assignments": [{"roleId": 1, "actorId": int(target)}]}
                ],
            },
            headers=mgr,
        ),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == 403.1
    granted = (await ctx.client.get(f"{base}/assignments", headers=ctx.admin)).json()
    assert all(a["actorId"] != int(target) for a in granted)
    for role in ("manager", "viewer", "formfill"):
        await ok(ctx.client.post(f"{base}/assignments/{role}/{target}", headers=mgr))
    await ok(ctx.client.post(f"{base}/forms/simple/assignments/app-user/{target}", headers=mgr))
