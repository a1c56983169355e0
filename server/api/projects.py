"""Projects, app users, assignments and the Collect QR code."""

from __future__ import annotations

from collections.abc import Sequence

from litestar import Response, Router, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.common import (
    ExtendedHeader,
    actor_out,
    app_user_out,
    check,
    is_extended,
    project_out,
)
from server.api.forms import forms_out
from server.api.shapes import (
    ActorOut,
    AppUserIn,
    AppUserOut,
    AssignmentOut,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
    ProjectPut,
    Success,
    iso,
)
from server.auth import Principal
from server.db.models import Actor, Assignment, FieldKey, Project
from server.qr import collect_settings, qr_png, settings_payload
from server.requests import AnyRequest, parse_flag, require_principal, runtime_of
from server.roles import ROLES_BY_ID, find_role
from server.services import accounts, projects, stats
from server.services import forms as form_service
from server.services.audit import now, record
from server.services.datasets import dataset_counts
from server.services.forms import find_form


async def _projects_out(
    db: AsyncSession,
    principal: Principal,
    found: Sequence[Project],
    *,
    extended: bool,
    with_forms: bool = False,
) -> list[ProjectOut]:
    shapes = [project_out(p) for p in found]
    if extended or with_forms:
        numbers = await stats.project_stats(db, (p.id for p in found))
        lists = await dataset_counts(db, [p.id for p in found])
        for shape in shapes:
            counted = numbers.get(shape.id, stats.ProjectStats())
            shape.app_users = counted.app_users
            shape.forms = counted.forms
            shape.last_submission = iso(counted.last_submission)
            shape.datasets = lists.get(shape.id, 0)
    if with_forms:
        for shape in shapes:
            found_forms = await form_service.list_forms(db, shape.id)
            visible = [
                f
                for f in found_forms
                if principal.can("form.read", project_id=shape.id, form_id=f.id)
            ]
            shape.form_list = await forms_out(db, visible, extended=True)
    return shapes


def _verbs_on(principal: Principal, project_id: int) -> list[str]:
    verbs: set[str] = set()
    for grant in principal.grants:
        if grant.form_id is None and grant.project_id in (None, project_id):
            verbs |= ROLES_BY_ID[grant.role_id].verbs
    return sorted(verbs)


@get("/projects", operation_id="listProjects")
async def list_projects(
    request: AnyRequest,
    extended: ExtendedHeader = None,
    forms: FromQuery[str | None] = None,
) -> list[ProjectOut]:
    """``?forms=true`` nests the forms the caller may see under ``formList``."""
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        found = await projects.list_projects(db, principal)
        return await _projects_out(
            db, principal, found, extended=is_extended(extended), with_forms=parse_flag(forms)
        )


@post("/projects", operation_id="createProject", status_code=200)
async def create_project(request: AnyRequest, data: JSONBody[ProjectIn]) -> ProjectOut:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "project.create")
        project = await projects.create_project(
            db, name=data.name, description=data.description, by=principal
        )
        return project_out(project)


@get("/projects/{project_id:int}", operation_id="getProject")
async def get_project(
    request: AnyRequest, project_id: FromPath[int], extended: ExtendedHeader = None
) -> ProjectOut:
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        check(principal, "project.read", project_id=project_id)
        project = await projects.get_project(db, project_id)
        wanted = is_extended(extended)
        [shape] = await _projects_out(db, principal, [project], extended=wanted)
        if wanted:
            shape.verbs = _verbs_on(principal, project_id)
        return shape


@delete("/projects/{project_id:int}", operation_id="deleteProject", status_code=200)
async def delete_project(request: AnyRequest, project_id: FromPath[int]) -> Success:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "project.delete", project_id=project_id)
        project = await projects.get_project(db, project_id)
        project.deleted_at = now()
        await record(db, principal.actor_id, "project.delete", "project", project_id)
    return Success()


@put("/projects/{project_id:int}", operation_id="replaceProject")
async def replace_project(
    request: AnyRequest, project_id: FromPath[int], data: JSONBody[ProjectPut]
) -> ProjectOut:
    """Central's deep update: project metadata, and optionally every form's state and
    form-level assignments, in one transaction."""
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "project.update", project_id=project_id)
        project = await projects.get_project(db, project_id)
        await projects.update_project(
            db,
            project,
            name=data.name,
            description=data.description,
            archived=data.archived,
            by=principal,
        )
        if data.forms is not None:
            await projects.deep_update_forms(db, project, data.forms, by=principal)
        return project_out(project)


@patch("/projects/{project_id:int}", operation_id="updateProject")
async def update_project(
    request: AnyRequest, project_id: FromPath[int], data: JSONBody[ProjectPatch]
) -> ProjectOut:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "project.update", project_id=project_id)
        project = await projects.get_project(db, project_id)
        await projects.update_project(
            db,
            project,
            name=data.name,
            description=data.description,
            archived=data.archived,
            by=principal,
            retention_months=data.retention_months,
        )
        return project_out(project)


