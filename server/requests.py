"""Per-request plumbing shared by the API and OpenRosa routes: runtime, caller, flags."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.auth import CSRF_HEADER, SESSION_COOKIE, Principal, constant_time_equal, csrf_token
from server.digest import verify_digest
from server.runtime import Runtime
from server.services import accounts, public_links
from server.sign_in import SignInThrottle

AnyRequest = Request[Any, Any, Any]
# A handler (or router) with this option takes a body from callers without
# credentials: sign-in itself, and the OpenRosa routes whose token is in the path.
ANONYMOUS_BODY = "anonymous_body"
_PRINCIPAL = "homeward_principal"


# JSON nested deeper than this is refused before it is decoded: the decoder
# recurses once per level, and Central's bodies are a few levels deep.
MAX_JSON_NESTING = 64
# No JSON body of Central's API comes near this; larger ones are refused unread.
MAX_JSON_BYTES = 1_000_000
# uvicorn caps the head at 16 kB (server.http_protocol); Collect sends about ten.
MAX_HEADERS = 100
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_nesting(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (strings ignored)."""
    depth = deepest = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_A_BRACKET):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class HomewardRequest(Request[Any, Any, Any]):
    """Litestar's request, refusing JSON too deeply nested to decode safely."""

    async def body(self) -> bytes:
        body = await super().body()
        if body[:64].lstrip()[:1] in (b"[", b"{") and json_nesting(body) > MAX_JSON_NESTING:
            raise problems.unparseable(
                "JSON", f"it nests arrays and objects more than {MAX_JSON_NESTING} deep."
            )
        return body


def runtime_of(request: AnyRequest) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def parse_flag(value: str | None, *, default: bool = False, name: str = "flag") -> bool:
    """Query booleans as Central (``true``) and pyodk (``True``) spell them."""
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise problems.unexpected_value(name, value, "use true or false.")


def is_https(request: AnyRequest) -> bool:
    """Whether the client's connection was encrypted.

    Behind a TLS proxy uvicorn sets the scheme from X-Forwarded-Proto, but only
    for proxies it trusts (127.0.0.1, or FORWARDED_ALLOW_IPS); the header itself
    is never believed here, since any client could send it.
    """
    return request.url.scheme == "https"


def sign_in_throttle(request: AnyRequest) -> SignInThrottle:
    throttle: SignInThrottle = request.app.state.sign_in
    return throttle


def client_address(request: AnyRequest) -> str:
    """The caller's address; behind a proxy, uvicorn takes it from X-Forwarded-For
    when (and only when) the proxy is trusted (FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client is not None else ""


def carries_credentials(request: AnyRequest) -> bool:
    """Whether `authenticate` has something to check. A new kind of credential (a
    web-app session cookie) must be added here too, or `check_before_body` refuses
    its requests' bodies as anonymous."""
    return (
        "authorization" in request.headers
        or bool(request.query_params.get("st"))
        or bool(request.cookies.get(SESSION_COOKIE))
    )


def from_web_app(request: AnyRequest) -> bool:
    """Whether the caller is the web app in a browser: its session cookie and no
    Authorization header (a bearer token wins over a cookie, as in `_authenticate`)."""
    return "authorization" not in request.headers and bool(request.cookies.get(SESSION_COOKIE))


async def authenticate(request: AnyRequest, db: AsyncSession) -> Principal | None:
    """The caller named by the request's credentials; ``None`` when it sent none.

    Bad credentials are a problem (401), not an anonymous caller. Checked once per
    request: `check_before_body` usually did it already, outside any transaction.
    """
    known = request.state.get(_PRINCIPAL)
    if isinstance(known, Principal):
        return known
    principal = await _authenticate(request, db)
    if principal is not None:
        request.state[_PRINCIPAL] = principal
    return principal


