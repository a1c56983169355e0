"""Projects."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.auth import Principal
from server.db.models import Project
from server.services.audit import now, record


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
