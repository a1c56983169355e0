"""No caller reads a personal value it may not read, on any route.

Every route of the app (Litestar's own route table) must match a rule below:
either it sends submission or entity content, and then it is called here as a
project viewer, a data collector, an app user, a public link and a manager,
or it is named as sending none, with the reason. A route added later without a
rule fails ``test_every_route_has_a_personal_data_rule``. Entity routes are
content: the `cases` list holds a property saved from a personal field
(server.services.personal.EntityView), read through the dataset API, its CSV,
OData and the CSV Collect downloads as a form attachment.

A non-manager may be refused (403) or get an answer, but no answer may carry a
personal value ("Arben Hoxha", the +355 number, the face photo), opened zips
and Parquet files included; the manager gets them (and the audit log never does).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar

from forms.personal import pseudonym
from server.db.models import Project
from server.services import export_runs
from server.services.personal import PERSONAL_READ
from tests.server.conftest import World
from tests.server.personal_world import (
    ENTITY_ID,
    NAME,
    Returnees,
    add_case,
    add_returnee,
    leaked,
    make_callers,
    publish_returnee_form,
)
from tests.server.test_authorisation import app_routes

NON_MANAGERS = ("view", "coll", "app", "link")
F = "/v1/projects/{project_id:int}/forms/{xml_form_id:str}"
S = F + "/submissions/{instance_id:str}"
D = "/v1/projects/{project_id:int}/datasets/{dataset_name:str}"
E = D + "/entities/{entity_uuid:str}"
CASES = "/v1/projects/{p}/datasets/cases"
CASE = CASES + "/entities/{e}"


@dataclass(frozen=True)
class Content:
    """A route that sends submission content, and the URLs to try it with."""

    method: str
    path: str
    urls: tuple[str, ...]
    # Whether the manager's answer must hold the personal values (False: never, e.g. audits).
    manager_sees: bool = True


# Relative URLs below the form ("" is the form itself); {s} is the submission.
CONTENT = [
    Content("GET", F + "/submissions", ("/submissions",)),
    Content("GET", F + "/submissions.csv", ("/submissions.csv",)),
    Content(
        "GET",
        F + "/submissions.csv.zip",
        ("/submissions.csv.zip", "/submissions.csv.zip?personal=drop"),
    ),
    Content("POST", F + "/submissions.csv.zip", ("/submissions.csv.zip",)),
    Content("GET", F + "/submissions.xlsx", ("/submissions.xlsx",)),
    Content("GET", F + "/submissions.parquet.zip", ("/submissions.parquet.zip",)),
    Content("GET", F + "/submissions.geojson", ("/submissions.geojson",)),
    Content(
        "GET",
        "/v1/projects/{project_id:int}/forms/{form_ref:str}/{rest:path}",
        (
            ".svc/Submissions",
            ".svc/Submissions?$expand=*",
            ".svc/Submissions.household",
            ".svc/Submissions('{s}')",
            ".svc/Submissions('{s}')/household",
        ),
    ),
    Content(
        "GET", F + "/submissions/{instance_ref:str}", ("/submissions/{s}", "/submissions/{s}.xml")
    ),
    Content("GET", S + "/versions", ("/submissions/{s}/versions",)),
    Content(
        "GET",
        S + "/versions/{version_ref:str}",
        ("/submissions/{s}/versions/{s}", "/submissions/{s}/versions/{s}.xml"),
    ),
    Content("GET", S + "/diffs", ("/submissions/{s}/diffs",)),
    Content("GET", S + "/attachments/{name:str}", ("/submissions/{s}/attachments/face.jpg",)),
    Content(
        "GET",
        S + "/versions/{version_id:str}/attachments/{name:str}",
        ("/submissions/{s}/versions/{s}/attachments/face.jpg",),
    ),
    # File names and counts, comments and the log: never personal values, for anyone.
    Content("GET", S + "/attachments", ("/submissions/{s}/attachments",), manager_sees=False),
    Content(
        "GET",
        S + "/versions/{version_id:str}/attachments",
        ("/submissions/{s}/versions/{s}/attachments",),
        manager_sees=False,
    ),
    Content("GET", S + "/comments", ("/submissions/{s}/comments",), manager_sees=False),
    Content("GET", S + "/audits", ("/submissions/{s}/audits",), manager_sees=False),
    Content("GET", "/v1/audits", ("/v1/audits",), manager_sees=False),
    Content("GET", F + "/submissions/submitters", ("/submissions/submitters",), manager_sees=False),
    Content("GET", F + "/submissions/keys", ("/submissions/keys",), manager_sees=False),
    Content("GET", F + "/cleaning-log", ("/cleaning-log",)),
    Content("GET", F + "/cleaning-log.csv", ("/cleaning-log.csv",)),
    # Findings quote the answers they question: managers only (no check has run here,
    # so the manager's list is empty; test_check_findings reads a full one).
    Content("GET", F + "/cleaning-findings", ("/cleaning-findings",), manager_sees=False),
    Content("GET", F + "/export-jobs/{job_id:int}/file", ("/export-jobs/{j}/file",)),
    # Entities: properties saved from personal fields; the list (labels only) and the
    # entity's audit log (ids and sources) carry none for anyone.
    Content("GET", D + "/entities", (CASES + "/entities",), manager_sees=False),
    Content("GET", D + "/entities.csv", (CASES + "/entities.csv",)),
    Content("GET", E, (CASE,)),
    Content("GET", E + "/versions", (CASE + "/versions",)),
    Content("GET", E + "/diffs", (CASE + "/diffs",)),
    Content("GET", E + "/audits", (CASE + "/audits",), manager_sees=False),
    Content("GET", D + "/entities/creators", (CASES + "/entities/creators",), manager_sees=False),
    Content(
        "GET",
        "/v1/projects/{project_id:int}/datasets/{dataset_ref:str}/{rest:path}",
        ("/v1/projects/{p}/datasets/cases.svc/Entities",),
    ),
    # The web app's follow-up schedule sends the label and the schedule's own
    # properties only; an entity's sources send instance names; the indicators send
    # counts by fields named in server.services.indicators (none of them here).
    Content(
        "GET",
        "/v1/projects/{project_id:int}/case-schedule",
        ("/v1/projects/{p}/case-schedule?dataset=cases",),
        manager_sees=False,
    ),
    Content("GET", E + "/sources", (CASE + "/sources",), manager_sees=False),
    Content(
        "GET",
        "/v1/projects/{project_id:int}/indicators",
        ("/v1/projects/{p}/indicators?intakeForm=returnee&followUpForm=case_intake",),
        manager_sees=False,
    ),
    # Collect's download of the list, as a form attachment of the form that links it.
    Content(
        "GET",
        F + "/attachments/{name:str}",
        ("/v1/projects/{p}/forms/case_visit/attachments/cases.csv",),
    ),
    # The same through an app user's key: the app user's view, whoever asks.
    Content(
        "GET",
        "/v1/key/{token:str}/projects/{project_id:int}/forms/{xml_form_id:str}"
        "/attachments/{name:str}",
        ("/v1/key/{k}/projects/{p}/forms/case_visit/attachments/cases.csv",),
        manager_sees=False,
    ),
]

# Routes that send no answers, by what they send instead. (Entity routes are not
# here on purpose: they send case data and need a content rule.)
NO_CONTENT = {
    "accounts, roles and assignments": (
        r"/v1/(sessions|users|roles|assignments)(/|$)|/assignments(/|$)"
    ),
    "projects and app users": r"^/v1/projects(/\{project_id:int\})?$|/app-users",
    # Linked entity lists are served by the current version's attachment (a content
    # rule above); drafts and older versions send their uploaded files.
    "form definitions, fields and media": (
        r"/forms$|/forms/\{form_ref:str\}$|/forms/\{xml_form_id:str\}$|/restore$"
        r"|/forms/\{xml_form_id:str\}/(versions|draft|fields|attachments$|draft\.xml|draft\.xls)"
    ),
    "public links": r"/public-links",
    "entity lists' names, properties and forms; which entity ids are deleted": (
        r"/datasets(/\{dataset_name:str\}(/integrity)?)?$|/dataset-diff$"
    ),
    "an export job's state and progress": r"/export-jobs/\{job_id:int\}$",
    "which data checks a form runs, on which fields": r"/cleaning-check-settings$",
    "the web app's sign-in state": r"^/v1/web/session$",
    "the API's root: a browser is sent to the web app": r"^/v1$",
    "OpenRosa: form lists, form XML, manifests, form media and sending": (
        r"/formList$|/manifest$|/submission$|/forms/\{form_file:str\}$"
        r"|^/v1/(key|test)/.*/(attachments/\{name:str\}|draft\.xml)$"
    ),
}
# Writes answer with the written submission to those allowed to write it (its
# sender, or a manager); who may write is test_authorisation's.
WRITES = re.compile(r"^(POST|PUT|PATCH|DELETE) ")


def rule_of(method: str, path: str) -> str | None:
    if any(rule.method == method and rule.path == path for rule in CONTENT):
        return "content"
    if WRITES.match(f"{method} "):
        return "write"
    for reason, pattern in NO_CONTENT.items():
        if method in ("GET", "HEAD") and re.search(pattern, path):
            return reason
    return None


def test_every_route_has_a_personal_data_rule(app: Litestar) -> None:
    missing = sorted(f"{m} {p}" for m, p in app_routes(app) if rule_of(m, p) is None)
    assert missing == [], "routes without a personal-data rule"
    known = app_routes(app)
    assert [f"{r.method} {r.path}" for r in CONTENT if (r.method, r.path) not in known] == []


@pytest.fixture(scope="module")
async def returnees(module_world: World) -> Returnees:
    await publish_returnee_form(module_world)
    await add_returnee(module_world, "uuid:r1")
    await add_case(module_world)
    world = module_world
    form = f"/v1/projects/{world.project_id}/forms/returnee"
    cleaned = await world.client.post(
        f"{form}/cleaning-log",
        json={
            "instanceId": "uuid:r1",
            "field": "full_name",
            "newValue": f"{NAME} B",
            "reason": "x",
        },
        headers=world.admin_headers,
    )
    assert cleaned.status_code == 200, cleaned.text
    job = await world.client.post(f"{form}/export-jobs", headers=world.admin_headers)
    assert job.status_code == 201, job.text
    assert await export_runs.run_waiting_exports(world.runtime) == 1
    return Returnees(world, await make_callers(world), job.json()["id"])


async def call(
    client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    """The answer, with a file's bytes fetched from S3 when the app redirects there (307)."""
    response = await client.request(method, url, headers=headers)
    if response.status_code != 307:
        return response
    async with httpx.AsyncClient() as outside:
        return await outside.get(response.headers["location"])


