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


def _same_path(uri: str, path: str) -> bool:
    # The answer signs the URI the client asked for; one captured for another
    # path must not open this one. Clients differ on sending the query string.
    return unquote(urlsplit(uri).path) == unquote(path)


async def verify_digest(
    db: AsyncSession, method: str, header: str, *, realm: str, key: bytes, path: str
) -> Actor | None:
    params = {m.group(1).lower(): m.group(2) or m.group(3) for m in _PARAM.finditer(header)}
    username, nonce, uri = params.get("username"), params.get("nonce"), params.get("uri")
    response = params.get("response")
    if not (username and nonce and uri and response) or not _nonce_valid(nonce, key):
        return None
    if params.get("realm", realm) != realm or not _same_path(uri, path):
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
    if params.get("qop") == "auth":
        expected = _md5(
            f"{row[1]}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}"
        )
    else:
        expected = _md5(f"{row[1]}:{nonce}:{ha2}")
    return row[0] if hmac.compare_digest(expected, response) else None
