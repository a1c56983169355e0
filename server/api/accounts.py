"""Sessions, the current user, users and roles."""

from __future__ import annotations

from litestar import Router, delete, get, post
from litestar.params import FromPath, JSONBody
from sqlalchemy import select

from server import problems
from server.api.common import ExtendedHeader, actor_out, is_extended
from server.api.shapes import RoleOut, SessionIn, SessionOut, Success, UserOut, iso
from server.db.models import Actor, User
from server.requests import (
    ANONYMOUS_BODY,
    AnyRequest,
    authenticate,
    client_address,
    require_principal,
    runtime_of,
    sign_in_throttle,
)
from server.roles import ROLES, ROLES_BY_ID, find_role
from server.services import accounts


@post("/sessions", operation_id="createSession", status_code=200, opt={ANONYMOUS_BODY: True})
async def create_session(request: AnyRequest, data: JSONBody[SessionIn]) -> SessionOut:
    token, session = await accounts.sign_in_with_password(
        runtime_of(request),
        data.email,
        data.password,
        throttle=sign_in_throttle(request),
        address=client_address(request),
    )
    return SessionOut(
        token=token,
        created_at=iso(session.created_at) or "",
        expires_at=iso(session.expires_at) or "",
    )


@delete("/sessions/{token:str}", operation_id="deleteSession", status_code=200)
async def delete_session(request: AnyRequest, token: FromPath[str]) -> Success:
    """Sign out a session by its token; ``current`` names the caller's own, as in Central."""
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        if token == "current":  # noqa: S105 - a path word, not a secret
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer":
                raise problems.not_found()
            token = value.strip()
        await accounts.end_session(db, token, principal)
    return Success()


def user_out(actor: Actor, user: User) -> UserOut:
    base = actor_out(actor)
    return UserOut(**{f: getattr(base, f) for f in base.__struct_fields__}, email=user.email)


@get("/users/current", operation_id="getCurrentUser")
async def current_user(request: AnyRequest, extended: ExtendedHeader = None) -> UserOut:
    """With X-Extended-Metadata, also the caller's site-wide verbs (and, as Central
    shapes it, empty preferences)."""
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        row = (
            await db.execute(
                select(Actor, User)
                .join(User, User.actor_id == Actor.id)
                .where(Actor.id == principal.actor_id)
            )
        ).first()
        if row is None:
            raise problems.not_found()
        shape = user_out(row[0], row[1])
        if is_extended(extended):
            site = [g for g in principal.grants if g.project_id is None and g.form_id is None]
            shape.verbs = sorted({v for g in site for v in ROLES_BY_ID[g.role_id].verbs})
            shape.preferences = {"site": {}, "projects": {}}
        return shape


def _role_out(role_key: str | int) -> RoleOut:
    role = find_role(role_key)
    if role is None:
        raise problems.not_found()
    return RoleOut(
        id=role.id,
        name=role.name,
        system=role.system,
        verbs=sorted(role.verbs),
        created_at="2026-11-23T00:00:00.000Z",
        updated_at=None,
    )


async def _refuse_bad_credentials(request: AnyRequest) -> None:
    """Roles are public, but credentials that are sent must be valid (401.2), as in
    Central, where every request passes its authentication step first."""
    if "authorization" in request.headers or "st" in request.query_params:
        async with runtime_of(request).transaction() as db:
            await authenticate(request, db)


@get("/roles", operation_id="listRoles")
async def list_roles(request: AnyRequest) -> list[RoleOut]:
    await _refuse_bad_credentials(request)
    return [_role_out(role.id) for role in ROLES]


@get("/roles/{role:str}", operation_id="getRole")
async def get_role(request: AnyRequest, role: FromPath[str]) -> RoleOut:
    await _refuse_bad_credentials(request)
    return _role_out(role)


router = Router(
    "/v1",
    route_handlers=[create_session, delete_session, current_user, list_roles, get_role],
    tags=["accounts"],
)