def url_for(returnees: Returnees, rule: Content, url: str) -> str:
    world = returnees.world
    url = url.replace("{s}", "uuid:r1").replace("{e}", ENTITY_ID).replace("{j}", str(returnees.job))
    url = url.replace("{p}", str(world.project_id)).replace("{k}", world.app_user_token)
    if url.startswith("/v1/"):
        return url
    return returnees.form + url


async def test_no_caller_below_manager_reads_a_personal_value(returnees: Returnees) -> None:
    client = returnees.world.client
    failures = []
    for rule in CONTENT:
        for relative in rule.urls:
            url = url_for(returnees, rule, relative)
            headers = returnees.callers | {"admin": returnees.world.admin_headers}
            for caller in (*NON_MANAGERS, "mgr"):
                response = await call(client, rule.method, url, headers[caller])
                found = leaked(response.content) if response.status_code < 300 else []
                if caller in NON_MANAGERS and found:
                    failures.append(f"{rule.method} {url} as {caller}: {found}")
                asked_none = "personal=drop" in url  # a manager may ask for none
                if caller == "mgr" and rule.manager_sees and not asked_none and not found:
                    failures.append(
                        f"{rule.method} {url} as mgr: {response.status_code}, no values"
                    )
                if caller == "mgr" and not rule.manager_sees and found:
                    failures.append(f"{rule.method} {url} as mgr: {found} where none belong")
            if url.endswith("/v1/audits"):
                admin = await client.get(url, headers=returnees.world.admin_headers)
                assert admin.status_code == 200, admin.text
                assert leaked(admin.content) == []
    assert failures == [], "\n".join(failures)


