"""Cookie sessions for the web app, on the same sessions table as bearer tokens.

Sign-in sets an HttpOnly, SameSite=Strict cookie (Secure when the connection is
HTTPS; plain HTTP is allowed so a trial on loopback needs no TLS) and answers with
the CSRF token the app must send in ``X-CSRF-Token`` on every write; the app keeps
it in memory and asks ``GET /v1/web/session`` for it again after a reload.
"""

from __future__ import annotations

from datetime import datetime

from litestar import Response, Router, delete, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody

from server import problems
from server.api.shapes import ApiModel, SessionIn, iso
from server.auth import SESSION_COOKIE, csrf_token
from server.requests import (
    ANONYMOUS_BODY,
    AnyRequest,
    client_address,
    is_https,
    require_principal,
    runtime_of,
    sign_in_throttle,
)
from server.services import accounts
from server.services.audit import now


class WebSessionOut(ApiModel):
    csrf: str
    # Where phones reach this server (HOMEWARD_PUBLIC_URL, else the address the
    # browser used): the web app shows it beside an app user's QR code.
    server_url: str
    # HOMEWARD_MAP_TILE_URL, or "" when the deployment sets no tile server.
    map_tile_url: str = ""
    expires_at: str | None = None


def _server_url(request: AnyRequest) -> str:
    public = runtime_of(request).settings.public_url.rstrip("/")
    return public or str(request.base_url).rstrip("/")


def _cookie(request: AnyRequest, value: str, expires_at: datetime | None) -> Cookie:
    """The session cookie; with no ``expires_at``, one that tells the browser to drop it."""
    seconds = 0 if expires_at is None else max(0, int((expires_at - now()).total_seconds()))
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        max_age=seconds,
    )


@post(
    "/web/session",
    operation_id="createWebSession",
    status_code=200,
    opt={ANONYMOUS_BODY: True},  # signing in is what a caller without credentials does
)
async def sign_in(request: AnyRequest, data: JSONBody[SessionIn]) -> Response[WebSessionOut]:
    rt = runtime_of(request)
    token, session = await accounts.sign_in_with_password(
        rt,
        data.email,
        data.password,
        throttle=sign_in_throttle(request),
        address=client_address(request),
    )
    body = WebSessionOut(
        csrf=csrf_token(rt.settings.secret_key, token),
        server_url=_server_url(request),
        map_tile_url=rt.settings.map_tile_url,
        expires_at=iso(session.expires_at),
    )
    return Response(body, cookies=[_cookie(request, token, session.expires_at)])


@get("/web/session", operation_id="getWebSession")
async def current(request: AnyRequest) -> WebSessionOut:
    """The CSRF token of the cookie's session; 401 when there is none."""
    token = request.cookies.get(SESSION_COOKIE)
    rt = runtime_of(request)
    async with rt.transaction() as db:
        if not token or await accounts.principal_for_session_token(db, token) is None:
            raise problems.authentication_required()
    return WebSessionOut(
        csrf=csrf_token(rt.settings.secret_key, token),
        server_url=_server_url(request),
        map_tile_url=rt.settings.map_tile_url,
    )


@delete("/web/session", operation_id="deleteWebSession", status_code=200)
async def sign_out(request: AnyRequest) -> Response[dict[str, bool]]:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise problems.authentication_required()  # this resource is the cookie's session
    async with runtime_of(request).transaction() as db:
        principal = await require_principal(request, db)  # checks the CSRF header
        await accounts.end_session(db, token, principal)
    return Response({"success": True}, cookies=[_cookie(request, "", None)])


router = Router("/v1", route_handlers=[sign_in, current, sign_out], tags=["web"])
