"""Users, sessions, app users and role assignments."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from sqlalchemy import ColumnElement, Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.auth import (
    Grant,
    Principal,
    RecentPasswords,
    derive_app_user_token,
    digest_ha1,
    hash_password,
    new_session_token,
    token_hash,
    verify_password,
)
from server.db.models import Actor, Assignment, FieldKey, Project, Session, User
from server.roles import ROLES_BY_SYSTEM, RoleSpec
from server.runtime import Runtime
from server.services.audit import now, record
from server.sign_in import SignInThrottle

DIGEST_REALM = "Homeward"

_APP_USER_BY_TOKEN = (
    select(
        Actor.id,
        Actor.display_name,
        FieldKey.project_id,
        Assignment.role_id,
        Assignment.project_id,
        Assignment.form_id,
    )
    .join(FieldKey, FieldKey.actor_id == Actor.id)
    # An app user of a deleted project is gone with it.
    .join(Project, Project.id == FieldKey.project_id)
    .outerjoin(Assignment, Assignment.actor_id == Actor.id)
    .where(
        FieldKey.token_hash == bindparam("token_hash"),
        Actor.deleted_at.is_(None),
        Project.deleted_at.is_(None),
    )
)
MIN_PASSWORD_LENGTH = 10


async def create_user(
    db: AsyncSession,
    *,
    email: str,
    password: str | None,
    display_name: str | None = None,
    created_by: int | None = None,
    keep_digest: bool = False,
) -> tuple[Actor, User]:
    email = email.strip().lower()
    if "@" not in email:
        raise problems.unexpected_value("email", email, "it is not an e-mail address.")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise problems.Problem(400.21, f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    if await db.scalar(select(User.actor_id).where(User.email == email)) is not None:
        raise problems.already_exists("email", email)
    actor = Actor(kind="user", display_name=display_name or email, created_at=now())
    db.add(actor)
    await db.flush()
    user = User(
        actor_id=actor.id,
        email=email,
        password_hash=hash_password(password) if password else None,
        digest_ha1=digest_ha1(email, DIGEST_REALM, password) if password and keep_digest else None,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as error:
        raise problems.already_exists("email", email) from error
    await record(db, created_by, "user.create", "actor", actor.id, {"email": email})
    return actor, user


async def set_password(
    db: AsyncSession, user: User, password: str, *, keep_digest: bool = False
) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise problems.Problem(400.21, f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    user.password_hash = hash_password(password)
    user.digest_ha1 = digest_ha1(user.email, DIGEST_REALM, password) if keep_digest else None


async def find_user(db: AsyncSession, email: str) -> tuple[Actor, User] | None:
    row = (
        await db.execute(
            select(Actor, User)
            .join(User, User.actor_id == Actor.id)
            .where(User.email == email.strip().lower(), Actor.deleted_at.is_(None))
        )
    ).first()
    return (row[0], row[1]) if row else None


_recent = RecentPasswords()


async def authenticate_password(
    db: AsyncSession,
    email: str,
    password: str,
    *,
    throttle: SignInThrottle | None = None,
    address: str = "",
) -> Actor | None:
    """The user whose password this is; ``None`` when it is not.

    Call it outside any write transaction: argon2 takes tens of milliseconds, and
    on SQLite a transaction would hold the one writer for all of them. With a
    ``throttle``, spent budgets answer 429 before any argon2 work is done.
    """
    if throttle is not None:
        throttle.check(email, address)  # before any work: a flood of these stays cheap
    found = await find_user(db, email)
    password_hash = found[1].password_hash if found else None
    at = time.monotonic()
    if found is not None and password_hash and _recent.knows(email, password, password_hash, at):
        if throttle is not None:
            throttle.succeeded(email, address, counted=False)
        return found[0]
    if throttle is not None:
        throttle.begin(email, address)

    def check() -> bool:
        # Always the argon2 work, so a wrong e-mail takes as long as a wrong password.
        return verify_password(password, password_hash)

    # In a worker thread: argon2 releases the GIL, and the event loop serves others.
    verified = await (
        throttle.run_argon2(check) if throttle is not None else anyio.to_thread.run_sync(check)
    )
    if not verified or found is None or password_hash is None:
        return None
    if throttle is not None:
        throttle.succeeded(email, address)
    _recent.remember(email, password, password_hash, at)
    return found[0]


async def create_session(db: AsyncSession, actor: Actor, hours: int) -> tuple[str, Session]:
    token = new_session_token()
    created = now()
    session = Session(
        token_hash=token_hash(token),
        actor_id=actor.id,
        created_at=created,
        expires_at=created + timedelta(hours=hours),
    )
    db.add(session)
    await record(db, actor.id, "user.session.create", "actor", actor.id)
    return token, session


async def sign_in_with_password(
    rt: Runtime, email: str, password: str, *, throttle: SignInThrottle, address: str
) -> tuple[str, Session]:
    """A new session for the user whose password this is (401 when it is not).

    The password (and the throttle) are checked in a read-only unit of work; the
    write transaction that follows only inserts the session.
    """
    async with rt.read() as db:
        actor = await authenticate_password(db, email, password, throttle=throttle, address=address)
    if actor is None:
        raise problems.authentication_failed()
    async with rt.transaction() as db:
        return await create_session(db, actor, rt.settings.session_hours)


async def end_session(db: AsyncSession, token: str, by: Principal) -> None:
    hashed = token_hash(token)
    session = await db.get(Session, hashed)
    if session is not None:
        if session.actor_id != by.actor_id and not by.is_admin:
            raise problems.insufficient_rights()
        await db.delete(session)
        await record(db, by.actor_id, "user.session.delete", "actor", session.actor_id)
        return
    key = await db.scalar(select(FieldKey).where(FieldKey.token_hash == hashed))
    if key is None:
        raise problems.not_found()
    if not by.can("field_key.delete", project_id=key.project_id):
        raise problems.insufficient_rights()
    key.token_hash = None
    key.token_nonce = None
    await record(db, by.actor_id, "field_key.session.end", "actor", key.actor_id)


async def load_principal(db: AsyncSession, actor: Actor) -> Principal:
    rows = await db.execute(
        select(Assignment.role_id, Assignment.project_id, Assignment.form_id).where(
            Assignment.actor_id == actor.id
        )
    )
    grants = tuple(Grant(role_id, project_id, form_id) for role_id, project_id, form_id in rows)
    return Principal(actor.id, actor.kind, actor.display_name, grants)


async def principal_for_session_token(db: AsyncSession, token: str) -> Principal | None:
    row = (
        await db.execute(
            select(Actor, Session.expires_at)
            .join(Session, Session.actor_id == Actor.id)
            .where(Session.token_hash == token_hash(token), Actor.deleted_at.is_(None))
        )
    ).first()
    if row is None or _as_utc(row[1]) <= now():
        return None
    return await load_principal(db, row[0])


async def principal_for_app_user_token(
    db: AsyncSession, token: str
) -> tuple[Principal, int] | None:
    """The app user behind a URL token and the project it belongs to."""
    return await db.run_sync(lambda session: app_user_on(session.connection(), token))


def app_user_on(connection: Connection, token: str) -> tuple[Principal, int] | None:
    """`principal_for_app_user_token` as a synchronous unit of work (Runtime.query).

    One query, with the assignments joined in: every Collect request pays for it.
    """
    rows = connection.execute(_APP_USER_BY_TOKEN, {"token_hash": token_hash(token)}).all()
    if not rows:
        return None
    actor_id, display_name, project_id = rows[0][:3]
    grants = tuple(
        Grant(role_id, grant_project, grant_form)
        for *_, role_id, grant_project, grant_form in rows
        if role_id is not None
    )
    return Principal(actor_id, "field_key", display_name, grants), project_id


def _as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def create_app_user(
    db: AsyncSession, *, project_id: int, display_name: str, secret_key: str, by: Principal
) -> tuple[Actor, FieldKey, str]:
    actor = Actor(kind="field_key", display_name=display_name, created_at=now())
    db.add(actor)
    await db.flush()
    nonce = secrets.token_hex(16)
    token = derive_app_user_token(secret_key, nonce)
    key = FieldKey(
        actor_id=actor.id,
        project_id=project_id,
        created_by=by.actor_id,
        token_nonce=nonce,
        token_hash=token_hash(token),
    )
    db.add(key)
    await record(db, by.actor_id, "field_key.create", "actor", actor.id, {"project": project_id})
    return actor, key, token


def app_user_token(key: FieldKey, secret_key: str) -> str | None:
    return derive_app_user_token(secret_key, key.token_nonce) if key.token_nonce else None


async def assign(
    db: AsyncSession,
    *,
    actor_id: int,
    role: RoleSpec,
    project_id: int | None = None,
    form_id: int | None = None,
    by: int | None,
) -> None:
    exists = await db.scalar(
        select(Assignment.id).where(*_assignment_is(actor_id, role, project_id, form_id))
    )
    if exists is not None:
        raise problems.already_exists("assignment", f"{role.system} for actor {actor_id}")
    db.add(Assignment(actor_id=actor_id, role_id=role.id, project_id=project_id, form_id=form_id))
    await record(
        db,
        by,
        f"{await _kind(db, actor_id)}.assignment.create",
        "actor",
        actor_id,
        {"role": role.system, "project": project_id, "form": form_id},
    )


async def unassign(
    db: AsyncSession,
    *,
    actor_id: int,
    role: RoleSpec,
    project_id: int | None = None,
    form_id: int | None = None,
    by: int | None,
) -> None:
    result = await db.execute(
        delete(Assignment).where(*_assignment_is(actor_id, role, project_id, form_id))
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise problems.not_found()
    await record(
        db,
        by,
        f"{await _kind(db, actor_id)}.assignment.delete",
        "actor",
        actor_id,
        {"role": role.system, "project": project_id, "form": form_id},
    )


async def _kind(db: AsyncSession, actor_id: int) -> str:
    """Central names assignment audits by the actor's kind: user., field_key., public_link."""
    return await db.scalar(select(Actor.kind).where(Actor.id == actor_id)) or "user"


def _assignment_is(
    actor_id: int, role: RoleSpec, project_id: int | None, form_id: int | None
) -> tuple[ColumnElement[bool], ...]:
    """The row of one assignment: this actor, this role, exactly this scope."""
    return (
        Assignment.actor_id == actor_id,
        Assignment.role_id == role.id,
        Assignment.project_id.is_(None)
        if project_id is None
        else Assignment.project_id == project_id,
        Assignment.form_id.is_(None) if form_id is None else Assignment.form_id == form_id,
    )


async def promote_to_admin(db: AsyncSession, actor_id: int, by: int | None) -> None:
    admin = ROLES_BY_SYSTEM["admin"]
    exists = await db.scalar(
        select(Assignment.id).where(*_assignment_is(actor_id, admin, None, None))
    )
    if exists is None:
        await assign(db, actor_id=actor_id, role=admin, by=by)