async def test_viewers_get_answers_without_personal_values_not_refusals(
    returnees: Returnees,
) -> None:
    """The viewer is answered wherever a manager is, except for personal files and
    the checks' findings (theirs who write the cleaning log)."""
    client = returnees.world.client
    viewer = returnees.callers["view"]
    refused = []
    for rule in CONTENT:
        for relative in rule.urls:
            url = url_for(returnees, rule, relative)
            if url.endswith("/v1/audits"):
                continue  # site administrators only
            response = await call(client, rule.method, url, viewer)
            if response.status_code >= 300:
                refused.append((relative, response.status_code, response.json()["code"]))
    assert refused == [
        ("/submissions/{s}/attachments/face.jpg", 403, 403.1),
        ("/submissions/{s}/versions/{s}/attachments/face.jpg", 403, 403.1),
        ("/cleaning-findings", 403, 403.1),  # for those who write the cleaning log
        ("/export-jobs/{j}/file", 403, 403.1),  # a manager's job that kept personal fields
    ]
    plain = await call(
        client, "GET", f"{returnees.form}/submissions/uuid:r1/attachments/doc.jpg", viewer
    )
    assert plain.status_code == 200
    assert plain.content == b"JPEG scan of a district letter"


async def test_reads_in_clear_are_audited_without_values(returnees: Returnees) -> None:
    client, admin = returnees.world.client, returnees.world.admin_headers
    manager = returnees.callers["mgr"]
    before = await client.get("/v1/audits", params={"action": PERSONAL_READ}, headers=admin)
    await client.get(f"{returnees.form}/submissions/uuid:r1.xml", headers=manager)
    await client.get(f"{returnees.form}/submissions.csv.zip?personal=keep", headers=manager)
    await client.get(f"{returnees.form}/submissions/uuid:r1/attachments/face.jpg", headers=manager)
    await client.get(f"{returnees.form}.svc/Submissions", headers=manager)
    await client.get(f"{returnees.form}/submissions/uuid:r1.xml", headers=returnees.callers["view"])
    after = await client.get("/v1/audits", params={"action": PERSONAL_READ}, headers=admin)

    new = after.json()[: len(after.json()) - len(before.json())]
    assert sorted(entry["details"]["read"] for entry in new) == [
        "attachment",
        "export",
        "odata",
        "xml",
    ]
    assert all(entry["action"] == PERSONAL_READ for entry in new)
    assert leaked(after.content) == []