async def _authenticate(request: AnyRequest, db: AsyncSession) -> Principal | None:
    header = request.headers.get("authorization")
    if header is None:
        # Central's public links (and Enketo) carry their token as ?st=.
        link_token = request.query_params.get("st")
        if link_token:
            principal = await public_links.principal_for_link_token(db, link_token)
            if principal is None:
                raise problems.authentication_failed()
            return principal
        return await _cookie_principal(request, db)
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    rt = runtime_of(request)
    if scheme == "bearer":
        token = value.strip()
        principal = await accounts.principal_for_session_token(db, token)
        if principal is None:
            # In Central an app user's or a public link's token is a session token too.
            app_user = await accounts.principal_for_app_user_token(db, token)
            principal = (
                app_user[0]
                if app_user is not None
                else await public_links.principal_for_link_token(db, token)
            )
        if principal is None:
            raise problems.authentication_failed()
        return principal
    if scheme == "basic":
        if not is_https(request):
            raise problems.https_only()
        try:
            email, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise problems.authentication_failed() from error
        actor = await accounts.authenticate_password(
            db,
            email,
            password,
            throttle=sign_in_throttle(request),
            address=client_address(request),
        )
        if actor is None:
            raise problems.authentication_failed()
        return await accounts.load_principal(db, actor)
    if scheme == "digest" and rt.settings.digest_auth:
        actor = await verify_digest(
            db,
            request.method,
            value,
            realm=accounts.DIGEST_REALM,
            key=rt.settings.secret_key.encode(),
            path=request.url.path,
            query=request.url.query,
        )
        if actor is None:
            raise problems.authentication_failed()
        return await accounts.load_principal(db, actor)
    raise problems.authentication_failed()


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _cookie_principal(request: AnyRequest, db: AsyncSession) -> Principal | None:
    """The web app's caller: its session cookie, plus the CSRF header on every write.

    An expired or unknown cookie is no caller at all (the app shows its sign-in
    page); a write without the right header is refused even with a good cookie.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal = await accounts.principal_for_session_token(db, token)
    if principal is None:
        return None
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER.lower(), "")
        expected = csrf_token(runtime_of(request).settings.secret_key, token)
        if not constant_time_equal(sent, expected):
            raise problems.csrf_failed()
    return principal


async def require_principal(request: AnyRequest, db: AsyncSession) -> Principal:
    principal = await authenticate(request, db)
    if principal is None:
        raise problems.authentication_required()
    return principal


def _has_body(request: AnyRequest) -> bool:
    if request.method not in {"POST", "PUT", "PATCH"}:
        return False
    return "transfer-encoding" in request.headers or request.headers.get(
        "content-length", "0"
    ).strip() not in {"", "0"}


async def check_before_body(request: AnyRequest) -> None:
    """Runs before any handler reads its body (Litestar's before_request).

    Credentials are checked first, outside any transaction (a password's argon2
    work must not hold SQLite's writer), and a body from nobody is refused unread:
    an anonymous 20 MB upload costs a 401, not a parse.
    """
    refuse_nul_bytes(request)
    if len(list(request.scope["headers"])) > MAX_HEADERS:
        raise problems.too_many_headers(MAX_HEADERS)
    if "json" in request.headers.get("content-type", "") and (
        (request.content_length or 0) > MAX_JSON_BYTES
    ):
        raise problems.too_large(MAX_JSON_BYTES)
    principal = None
    if carries_credentials(request):
        async with runtime_of(request).read() as db:
            principal = await authenticate(request, db)
    # A stale cookie names nobody: its body is as anonymous as one sent with none.
    if (
        principal is None
        and _has_body(request)
        and not request.route_handler.opt.get(ANONYMOUS_BODY)
    ):
        raise problems.authentication_required()


def refuse_nul_bytes(request: AnyRequest) -> None:
    """A NUL character in the path can name nothing (PostgreSQL text cannot even hold
    one, so the look-up would fail inside the database): answer before any handler.

    Query values are left alone: Collect's deviceID is cleaned, not refused, and a
    NUL that reaches PostgreSQL elsewhere becomes a 400 in server/errors.py.
    """
    if "\x00" in request.url.path:
        raise problems.not_found()