@get("/projects/{project_id:int}/app-users", operation_id="listAppUsers")
async def list_app_users(request: AnyRequest, project_id: FromPath[int]) -> list[AppUserOut]:
    rt = runtime_of(request)
    async with rt.transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "field_key.list", project_id=project_id)
        await projects.get_project(db, project_id)
        rows = await db.execute(
            select(Actor, FieldKey)
            .join(FieldKey, FieldKey.actor_id == Actor.id)
            .where(FieldKey.project_id == project_id, Actor.deleted_at.is_(None))
            .order_by(Actor.created_at.desc(), Actor.id.desc())
        )
        return [
            app_user_out(a, k, accounts.app_user_token(k, rt.settings.secret_key)) for a, k in rows
        ]


@post("/projects/{project_id:int}/app-users", operation_id="createAppUser", status_code=200)
async def create_app_user(
    request: AnyRequest, project_id: FromPath[int], data: JSONBody[AppUserIn]
) -> AppUserOut:
    rt = runtime_of(request)
    async with rt.transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "field_key.create", project_id=project_id)
        await projects.get_project(db, project_id)
        actor, key, token = await accounts.create_app_user(
            db,
            project_id=project_id,
            display_name=data.display_name,
            secret_key=rt.settings.secret_key,
            by=principal,
        )
        return app_user_out(actor, key, token)


async def _app_user(
    request: AnyRequest, db: object, project_id: int, actor_id: int
) -> tuple[Actor, FieldKey]:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(db, AsyncSession)
    row = (
        await db.execute(
            select(Actor, FieldKey)
            .join(FieldKey, FieldKey.actor_id == Actor.id)
            .where(
                FieldKey.project_id == project_id, Actor.id == actor_id, Actor.deleted_at.is_(None)
            )
        )
    ).first()
    if row is None:
        raise problems.not_found()
    return row[0], row[1]


@delete(
    "/projects/{project_id:int}/app-users/{actor_id:int}",
    operation_id="deleteAppUser",
    status_code=200,
)
async def delete_app_user(
    request: AnyRequest, project_id: FromPath[int], actor_id: FromPath[int]
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "field_key.delete", project_id=project_id)
        actor, key = await _app_user(request, db, project_id, actor_id)
        actor.deleted_at = now()
        key.token_hash = None
        key.token_nonce = None
        await record(db, principal.actor_id, "field_key.delete", "actor", actor_id)
    return Success()


def collect_server_url(request: AnyRequest, project_id: int, token: str) -> str:
    public = runtime_of(request).settings.public_url.rstrip("/")
    origin = public or str(request.base_url).rstrip("/")
    return f"{origin}/v1/key/{token}/projects/{project_id}"


@get("/projects/{project_id:int}/app-users/{actor_id:int}/qr.png", operation_id="getAppUserQr")
async def app_user_qr(
    request: AnyRequest, project_id: FromPath[int], actor_id: FromPath[int]
) -> Response[bytes]:
    rt = runtime_of(request)
    async with rt.transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "field_key.list", project_id=project_id)
        project = await projects.get_project(db, project_id)
        _actor, key = await _app_user(request, db, project_id, actor_id)
        token = accounts.app_user_token(key, rt.settings.secret_key)
        if token is None:
            raise problems.Problem(
                409.3, "This app user's access was revoked; create a new app user."
            )
    settings = collect_settings(collect_server_url(request, project_id, token), project.name)
    return Response(
        qr_png(settings_payload(settings)),
        media_type="image/png",
        headers={"Cache-Control": "no-store"},
    )


def _role_or_404(role: str) -> int:
    spec = find_role(role)
    if spec is None:
        raise problems.not_found()
    return spec.id


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments/{role:str}",
    operation_id="listFormRoleAssignments",
)
async def list_form_assignments(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str], role: FromPath[str]
) -> list[ActorOut]:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "assignment.list", project_id=project_id)
        form = await find_form(db, project_id, xml_form_id)
        rows = await db.scalars(
            select(Actor)
            .join(Assignment, Assignment.actor_id == Actor.id)
            .where(
                Assignment.form_id == form.id,
                Assignment.role_id == _role_or_404(role),
                Actor.deleted_at.is_(None),
            )
            .order_by(Actor.id)
        )
        return [actor_out(a) for a in rows]


