"""Projects."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Protocol

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.auth import Principal
from server.db.models import Actor, Assignment, Form, Project
from server.roles import ROLES_BY_ID, RoleSpec
from server.services import accounts
from server.services.audit import now, record
from server.services.forms import set_state


async def create_project(
    db: AsyncSession, *, name: str, description: str | None, by: Principal | None
) -> Project:
    if not name.strip():
        raise problems.missing_parameter("name")
    project = Project(
        name=name.strip(),
        description=description,
        archived=False,
        pseudonym_secret=secrets.token_hex(32),
        created_at=now(),
    )
    db.add(project)
    await db.flush()
    await record(db, by.actor_id if by else None, "project.create", "project", project.id)
    return project


async def get_project(db: AsyncSession, project_id: int) -> Project:
    project = await db.get(Project, project_id)
    if project is None or project.deleted_at is not None:
        raise problems.not_found()
    return project


async def list_projects(db: AsyncSession, principal: Principal) -> Sequence[Project]:
    query = select(Project).where(Project.deleted_at.is_(None)).order_by(Project.name, Project.id)
    visible = principal.project_ids()
    if visible is not None:
        query = query.where(Project.id.in_(visible))
    return (await db.scalars(query)).all()


async def update_project(
    db: AsyncSession,
    project: Project,
    *,
    name: str | None,
    description: str | None,
    archived: bool | None,
    by: Principal,
    retention_months: int | msgspec.UnsetType | None = msgspec.UNSET,
) -> None:
    changes: dict[str, object] = {}
    if retention_months is not msgspec.UNSET:
        project.retention_months = changes["retentionMonths"] = retention_months
    if name is not None:
        if not name.strip():
            raise problems.unexpected_value("name", name, "it is empty.")
        project.name = changes["name"] = name.strip()
    if description is not None:
        project.description = changes["description"] = description
    if archived is not None:
        project.archived = changes["archived"] = archived
    project.updated_at = now()
    await record(db, by.actor_id, "project.update", "project", project.id, {"data": changes})


class AssignmentChange(Protocol):
    @property
    def role_id(self) -> int: ...
    @property
    def actor_id(self) -> int: ...


class FormChange(Protocol):
    @property
    def xml_form_id(self) -> str: ...
    @property
    def state(self) -> str | None: ...
    @property
    def assignments(self) -> Sequence[AssignmentChange] | None: ...


async def deep_update_forms(
    db: AsyncSession, project: Project, changes: Sequence[FormChange], *, by: Principal
) -> None:
    """Every form's state and form-level roles, as Central's PUT /projects/{id} does.

    Like Central, the request must name exactly the project's forms: adding or
    removing forms this way is not supported (501.1).
    """
    found = {
        f.xml_form_id: f
        for f in await db.scalars(
            select(Form).where(Form.project_id == project.id, Form.deleted_at.is_(None))
        )
    }
    named = [c.xml_form_id for c in changes]
    if sorted(named) != sorted(found):
        raise problems.Problem(
            501.1,
            "The requested feature (creating or deleting forms by PUT) is not supported "
            "by this server: name exactly the project's existing forms.",
        )
    for change in changes:
        form = found[change.xml_form_id]
        if change.state is not None and change.state != form.state:
            await set_state(db, form, change.state, by)
        if change.assignments is not None:
            await _replace_form_assignments(db, project, form, change.assignments, by)


async def _replace_form_assignments(
    db: AsyncSession,
    project: Project,
    form: Form,
    wanted: Sequence[AssignmentChange],
    by: Principal,
) -> None:
    if not by.can("assignment.create", project_id=project.id) or not by.can(
        "assignment.delete", project_id=project.id
    ):
        raise problems.insufficient_rights()
    current = {
        (actor_id, role_id)
        for actor_id, role_id in await db.execute(
            select(Assignment.actor_id, Assignment.role_id).where(Assignment.form_id == form.id)
        )
    }
    target = {(a.actor_id, a.role_id) for a in wanted}
    for actor_id, role_id in sorted(current - target):
        await accounts.unassign(
            db, actor_id=actor_id, role=_role(role_id), form_id=form.id, by=by.actor_id
        )
    for actor_id, role_id in sorted(target - current):
        if not by.may_grant(_role(role_id), project_id=project.id, form_id=form.id):
            raise problems.insufficient_rights()
        actor = await db.get(Actor, actor_id)
        if actor is None or actor.deleted_at is not None:
            raise problems.not_found()
        await accounts.assign(
            db, actor_id=actor_id, role=_role(role_id), form_id=form.id, by=by.actor_id
        )


def _role(role_id: int) -> RoleSpec:
    role = ROLES_BY_ID.get(role_id)
    if role is None:
        raise problems.unexpected_value("roleId", role_id, "no such role.")
    return role
