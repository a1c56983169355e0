"""The built web app at ``/``: files from ``server/web/dist``, and ``index.html`` for
every other browser path so the app's own router (history mode) can show it.

The fallback never answers for ``/v1`` (the API and OpenRosa), ``/schema`` or
``/healthz``: an unknown API path stays Central's JSON 404, not a web page. The one
exception is a person typing the API's root, ``/v1``, into a browser: that is sent
to the app's front page instead of a line of JSON.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath
from litestar.response import Redirect

from server import problems
from server.security_headers import FILL_PAGE_POLICY

DIST = Path(__file__).resolve().parent / "dist"
_NOT_THE_APP = ("v1", "schema", "healthz")
# Vite names every file under assets/ by its content hash: it may be cached for good.
_FOREVER = "public, max-age=31536000, immutable"
_NOT_BUILT = "The web app has not been built. Run `make web` (or `make install`) and restart.\n"


def _file_response(path: Path, cache: str, csp: str | None = None) -> Response[bytes]:
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if csp is not None:
        headers["Content-Security-Policy"] = csp
    return Response(path.read_bytes(), media_type=media_type, headers=headers)


def is_fill_page(relative: str) -> bool:
    """The app's pages that hold ODK Web Forms: ``projects/{id}/forms/{xmlFormId}/fill``
    and ``.../draft/fill`` (the app opens them with a full page load)."""
    parts = relative.strip("/").split("/")
    return (
        len(parts) in (5, 6)
        and parts[0] == "projects"
        and parts[2] == "forms"
        and parts[-1] == "fill"
        and (len(parts) == 5 or parts[4] == "draft")
    )


def _is_page_visit(request: Request[Any, Any, Any]) -> bool:
    """A browser loading a page (not a script or a client asking for JSON)."""
    if request.headers.get("sec-fetch-mode") == "navigate":
        return True
    return "text/html" in request.headers.get("accept", "")


def _index(dist: Path, relative: str = "") -> Response[bytes]:
    index = dist / "index.html"
    if not index.is_file():
        return Response(_NOT_BUILT.encode(), status_code=503, media_type="text/plain")
    # Every other page keeps the strict policy that security_headers adds.
    return _file_response(index, "no-cache", FILL_PAGE_POLICY if is_fill_page(relative) else None)


def web_router(dist: Path | None = None) -> Router:
    root = (dist or DIST).resolve()

    @get("/", include_in_schema=False, name="web-index")
    async def index() -> Response[bytes]:
        return _index(root)

    # Litestar's router matches ``/v1`` as the head of the API's own routes, so the
    # catch-all below never sees it: it needs a route of its own.
    @get("/v1", include_in_schema=False, name="web-api-root")
    async def api_root(request: Request[Any, Any, Any]) -> Redirect:
        if _is_page_visit(request):
            return Redirect("/", status_code=303)
        raise problems.not_found()

    @get("/{path:path}", include_in_schema=False, name="web-path")
    async def any_path(path: FromPath[str]) -> Response[bytes]:
        relative = path.lstrip("/")
        if relative.split("/", 1)[0] in _NOT_THE_APP:
            raise problems.not_found()
        candidate = (root / relative).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            cache = _FOREVER if relative.startswith("assets/") else "no-cache"
            return _file_response(candidate, cache)
        if relative.startswith("assets/") or "." in relative.rsplit("/", 1)[-1]:
            raise problems.not_found()  # a missing file, not a page of the app
        return _index(root, relative)

    return Router("/", route_handlers=[index, api_root, any_path])
