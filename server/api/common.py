"""Pieces every API module uses: the caller, permission checks, row → shape."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from litestar.params import HeaderParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.shapes import ActorOut, AppUserOut, ProjectOut, iso
from server.auth import Principal
from server.db.models import Actor, FieldKey, Project

ACTOR_TYPES = {"user": "user", "field_key": "field_key", "public_link": "public_link"}


def check(
    principal: Principal, verb: str, *, project_id: int | None = None, form_id: int | None = None
) -> None:
    if not principal.can(verb, project_id=project_id, form_id=form_id):
        raise problems.insufficient_rights()


def actor_out(actor: Actor) -> ActorOut:
    return ActorOut(
        id=actor.id,
        type=ACTOR_TYPES.get(actor.kind, actor.kind),
        display_name=actor.display_name,
        created_at=iso(actor.created_at) or "",
        updated_at=iso(actor.updated_at),
        deleted_at=iso(actor.deleted_at),
    )


def app_user_out(actor: Actor, key: FieldKey, token: str | None) -> AppUserOut:
    base = actor_out(actor)
    return AppUserOut(
        id=base.id,
        type=base.type,
        display_name=base.display_name,
        created_at=base.created_at,
        updated_at=base.updated_at,
        deleted_at=base.deleted_at,
        token=token,
        project_id=key.project_id,
        created_by=key.created_by,
    )


def project_out(project: Project) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        archived=project.archived,
        key_id=None,
        created_at=iso(project.created_at) or "",
        updated_at=iso(project.updated_at),
        deleted_at=iso(project.deleted_at),
        retention_months=project.retention_months,
    )


# Central's X-Extended-Metadata: true adds related objects (submitter, actor, counts).
ExtendedHeader = Annotated[str | None, HeaderParameter(name="X-Extended-Metadata", required=False)]


def is_extended(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


async def actors_by_id(db: AsyncSession, ids: Iterable[int | None]) -> dict[int, ActorOut]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await db.scalars(select(Actor).where(Actor.id.in_(wanted)))
    return {a.id: actor_out(a) for a in rows}
