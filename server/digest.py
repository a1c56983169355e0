"""HTTP Digest (RFC 7616, MD5, qop=auth) for Collect's e-mail + password sign-in.

Collect answers a Digest challenge over plain HTTP, where it refuses Basic. Digest
needs ``MD5(email:realm:password)`` on the server, so deployments enable it
explicitly (``HOMEWARD_DIGEST_AUTH=true``) and only users who set their password
after that can sign in this way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Actor, User

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')
NONCE_SECONDS = 600


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def new_nonce(key: bytes) -> str:
    # Nonces are signed with the deployment secret so any app process can check them.
    stamp = str(int(time.time()))
    mac = hmac.new(key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{stamp}.{mac}"


def _nonce_valid(nonce: str, key: bytes) -> bool:
    stamp, _, mac = nonce.partition(".")
    if not stamp.isdigit():
        return False
    expected = hmac.new(key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
    return hmac.compare_digest(mac, expected) and time.time() - int(stamp) < NONCE_SECONDS


def challenge(realm: str, key: bytes) -> str:
    return f'Digest realm="{realm}", qop="auth", algorithm=MD5, nonce="{new_nonce(key)}"'


def _same_target(uri: str, path: str, query: str) -> bool:
    # The answer signs the URI the client asked for; one captured for another
    # path must not open this one. Clients differ on sending the query string:
    # when it is signed, it must be this request's.
    signed = urlsplit(uri)
    if unquote(signed.path) != unquote(path):
        return False
    return not signed.query or unquote(signed.query) == unquote(query)


class NonceCounts:
    """The nonce counts (nc) already used with each nonce, so that a captured
    Authorization header opens one request only.

    In this process only: with several app processes a captured header could be
    replayed once on each of the others while its nonce lives (NONCE_SECONDS).
    Keeping them in the database would put a write on the SQLite writer queue in
    front of every Collect request; see docs/security.md.
    """

    def __init__(self, *, max_nonces: int = 100_000) -> None:
        self._used: dict[str, set[str]] = {}
        self._max = max_nonces

    def first_use(self, nonce: str, nc: str) -> bool:
        used = self._used.get(nonce)
        if used is None:
            if len(self._used) >= self._max:
                self._sweep()
            used = self._used[nonce] = set()
        if nc in used:
            return False
        used.add(nc)
        return True

    def _sweep(self) -> None:
        now = time.time()
        self._used = {
            n: s for n, s in self._used.items() if now - int(n.partition(".")[0]) < NONCE_SECONDS
        }
        while len(self._used) >= self._max:
            self._used.pop(next(iter(self._used)))


_counts = NonceCounts()


async def verify_digest(
    db: AsyncSession,
    method: str,
    header: str,
    *,
    realm: str,
    key: bytes,
    path: str,
    query: str = "",
    counts: NonceCounts = _counts,
) -> Actor | None:
    params = {m.group(1).lower(): m.group(2) or m.group(3) for m in _PARAM.finditer(header)}
    username, nonce, uri = params.get("username"), params.get("nonce"), params.get("uri")
    response, nc = params.get("response"), params.get("nc")
    if not (username and nonce and uri and response and nc) or not _nonce_valid(nonce, key):
        return None
    # Without qop=auth there is no nonce count, and nothing to stop a replay.
    if params.get("qop") != "auth" or params.get("realm", realm) != realm:
        return None
    if not _same_target(uri, path, query):
        return None
    row = (
        await db.execute(
            select(Actor, User.digest_ha1)
            .join(User, User.actor_id == Actor.id)
            .where(User.email == username.lower(), Actor.deleted_at.is_(None))
        )
    ).first()
    if row is None or row[1] is None:
        return None
    ha2 = _md5(f"{method}:{uri}")
    expected = _md5(f"{row[1]}:{nonce}:{nc}:{params.get('cnonce', '')}:auth:{ha2}")
    if not hmac.compare_digest(expected, response):
        return None
    # Counted only once the response is right: a forged header cannot burn a count.
    return row[0] if counts.first_use(nonce, nc) else None
