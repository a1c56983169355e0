# ruff: noqa: E501 - the table keeps one route per line
"""Every route against Central's documented answers: accounts, roles, projects.

The forms and submissions halves are in test_contract_forms.py and
test_contract_submissions.py; ``test_every_route_has_a_contract`` checks that the
three tables together name every route the app publishes.
"""

from __future__ import annotations

from typing import Any

import pytest

from server.auth import SESSION_COOKIE, csrf_token
from tests.server.conftest import World
from tests.server.contract import (
    XML_TYPES,
    Actor,
    AppUser,
    Assignment,
    Contract,
    Erasure,
    ExtendedAudit,
    ExtendedFormSummaryAssignment,
    ExtendedProject,
    ExtendedProjectWithVerbs,
    ExtendedUser,
    Fail,
    FormSummaryAssignment,
    Ok,
    Project,
    Role,
    Session,
    Shape,
    Success,
    User,
    check_failure,
    check_success,
    ids,
)
from tests.server.test_authorisation import (
    ANY_SIGN_IN,
    KEY,
    OPENROSA,
    OPENROSA_ONLY,
    PASSWORD,
    Ctx,
    F,
    P,
    app_routes,
    build,
    fresh_app_user,
    fresh_deleted_entity,
    fresh_draft,
    fresh_entity,
    fresh_project,
    fresh_project_viewer,
    fresh_property,
    fresh_session,
    fresh_site_admin,
    fresh_user,
    given,
    json_body,
    n,
    new_user_body,
)
from tests.server.test_contract_forms import CONTRACTS as FORM_CONTRACTS
from tests.server.test_contract_submissions import CONTRACTS as SUBMISSION_CONTRACTS

EXTENDED = {"X-Extended-Metadata": "true"}


class WebSession(Shape):
    """The web app's session (not a Central route): its CSRF token and server address."""

    csrf: str
    server_url: str


class CaseSchedule(Shape):
    """Who is due for a follow-up (not a Central route; server/api/case_schedule.py)."""

    dataset: str
    as_of: str
    waves: list[str]
    counts: dict[str, int]
    cases: list[dict[str, Any]]


class EntitySource(Shape):
    """The submission behind an entity version (not a Central route)."""

    version: int
    created_at: str
    xml_form_id: str | None
    instance_id: str | None


class Indicators(Shape):
    """The programme's counts (not a Central route; server/api/indicators.py)."""

    registrations: int
    follow_ups: int
    breakdowns: list[dict[str, Any]]
    by_month: list[dict[str, Any]]


def session_cookie(ctx: Ctx) -> dict[str, Any]:
    return {"headers": {"Cookie": f"{SESSION_COOKIE}={ctx.values['token']}"}}


def session_cookie_and_csrf(ctx: Ctx) -> dict[str, Any]:
    token = ctx.values["token"]
    csrf = csrf_token(ctx.world.runtime.settings.secret_key, token)
    return {"headers": {"Cookie": f"{SESSION_COOKIE}={token}", "X-CSRF-Token": csrf}}


BAD_TOKEN = {"Authorization": "Bearer not-a-session"}
MISSING = {"actor_id": "999999"}
NO_LIST = {"dataset_name": "no_such_list"}