async def _form_assignment(
    request: AnyRequest, project_id: int, xml_form_id: str, role: str, actor_id: int, *, grant: bool
) -> Success:
    spec = find_role(role)
    if spec is None:
        raise problems.not_found()
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(
            principal, "assignment.create" if grant else "assignment.delete", project_id=project_id
        )
        form = await find_form(db, project_id, xml_form_id)
        actor = await db.get(Actor, actor_id)
        if actor is None or actor.deleted_at is not None:
            raise problems.not_found()
        if grant:
            if not principal.may_grant(spec, project_id=project_id, form_id=form.id):
                raise problems.insufficient_rights()
            await accounts.assign(
                db, actor_id=actor_id, role=spec, form_id=form.id, by=principal.actor_id
            )
        else:
            await accounts.unassign(
                db, actor_id=actor_id, role=spec, form_id=form.id, by=principal.actor_id
            )
    return Success()


@post(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments/{role:str}/{actor_id:int}",
    operation_id="assignFormRole",
    status_code=200,
)
async def assign_form_role(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    role: FromPath[str],
    actor_id: FromPath[int],
) -> Success:
    return await _form_assignment(request, project_id, xml_form_id, role, actor_id, grant=True)


@delete(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/assignments/{role:str}/{actor_id:int}",
    operation_id="revokeFormRole",
    status_code=200,
)
async def revoke_form_role(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    role: FromPath[str],
    actor_id: FromPath[int],
) -> Success:
    return await _form_assignment(request, project_id, xml_form_id, role, actor_id, grant=False)


@get("/projects/{project_id:int}/assignments", operation_id="listProjectAssignments")
async def list_project_assignments(
    request: AnyRequest, project_id: FromPath[int]
) -> list[AssignmentOut]:
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "assignment.list", project_id=project_id)
        await projects.get_project(db, project_id)
        rows = await db.execute(
            select(Assignment.actor_id, Assignment.role_id)
            .join(Actor, Actor.id == Assignment.actor_id)
            .where(Assignment.project_id == project_id, Actor.deleted_at.is_(None))
            .order_by(Assignment.actor_id, Assignment.role_id)
        )
        return [AssignmentOut(actor_id=a, role_id=r) for a, r in rows]


@get(
    "/projects/{project_id:int}/assignments/{role:str}",
    operation_id="listProjectRoleAssignments",
)
async def list_project_role_assignments(
    request: AnyRequest, project_id: FromPath[int], role: FromPath[str]
) -> list[ActorOut]:
    role_id = _role_or_404(role)
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(principal, "assignment.list", project_id=project_id)
        await projects.get_project(db, project_id)
        rows = await db.scalars(
            select(Actor)
            .join(Assignment, Assignment.actor_id == Actor.id)
            .where(
                Assignment.project_id == project_id,
                Assignment.role_id == role_id,
                Actor.deleted_at.is_(None),
            )
            .order_by(Actor.id)
        )
        return [actor_out(a) for a in rows]


async def _project_assignment(
    request: AnyRequest, project_id: int, role: str, actor_id: int, *, grant: bool
) -> Success:
    spec = find_role(role)
    if spec is None:
        raise problems.not_found()
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)
        check(
            principal, "assignment.create" if grant else "assignment.delete", project_id=project_id
        )
        await projects.get_project(db, project_id)
        actor = await db.get(Actor, actor_id)
        if actor is None or actor.deleted_at is not None:
            raise problems.not_found()
        if grant:
            if not principal.may_grant(spec, project_id=project_id):
                raise problems.insufficient_rights()
            await accounts.assign(
                db, actor_id=actor_id, role=spec, project_id=project_id, by=principal.actor_id
            )
        else:
            await accounts.unassign(
                db, actor_id=actor_id, role=spec, project_id=project_id, by=principal.actor_id
            )
    return Success()


@post(
    "/projects/{project_id:int}/assignments/{role:str}/{actor_id:int}",
    operation_id="assignProjectRole",
    status_code=200,
)
async def assign_project_role(
    request: AnyRequest, project_id: FromPath[int], role: FromPath[str], actor_id: FromPath[int]
) -> Success:
    return await _project_assignment(request, project_id, role, actor_id, grant=True)


@delete(
    "/projects/{project_id:int}/assignments/{role:str}/{actor_id:int}",
    operation_id="revokeProjectRole",
    status_code=200,
)
async def revoke_project_role(
    request: AnyRequest, project_id: FromPath[int], role: FromPath[str], actor_id: FromPath[int]
) -> Success:
    return await _project_assignment(request, project_id, role, actor_id, grant=False)


router = Router(
    "/v1",
    route_handlers=[
        list_projects,
        create_project,
        get_project,
        update_project,
        replace_project,
        delete_project,
        list_app_users,
        create_app_user,
        delete_app_user,
        app_user_qr,
        list_form_assignments,
        assign_form_role,
        revoke_form_role,
        list_project_assignments,
        list_project_role_assignments,
        assign_project_role,
        revoke_project_role,
    ],
    tags=["projects"],
)
