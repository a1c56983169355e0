"""Web users administration: search, change, delete, passwords; site-wide roles."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.auth import Principal, token_hash, verify_password
from server.db.models import Actor, Assignment, Session, User
from server.services import accounts
from server.services.audit import now, record
from server.sign_in import SignInThrottle


async def get_user(db: AsyncSession, actor_id: int) -> tuple[Actor, User]:
    row = (
        await db.execute(
            select(Actor, User)
            .join(User, User.actor_id == Actor.id)
            .where(Actor.id == actor_id, Actor.deleted_at.is_(None))
        )
    ).first()
    if row is None:
        raise problems.not_found()
    return row[0], row[1]


async def search_users(db: AsyncSession, q: str | None) -> Sequence[tuple[Actor, User]]:
    """Every live user, or those whose e-mail or display name contains ``q``.

    Central ranks by trigram similarity (PostgreSQL only); a case-insensitive
    substring match behaves the same on both databases, ordered by e-mail.
    """
    query = (
        select(Actor, User)
        .join(User, User.actor_id == Actor.id)
        .where(Actor.deleted_at.is_(None))
        .order_by(User.email)
    )
    if q:
        pattern = f"%{q.strip().lower()}%"
        query = query.where(
            or_(User.email.like(pattern), func.lower(Actor.display_name).like(pattern))
        )
    return [(a, u) for a, u in await db.execute(query)]


async def update_user(
    db: AsyncSession,
    actor: Actor,
    user: User,
    *,
    display_name: str | None,
    email: str | None,
    by: Principal,
) -> None:
    changes: dict[str, str] = {}
    if display_name is not None:
        if not display_name.strip():
            raise problems.unexpected_value("displayName", display_name, "it is empty.")
        actor.display_name = display_name.strip()
        changes["displayName"] = actor.display_name
    if email is not None:
        email = email.strip().lower()
        if "@" not in email:
            raise problems.unexpected_value("email", email, "it is not an e-mail address.")
        if email != user.email:
            taken = await db.scalar(select(User.actor_id).where(User.email == email))
            if taken is not None:
                raise problems.already_exists("email", email)
            user.email = email
            # The Digest credential hashes the e-mail: it no longer matches.
            user.digest_ha1 = None
            changes["email"] = email
    actor.updated_at = now()
    await record(db, by.actor_id, "user.update", "actor", actor.id, {"data": changes})


async def delete_user(db: AsyncSession, actor: Actor, by: Principal) -> None:
    actor.deleted_at = now()
    await db.execute(delete(Assignment).where(Assignment.actor_id == actor.id))
    await db.execute(delete(Session).where(Session.actor_id == actor.id))
    await record(db, by.actor_id, "user.delete", "actor", actor.id)


async def check_old_password(
    user: User, old: str, *, throttle: SignInThrottle, address: str
) -> str:
    """Check the current password before the write transaction (argon2 on a thread,
    throttled like sign-in); returns the hash it matched."""
    password_hash = user.password_hash
    throttle.begin(user.email, address)
    if not await throttle.run_argon2(lambda: verify_password(old, password_hash)):
        raise problems.authentication_failed()
    throttle.succeeded(user.email, address)
    assert password_hash is not None  # verify_password is False without one
    return password_hash


async def change_password(
    db: AsyncSession,
    user: User,
    *,
    checked_hash: str,
    new: str,
    keep_digest: bool,
    current_token: str | None,
) -> None:
    """Central checks the old password even for administrators (`check_old_password`,
    whose hash must still be the user's), then ends every other session of that user."""
    if user.password_hash != checked_hash:
        raise problems.authentication_failed()
    await accounts.set_password(db, user, new, keep_digest=keep_digest)
    ending = delete(Session).where(Session.actor_id == user.actor_id)
    if current_token is not None:
        ending = ending.where(Session.token_hash != token_hash(current_token))
    await db.execute(ending)
