"""Users administration and site-wide role assignments, on Central's paths."""

from __future__ import annotations

from litestar import Router, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy import select

from server import problems
from server.api.accounts import user_out
from server.api.common import actor_out, check
from server.api.shapes import (
    ActorOut,
    AssignmentOut,
    PasswordIn,
    Success,
    UserIn,
    UserOut,
    UserPatch,
)
from server.auth import Principal
from server.db.models import Actor, Assignment
from server.requests import (
    AnyRequest,
    client_address,
    require_principal,
    runtime_of,
    sign_in_throttle,
)
from server.roles import RoleSpec, find_role
from server.services import accounts, users
from server.services.audit import record


def _self_or(principal: Principal, verb: str, actor_id: int) -> None:
    """Users may read and change their own account; the rest needs a site-wide verb."""
    if principal.actor_id != actor_id:
        check(principal, verb)


@get("/users", operation_id="listUsers")
async def list_users(request: AnyRequest, q: FromQuery[str | None] = None) -> list[UserOut]:
    """Everyone may look a user up by exact e-mail (to give them a role); only those
    with ``user.list`` may search or list."""
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        if q:
            exact = await accounts.find_user(db, q)
            if exact is not None:
                return [user_out(*exact)]
        if not principal.can("user.list"):
            return []
        return [user_out(a, u) for a, u in await users.search_users(db, q)]


@post("/users", operation_id="createUser", status_code=200)
async def create_user(request: AnyRequest, data: JSONBody[UserIn]) -> UserOut:
    rt = runtime_of(request)
    async with rt.transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "user.create")
        actor, user = await accounts.create_user(
            db,
            email=data.email,
            password=data.password or None,
            display_name=data.display_name,
            created_by=principal.actor_id,
            keep_digest=rt.settings.digest_auth,
        )
        return user_out(actor, user)


@get("/users/{actor_id:int}", operation_id="getUser")
async def get_user(request: AnyRequest, actor_id: FromPath[int]) -> UserOut:
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        _self_or(principal, "user.read", actor_id)
        return user_out(*await users.get_user(db, actor_id))


@patch("/users/{actor_id:int}", operation_id="updateUser")
async def update_user(
    request: AnyRequest, actor_id: FromPath[int], data: JSONBody[UserPatch]
) -> UserOut:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        _self_or(principal, "user.update", actor_id)
        actor, user = await users.get_user(db, actor_id)
        await users.update_user(
            db, actor, user, display_name=data.display_name, email=data.email, by=principal
        )
        return user_out(actor, user)


@delete("/users/{actor_id:int}", operation_id="deleteUser", status_code=200)
async def delete_user(request: AnyRequest, actor_id: FromPath[int]) -> Success:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "user.delete")
        actor, _ = await users.get_user(db, actor_id)
        await users.delete_user(db, actor, principal)
    return Success()


@put("/users/{actor_id:int}/password", operation_id="changePassword", status_code=200)
async def change_password(
    request: AnyRequest, actor_id: FromPath[int], data: JSONBody[PasswordIn]
) -> Success:
    rt = runtime_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    async with rt.read() as db:
        principal = await require_principal(request, db)
        _self_or(principal, "user.update", actor_id)
        _, user = await users.get_user(db, actor_id)
    checked = await users.check_old_password(
        user, data.old, throttle=sign_in_throttle(request), address=client_address(request)
    )
    async with rt.transaction() as db:
        principal = await require_principal(request, db)
        _, user = await users.get_user(db, actor_id)
        await users.change_password(
            db,
            user,
            checked_hash=checked,
            new=data.new,
            keep_digest=rt.settings.digest_auth,
            current_token=token.strip() if scheme.lower() == "bearer" else None,
        )
        await record(
            db, principal.actor_id, "user.update", "actor", actor_id, {"data": {"password": True}}
        )
    return Success()


def _role(role: str) -> RoleSpec:
    spec = find_role(role)
    if spec is None:
        raise problems.not_found()
    return spec


@get("/assignments", operation_id="listSiteAssignments")
async def list_site_assignments(request: AnyRequest) -> list[AssignmentOut]:
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        check(principal, "assignment.list")
        rows = await db.execute(
            select(Assignment.actor_id, Assignment.role_id)
            .join(Actor, Actor.id == Assignment.actor_id)
            .where(
                Assignment.project_id.is_(None),
                Assignment.form_id.is_(None),
                Actor.deleted_at.is_(None),
            )
            .order_by(Assignment.actor_id, Assignment.role_id)
        )
        return [AssignmentOut(actor_id=a, role_id=r) for a, r in rows]


@get("/assignments/{role:str}", operation_id="listSiteRoleAssignments")
async def list_site_role_assignments(request: AnyRequest, role: FromPath[str]) -> list[ActorOut]:
    spec = _role(role)
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        check(principal, "assignment.list")
        rows = await db.scalars(
            select(Actor)
            .join(Assignment, Assignment.actor_id == Actor.id)
            .where(
                Assignment.project_id.is_(None),
                Assignment.form_id.is_(None),
                Assignment.role_id == spec.id,
                Actor.deleted_at.is_(None),
            )
            .order_by(Actor.id)
        )
        return [actor_out(a) for a in rows]


async def _site_assignment(request: AnyRequest, role: str, actor_id: int, *, grant: bool) -> None:
    spec = _role(role)
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "assignment.create" if grant else "assignment.delete")
        actor = await db.get(Actor, actor_id)
        if actor is None or actor.deleted_at is not None:
            raise problems.not_found()
        change = accounts.assign if grant else accounts.unassign
        await change(db, actor_id=actor_id, role=spec, by=principal.actor_id)


@post("/assignments/{role:str}/{actor_id:int}", operation_id="assignSiteRole", status_code=200)
async def assign_site_role(
    request: AnyRequest, role: FromPath[str], actor_id: FromPath[int]
) -> Success:
    await _site_assignment(request, role, actor_id, grant=True)
    return Success()


@delete("/assignments/{role:str}/{actor_id:int}", operation_id="revokeSiteRole", status_code=200)
async def revoke_site_role(
    request: AnyRequest, role: FromPath[str], actor_id: FromPath[int]
) -> Success:
    await _site_assignment(request, role, actor_id, grant=False)
    return Success()


router = Router(
    "/v1",
    route_handlers=[
        list_users,
        create_user,
        get_user,
        update_user,
        delete_user,
        change_password,
        list_site_assignments,
        list_site_role_assignments,
        assign_site_role,
        revoke_site_role,
    ],
    tags=["users"],
)
