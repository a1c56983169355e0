"""Credentials: password hashes, bearer and app-user tokens, and who may do what.

Tokens are never stored in clear: sessions keep a sha256 of theirs; app-user tokens
are derived from the deployment secret and a per-user nonce (so they can be shown
again in a QR code) and looked up by sha256 too.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.roles import ROLES_BY_ID, RoleSpec

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A real hash to verify against when the e-mail is unknown, so that a wrong e-mail
    and a wrong password take the same time. Made on first use, not at import: every
    process (an export, a migration) would otherwise pay an argon2 hash it never uses."""
    return _hasher.hash(secrets.token_urlsafe(16))


# Central's tokens are 64 characters of [A-Za-z0-9!$]; base64 of 48 bytes is 64
# characters, with '!' and '$' standing in for '+' and '/'.
_TOKEN_ALPHABET = bytes.maketrans(b"+/", b"!$")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return (
            _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


class RecentPasswords:
    """Passwords that verified a moment ago, so argon2 runs once per few minutes per user.

    Power BI, Excel and Collect signed in as a web user send Basic credentials
    with every request; argon2 costs about 100 ms of CPU each time, which would
    make every OData page and every submission wait for it. An entry is a keyed
    hash of e-mail and password (the key lives only in this process) with the
    stored password hash it matched: changing the password or removing the user
    ends it at once, and it expires after ``ttl`` seconds anyway.
    """

    def __init__(self, *, size: int = 1024, ttl: float = 300.0) -> None:
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, tuple[str, float]] = {}
        self._size = size
        self._ttl = ttl

    def _fingerprint(self, email: str, password: str) -> bytes:
        message = email.encode() + b"\0" + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def knows(self, email: str, password: str, password_hash: str, at: float) -> bool:
        entry = self._entries.get(self._fingerprint(email, password))
        return entry is not None and entry[1] > at and hmac.compare_digest(entry[0], password_hash)

    def remember(self, email: str, password: str, password_hash: str, at: float) -> None:
        if len(self._entries) >= self._size:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > at}
            if len(self._entries) >= self._size:
                self._entries.pop(next(iter(self._entries)))
        self._entries[self._fingerprint(email, password)] = (password_hash, at + self._ttl)


def digest_ha1(email: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{email}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def _encode_token(raw: bytes) -> str:
    return base64.b64encode(raw).translate(_TOKEN_ALPHABET).decode("ascii")


def new_session_token() -> str:
    return _encode_token(secrets.token_bytes(48))


def derive_app_user_token(secret_key: str, nonce: str) -> str:
    digest = hmac.new(secret_key.encode(), f"app-user:{nonce}".encode(), hashlib.sha384)
    return _encode_token(digest.digest())


def derive_public_link_token(secret_key: str, nonce: str) -> str:
    digest = hmac.new(secret_key.encode(), f"public-link:{nonce}".encode(), hashlib.sha384)
    return _encode_token(digest.digest())


def derive_draft_token(secret_key: str, nonce: str) -> str:
    digest = hmac.new(secret_key.encode(), f"draft:{nonce}".encode(), hashlib.sha384)
    return _encode_token(digest.digest())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Grant(msgspec.Struct, frozen=True):
    role_id: int
    project_id: int | None
    form_id: int | None


class Principal(msgspec.Struct, frozen=True):
    """The authenticated actor of one request and the roles it holds."""

    actor_id: int
    kind: str
    display_name: str
    grants: tuple[Grant, ...]

    def can(self, verb: str, *, project_id: int | None = None, form_id: int | None = None) -> bool:
        for grant in self.grants:
            if verb not in ROLES_BY_ID[grant.role_id].verbs:
                continue
            if grant.project_id is None and grant.form_id is None:
                return True  # site-wide role
            if grant.project_id is not None and grant.project_id == project_id:
                return True
            if grant.form_id is not None and grant.form_id == form_id:
                return True
        return False

    def verbs_on(self, *, project_id: int | None = None, form_id: int | None = None) -> set[str]:
        verbs: set[str] = set()
        for grant in self.grants:
            site_wide = grant.project_id is None and grant.form_id is None
            if (
                site_wide
                or (grant.project_id is not None and grant.project_id == project_id)
                or (grant.form_id is not None and grant.form_id == form_id)
            ):
                verbs |= ROLES_BY_ID[grant.role_id].verbs
        return verbs

    def may_grant(
        self, role: RoleSpec, *, project_id: int | None = None, form_id: int | None = None
    ) -> bool:
        """As Central: a role may be granted only by someone who holds all its verbs
        there (a project manager cannot make anyone an administrator)."""
        return role.verbs <= self.verbs_on(project_id=project_id, form_id=form_id)

    @property
    def is_admin(self) -> bool:
        return any(g.role_id == 1 and g.project_id is None for g in self.grants)

    def project_ids(self) -> set[int] | None:
        """Projects this actor sees something in; ``None`` means every project."""
        if self.is_admin:
            return None
        return {g.project_id for g in self.grants if g.project_id is not None}


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# The web app's session lives in an HttpOnly cookie; state-changing requests it
# makes must also carry this token in a header. It is derived from the session
# token and the deployment secret, so it needs no column and dies with the session;
# another site can neither read it (same-origin policy) nor make the browser add it.
SESSION_COOKIE = "homeward_session"
CSRF_HEADER = "X-CSRF-Token"


def csrf_token(secret_key: str, session_token: str) -> str:
    digest = hmac.new(secret_key.encode(), f"csrf:{session_token}".encode(), hashlib.sha256)
    return digest.hexdigest()