async def test_entity_lists_give_pseudonyms_below_manager_and_audit_reads_in_clear(
    returnees: Returnees,
) -> None:
    client, world = returnees.world.client, returnees.world
    admin, manager = world.admin_headers, returnees.callers["mgr"]
    async with world.runtime.read() as db:
        project = await db.get(Project, world.project_id)
        assert project is not None
        key = project.pseudonym_secret.encode()
    visit = f"/v1/projects/{world.project_id}/forms/case_visit/attachments/cases.csv"
    phone = await client.get(visit, headers=returnees.callers["app"])
    rows = list(csv.reader(io.StringIO(phone.text)))
    assert rows[0] == ["name", "label", "__version", "full_name", "district"]
    # The label is the intake form's choice (a case id here) and is sent as it is.
    assert rows[1][:2] == [ENTITY_ID, "R-001"]
    assert rows[1][3:] == [pseudonym(key, f"{NAME} EDITED"), "Shkoder"]
    cases = f"/v1/projects/{world.project_id}/datasets/cases"
    narrowed = await client.get(
        f"{cases}/entities.csv",
        params={"$filter": "full_name eq 'x'"},
        headers=returnees.callers["view"],
    )
    assert narrowed.status_code == 403  # no oracle for personal values

    before = await client.get("/v1/audits", params={"action": PERSONAL_READ}, headers=admin)
    await client.get(f"{cases}/entities/{ENTITY_ID}", headers=manager)
    await client.get(f"{cases}.svc/Entities", headers=manager)
    await client.get(visit, headers=manager)
    await client.get(f"{cases}/entities/{ENTITY_ID}", headers=returnees.callers["view"])
    after = await client.get("/v1/audits", params={"action": PERSONAL_READ}, headers=admin)
    new = after.json()[: len(after.json()) - len(before.json())]
    assert sorted(entry["details"]["read"] for entry in new) == ["entity", "entity list", "odata"]
    assert leaked(after.content) == []
