"""Path segments that may hold any character: form ids, instance ids, file names.

A form id may be anything pyxform accepts, ``'=+/*-451%/%`` included, and
clients (pyodk, Central's front end) send it percent-encoded as one segment:
``.../forms/'%3D%2B%2F*-451%25%2F%25/draft``. The ASGI server decodes the
whole path before the app sees it, so Litestar would route on
``.../forms/'=+/*-451%/%/draft`` and the ``/`` inside the id would become a
separator (a 404 or 405 from an unrelated route).

So routing is done on the raw path with two escapes kept: ``%2F`` (a slash
inside a segment) and ``%25`` (a percent sign, so a kept ``%2F`` is never
confused with an id that spells ``%2F``). After routing, the same two escapes
are undone in every path parameter, and handlers see the id as sent. Both
halves live here so one reader sees the whole trick: ``HomewardApp`` rewrites
the path before Litestar routes it, and ``restore_path_params`` (app-level
middleware, which Litestar runs after routing) decodes the parameters.

``path_segment`` is the other direction: every URL Homeward writes encodes
ids and file names much as JavaScript's ``encodeURIComponent`` does.
"""

from __future__ import annotations

import re
from typing import Any, cast
from urllib.parse import quote, unquote

from litestar import Litestar
from litestar.types import (
    ASGIApp,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Receive,
    Scope,
    Send,
)

# Marks a scope whose path keeps %2F and %25, so the parameters need decoding.
_KEPT_ESCAPES = "homeward.kept_escapes"
_KEPT = re.compile(r"(%2[fF]|%25)")
# What encodeURIComponent leaves unescaped, plus ':' (legal in a path segment,
# and instance ids all start with uuid:).
_URI_COMPONENT_SAFE = "!~*'():"


def routing_path(raw_path: bytes) -> str | None:
    """The raw path decoded except for ``%2F`` and ``%25``; None if it is not ASCII."""
    try:
        text = raw_path.decode("ascii")
    except UnicodeDecodeError:
        return None
    # Splitting at an escape never cuts a UTF-8 sequence: %2F and %25 are ASCII.
    pieces = _KEPT.split(text)
    return "".join(
        unquote(piece) if index % 2 == 0 else piece.upper() for index, piece in enumerate(pieces)
    )


def restore_segment(value: str) -> str:
    """A routed segment as the client meant it: the kept ``%2F`` and ``%25`` decoded."""
    return _KEPT.sub(lambda match: "/" if match[0].upper() == "%2F" else "%", value)


def path_segment(text: str) -> str:
    """``text`` encoded to stand as one URL path segment (``/``, ``%``, ``?`` escaped)."""
    return quote(text, safe=_URI_COMPONENT_SAFE)


class HomewardApp(Litestar):
    """Litestar, routing on the raw path so an encoded ``/`` stays inside its segment."""

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] in ("http", "websocket"):
            raw_path = scope.get("raw_path")
            path = routing_path(raw_path) if raw_path else None
            # Only when the server decoded the same path we did (no root_path games):
            # otherwise route on what the server gave, as Litestar would.
            if path is not None and unquote(path) == scope["path"]:
                rewritten: dict[str, Any] = dict(scope, path=path)
                rewritten[_KEPT_ESCAPES] = True
                scope = cast(Scope, rewritten)
        await super().__call__(scope, receive, send)


def restore_path_params(app: ASGIApp) -> ASGIApp:
    """Middleware: path parameters as the client meant them (``%2F`` -> ``/``)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(_KEPT_ESCAPES):
            params = cast(dict[str, Any], scope.get("path_params") or {})
            # A new dict: Litestar caches the parsed one and shares it between requests.
            scope["path_params"] = {
                name: restore_segment(value) if isinstance(value, str) else value
                for name, value in params.items()
            }
        await app(scope, receive, send)

    return middleware