# fmt: off
CONTRACTS = [
    Contract("POST",   "/v1/sessions",
             Ok(200, Session, caller="anon", body=ANY_SIGN_IN),
             Fail(401.2, caller="anon", body=json_body({"email": "admin@example.org", "password": "wrong"}))),
    Contract("DELETE", "/v1/sessions/{token:str}",
             Ok(200, Success, fresh=fresh_session),
             Fail(403.1, caller="coll", fresh=fresh_session)),
    Contract("POST",   "/v1/web/session",
             Ok(200, WebSession, caller="anon", body=ANY_SIGN_IN),
             Fail(401.2, caller="anon", body=json_body({"email": "admin@example.org", "password": "wrong"}))),
    Contract("GET",    "/v1/web/session",
             Ok(200, WebSession, caller="anon", fresh=fresh_session, body=session_cookie),
             Fail(401.4, caller="anon")),
    Contract("DELETE", "/v1/web/session",
             Ok(200, Success, caller="anon", fresh=fresh_session, body=session_cookie_and_csrf),
             Fail(403.2, caller="anon", fresh=fresh_session, body=session_cookie)),
    # Not Central's: the API's root typed into a browser opens the web app.
    Contract("GET",    "/v1",
             Ok(303, None, caller="anon", headers={"Accept": "text/html"}),
             Fail(404.1, caller="anon")),
    Contract("GET",    "/v1/users/current",
             Ok(200, ExtendedUser, headers=EXTENDED),
             Fail(401.2, caller="anon", headers=BAD_TOKEN)),
    Contract("GET",    "/v1/users",
             Ok(200, list[User]),
             Fail(401.2, caller="anon", headers=BAD_TOKEN)),
    Contract("POST",   "/v1/users",
             Ok(200, User, body=new_user_body),
             Fail(409.3, body=json_body({"email": "admin@example.org"}))),
    Contract("GET",    "/v1/users/{actor_id:int}",
             Ok(200, User),
             Fail(404.1, values=MISSING)),
    Contract("PATCH",  "/v1/users/{actor_id:int}",
             Ok(200, User, body=json_body({"displayName": "Renamed"})),
             Fail(403.1, caller="view", body=json_body({"displayName": "Renamed"}))),
    Contract("DELETE", "/v1/users/{actor_id:int}",
             Ok(200, Success, fresh=fresh_user),
             Fail(404.1, values=MISSING)),
    Contract("PUT",    "/v1/users/{actor_id:int}/password",
             Ok(200, Success, body=json_body({"old": PASSWORD, "new": PASSWORD})),
             Fail(401.2, body=json_body({"old": "not the password", "new": PASSWORD}))),
    Contract("GET",    "/v1/roles",
             Ok(200, list[Role], caller="anon"),
             Fail(401.2, caller="anon", headers=BAD_TOKEN)),
    Contract("GET",    "/v1/roles/{role:str}",
             Ok(200, Role, caller="anon"),
             Fail(404.1, values={"role": "no-such-role"})),
    Contract("GET",    "/v1/assignments",
             Ok(200, list[Assignment]),
             Fail(403.1, caller="mgr")),
    Contract("GET",    "/v1/assignments/{role:str}",
             Ok(200, list[Actor], fresh=fresh_site_admin),
             Fail(404.1, values={"role": "no-such-role"})),
    Contract("POST",   "/v1/assignments/{role:str}/{actor_id:int}",
             Ok(200, Success, fresh=fresh_user),
             Fail(404.1, values={"role": "admin", **MISSING})),
    Contract("DELETE", "/v1/assignments/{role:str}/{actor_id:int}",
             Ok(200, Success, fresh=fresh_site_admin),
             Fail(403.1, caller="mgr", fresh=fresh_site_admin)),
    Contract("GET",    "/v1/audits",
             Ok(200, list[ExtendedAudit], headers=EXTENDED),
             Fail(403.1, caller="mgr")),
    Contract("GET",    "/v1/projects",
             Ok(200, list[ExtendedProject], headers=EXTENDED),
             Fail(401.2, caller="anon", headers=BAD_TOKEN)),
    Contract("POST",   "/v1/projects",
             Ok(200, Project, body=json_body({"name": "Contract"})),
             Fail(403.1, caller="mgr", body=json_body({"name": "Contract"}))),
    Contract("GET",    P,
             Ok(200, ExtendedProjectWithVerbs, headers=EXTENDED),
             Fail(404.1, values={"project_id": "999999"})),
    Contract("PATCH",  P,
             Ok(200, Project, body=json_body({"description": "Returns and reintegration"})),
             Fail(403.1, caller="view", body=json_body({"description": "d"}))),
    Contract("PUT",    P,
             Ok(200, Project, body=json_body({"name": "Returns", "description": None, "archived": False})),
             Fail(404.1, values={"project_id": "999999"}, body=json_body({"name": "Returns"}))),
    Contract("DELETE", P,
             Ok(200, Success, fresh=fresh_project),
             Fail(404.1, values={"project_id": "999999"})),
    Contract("GET",    P + "/app-users",
             Ok(200, list[AppUser]),
             Fail(403.1, caller="view")),
    Contract("POST",   P + "/app-users",
             Ok(200, AppUser, body=json_body({"displayName": "Phone 2"})),
             Fail(400.2, body=json_body({}))),
    Contract("DELETE", P + "/app-users/{actor_id:int}",
             Ok(200, Success, fresh=fresh_app_user),
             Fail(404.1, values=MISSING)),
    Contract("GET",    P + "/app-users/{actor_id:int}/qr.png",
             Ok(200, ("image/png",), fresh=fresh_app_user),
             Fail(404.1, values=MISSING)),
    Contract("GET",    KEY + "/datasets/{dataset_name:str}/integrity",
             Ok(200, XML_TYPES, caller="anon", body=OPENROSA_ONLY),
             Fail(404.1, caller="anon", values=NO_LIST, headers=OPENROSA, xml=True)),
    Contract("GET",    P + "/datasets/{dataset_name:str}/integrity",
             Ok(200, XML_TYPES, body=OPENROSA_ONLY),
             Fail(404.1, values=NO_LIST, headers=OPENROSA, xml=True)),
    Contract("GET",    P + "/datasets",
             Ok(200, list[dict[str, Any]]),
             Fail(403.1, caller="coll")),
    Contract("POST",   P + "/datasets",
             Ok(200, dict[str, Any], body=lambda ctx: {"json": {"name": f"c{n()}"}}),
             Fail(409.3, body=json_body({"name": "people"}))),
    Contract("GET",    P + "/datasets/{dataset_name:str}",
             Ok(200, dict[str, Any]),
             Fail(404.1, values=NO_LIST)),
    Contract("PATCH",  P + "/datasets/{dataset_name:str}",
             Ok(200, dict[str, Any], body=json_body({"ownerOnly": False})),
             Fail(403.1, caller="view", body=json_body({"ownerOnly": False}))),
    Contract("POST",   P + "/datasets/{dataset_name:str}/properties",
             Ok(200, Success, body=lambda ctx: {"json": {"name": f"q{n()}"}}),
             Fail(400.8, body=json_body({"name": "label"}))),
    Contract("GET",    P + "/datasets/{dataset_name:str}/entities",
             Ok(200, list[dict[str, Any]]),
             Fail(404.1, values=NO_LIST)),
    Contract("POST",   P + "/datasets/{dataset_name:str}/entities",
             Ok(200, dict[str, Any], body=json_body({"label": "One"})),
             Fail(400.2, body=json_body({"data": {}}))),
    Contract("GET",    P + "/datasets/{dataset_name:str}/entities.csv",
             Ok(200, ("text/csv",)),
             Fail(404.1, values=NO_LIST)),
    Contract("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}",
             Ok(200, dict[str, Any]),
             Fail(404.1, values={"entity_uuid": "00000000-0000-4000-8000-000000000000"})),
    Contract("PATCH",  P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}",
             Ok(200, dict[str, Any], body=json_body({"label": "L"}), params={"force": "true"}),
             Fail(400.2, body=json_body({"label": "L"}))),
    Contract("DELETE", P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}",
             Ok(200, Success, fresh=fresh_entity),
             Fail(403.1, caller="view", fresh=fresh_entity)),
    Contract("POST",   P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/restore",
             Ok(200, dict[str, Any], fresh=fresh_deleted_entity),
             Fail(404.1, fresh=fresh_entity)),
    Contract("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/versions",
             Ok(200, list[dict[str, Any]]),
             Fail(404.1, values={"entity_uuid": "00000000-0000-4000-8000-000000000000"})),
    Contract("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/diffs",
             Ok(200, list[list[dict[str, Any]]]),
             Fail(404.1, values={"entity_uuid": "00000000-0000-4000-8000-000000000000"})),
    Contract("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/audits",
             Ok(200, list[dict[str, Any]]),
             Fail(403.1, caller="coll")),
    Contract("DELETE", P + "/datasets/{dataset_name:str}/properties/{property_name:str}",
             Ok(200, Success, fresh=fresh_property),
             Fail(404.1, values={"property_name": "no_such_property"})),
    Contract("GET",    P + "/datasets/{dataset_name:str}/entities/creators",
             Ok(200, list[Actor]),
             Fail(404.1, values=NO_LIST)),
    Contract("POST",   P + "/datasets/{dataset_name:str}/entities/bulk-delete",
             Ok(200, dict[str, Any], body=json_body({"ids": []})),
             Fail(403.1, caller="view", body=json_body({"ids": []}))),
    Contract("POST",   P + "/datasets/{dataset_name:str}/entities/bulk-restore",
             Ok(200, dict[str, Any], body=json_body({"ids": []})),
             Fail(403.1, caller="view", body=json_body({"ids": []}))),
    Contract("GET",    P + "/datasets/{dataset_ref:str}/{rest:path}",
             Ok(200, dict[str, Any]),
             Fail(404.1, values={"dataset_ref": "people"})),
    Contract("GET",    P + "/datasets/{dataset_name:str}/entities/{entity_uuid:str}/sources",
             Ok(200, list[EntitySource]),
             Fail(404.1, values={"entity_uuid": "00000000-0000-4000-8000-000000000000"})),
    Contract("GET",    P + "/case-schedule",
             Ok(200, CaseSchedule, params={"dataset": "people"}),
             Fail(400.8, params={"dataset": "people", "asOf": "soon"})),
    Contract("GET",    P + "/indicators",
             Ok(200, Indicators, params={"intakeForm": "simple"}),
             Fail(403.1, caller="coll")),
    Contract("GET",    F + "/dataset-diff",
             Ok(200, list[dict[str, Any]]),
             Fail(404.1, values={"xml_form_id": "no_such_form"})),
    Contract("GET",    F + "/draft/dataset-diff",
             Ok(200, list[dict[str, Any]], fresh=fresh_draft),
             Fail(404.1, values={"xml_form_id": "no_such_form"})),
    Contract("GET",    P + "/assignments",
             Ok(200, list[Assignment]),
             Fail(404.1, values={"project_id": "999999"})),
    Contract("GET",    P + "/assignments/{role:str}",
             Ok(200, list[Actor], fresh=fresh_project_viewer),
             Fail(404.1, values={"role": "no-such-role"})),
    Contract("POST",   P + "/assignments/{role:str}/{actor_id:int}",
             Ok(200, Success, fresh=fresh_user),
             Fail(404.1, values={"role": "viewer", **MISSING})),
    Contract("DELETE", P + "/assignments/{role:str}/{actor_id:int}",
             Ok(200, Success, fresh=fresh_project_viewer),
             Fail(403.1, caller="view", fresh=fresh_project_viewer)),
    Contract("POST",   P + "/erasures",
             Ok(200, Erasure, body=json_body({"caseField": "name", "caseValue": "nobody"})),
             Fail(403.1, caller="view", body=json_body({"caseField": "name", "caseValue": "nobody"}))),
    Contract("GET",    P + "/assignments/forms",
             Ok(200, list[FormSummaryAssignment]),
             Fail(403.1, caller="view")),
    Contract("GET",    P + "/assignments/forms/{role:str}",
             Ok(200, list[ExtendedFormSummaryAssignment], headers=EXTENDED, fresh=given(role="app-user")),
             Fail(404.1, values={"role": "no-such-role"})),
]
# fmt: on


@pytest.fixture(scope="module")
async def ctx(module_world: World) -> Ctx:
    return await build(module_world)


def test_every_route_has_a_contract(module_world: World) -> None:
    assert module_world.app is not None
    contracts = CONTRACTS + FORM_CONTRACTS + SUBMISSION_CONTRACTS
    named = {(c.method, c.path) for c in contracts}
    assert len(named) == len(contracts), "a route has two contracts"
    routes = app_routes(module_world.app)
    assert sorted(routes - named) == [], "routes without a contract"
    assert sorted(named - routes) == [], "contracts for routes the app does not have"


@pytest.mark.parametrize("contract", CONTRACTS, ids=ids(CONTRACTS))
async def test_success_matches_central(ctx: Ctx, contract: Contract) -> None:
    await check_success(ctx, contract)


@pytest.mark.parametrize("contract", CONTRACTS, ids=ids(CONTRACTS))
async def test_failure_matches_central(ctx: Ctx, contract: Contract) -> None:
    await check_failure(ctx, contract)
