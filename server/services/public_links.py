"""Public links: anonymous access to fill in one form (Central's public access links).

A link is an actor of kind ``public_link`` holding the pub-link role on its form.
Its token is derived from the deployment secret and a nonce, like an app user's,
and only the token's sha256 is stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.auth import Grant, Principal, derive_public_link_token, token_hash
from server.db.models import Actor, Assignment, Form, PublicLink
from server.roles import ROLES_BY_SYSTEM
from server.services import accounts
from server.services.audit import now, record

_BY_TOKEN = (
    select(Actor.id, Actor.display_name, Assignment.role_id, Assignment.form_id)
    .join(PublicLink, PublicLink.actor_id == Actor.id)
    .outerjoin(Assignment, Assignment.actor_id == Actor.id)
    .where(PublicLink.token_hash == bindparam("token_hash"), Actor.deleted_at.is_(None))
)


def link_token(link: PublicLink, secret_key: str) -> str | None:
    return derive_public_link_token(secret_key, link.token_nonce) if link.token_nonce else None


async def create_link(
    db: AsyncSession,
    form: Form,
    *,
    display_name: str,
    once: bool,
    secret_key: str,
    by: Principal,
) -> tuple[Actor, PublicLink, str]:
    if not display_name.strip():
        raise problems.missing_parameter("displayName")
    actor = Actor(kind="public_link", display_name=display_name.strip(), created_at=now())
    db.add(actor)
    await db.flush()
    nonce = secrets.token_hex(16)
    token = derive_public_link_token(secret_key, nonce)
    link = PublicLink(
        actor_id=actor.id,
        form_id=form.id,
        once=once,
        created_by=by.actor_id,
        token_nonce=nonce,
        token_hash=token_hash(token),
    )
    db.add(link)
    await db.flush()
    await record(db, by.actor_id, "public_link.create", "actor", actor.id, {"form": form.id})
    await accounts.assign(
        db, actor_id=actor.id, role=ROLES_BY_SYSTEM["pub-link"], form_id=form.id, by=by.actor_id
    )
    return actor, link, token


async def links_of(db: AsyncSession, form: Form) -> Sequence[tuple[Actor, PublicLink]]:
    rows = await db.execute(
        select(Actor, PublicLink)
        .join(PublicLink, PublicLink.actor_id == Actor.id)
        .where(PublicLink.form_id == form.id, Actor.deleted_at.is_(None))
        .order_by(Actor.created_at.desc(), Actor.id.desc())
    )
    return [(a, link) for a, link in rows]


async def find_link(db: AsyncSession, form: Form, actor_id: int) -> tuple[Actor, PublicLink]:
    for actor, link in await links_of(db, form):
        if actor.id == actor_id:
            return actor, link
    raise problems.not_found()


async def delete_link(db: AsyncSession, actor: Actor, link: PublicLink, by: Principal) -> None:
    actor.deleted_at = now()
    link.token_hash = None
    link.token_nonce = None
    await record(db, by.actor_id, "public_link.delete", "actor", actor.id)


async def principal_for_link_token(db: AsyncSession, token: str) -> Principal | None:
    connection = await db.connection()
    rows = (await connection.execute(_BY_TOKEN, {"token_hash": token_hash(token)})).all()
    if not rows:
        return None
    grants = tuple(
        Grant(role_id, None, form_id) for _, _, role_id, form_id in rows if role_id is not None
    )
    return Principal(rows[0][0], "public_link", rows[0][1], grants)
