"""Domain problems and framework errors to HTTP, in one place.

OpenRosa clients (they send ``X-OpenRosa-Version``) get the XML envelope Collect
shows to the field worker; everyone else gets Central's JSON problem shape.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from sqlalchemy.exc import DBAPIError

from server.digest import challenge
from server.openrosa.render import render_response
from server.problems import Problem, missing_parameter, unknown_error

log = logging.getLogger("homeward")

_STATUS_CODES = {400: 400.1, 401: 401.2, 403: 403.1, 404: 404.1, 405: 405.1, 413: 413.1}


def openrosa_headers() -> dict[str, str]:
    return {
        "X-OpenRosa-Version": "1.0",
        "X-OpenRosa-Accept-Content-Length": "100000000",
    }


def _wants_openrosa(request: Request[Any, Any, Any]) -> bool:
    return "x-openrosa-version" in request.headers or "/key/" in request.url.path


def _from_a_web_page(request: Request[Any, Any, Any]) -> bool:
    """A script's request from a web page (the web app's fetch): a Basic challenge
    there would pop the browser's own password box over the app's sign-in page."""
    mode = request.headers.get("sec-fetch-mode", "")
    return mode in {"cors", "same-origin"} or "x-requested-with" in request.headers


def problem_response(request: Request[Any, Any, Any], problem: Problem) -> Response[bytes]:
    headers: dict[str, str] = {}
    if problem.status == 429 and problem.details and "retryAfter" in problem.details:
        headers["Retry-After"] = str(problem.details["retryAfter"])
    if problem.status == 401 and not _from_a_web_page(request):
        rt = request.app.state.runtime
        if rt.settings.digest_auth:
            headers["WWW-Authenticate"] = challenge("Homeward", rt.settings.secret_key.encode())
        elif _wants_openrosa(request) or request.url.scheme == "https":
            headers["WWW-Authenticate"] = 'Basic realm="Homeward", charset="UTF-8"'
    if problem.status == 429 and problem.details and "retryAfter" in problem.details:
        headers["Retry-After"] = str(problem.details["retryAfter"])
    if _wants_openrosa(request):
        headers.update(openrosa_headers())
        return Response(
            render_response(problem.message),
            status_code=problem.status,
            media_type="text/xml",
            headers=headers,
        )
    body: dict[str, Any] = {"code": problem.code, "message": problem.message}
    if problem.details:
        body["details"] = problem.details
    return Response(
        msgspec.json.encode(body),
        status_code=problem.status,
        media_type="application/json",
        headers=headers,
    )


def handle_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


def handle_http_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, NotFoundException):
        problem = Problem(404.1, "Nothing was found at this address.")
    elif isinstance(exc, ValidationException):
        problem = _missing_body_field(exc) or Problem(
            400.1, f"The request is not valid: {exc.detail}"
        )
        problem.details = problem.details or ({"errors": exc.extra} if exc.extra else None)
    else:
        problem = Problem(_STATUS_CODES.get(status, float(status)), str(exc.detail))
    response = problem_response(request, problem)
    response.headers.update(exc.headers or {})
    return response


_MISSING_FIELD = re.compile(r"^Object missing required field `([^`]+)`")


def _missing_body_field(exc: ValidationException) -> Problem | None:
    """A JSON body without a required field is Central's 400.2, naming the field."""
    for error in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(error, dict) or error.get("source") != "body":
            continue
        found = _MISSING_FIELD.match(str(error.get("message", "")))
        if found:
            return missing_parameter(found.group(1))
    return None


def _id_out_of_range(exc: Exception) -> bool:
    """A numeric id in the URL too large for the database's integers: SQLite's driver
    raises OverflowError, asyncpg a DataError. No row can have such an id."""
    if isinstance(exc, OverflowError):
        return True
    return isinstance(exc, DBAPIError) and "out of int64 range" in str(exc.orig)


def _nul_in_text(exc: Exception) -> bool:
    """PostgreSQL text cannot hold NUL characters; a body that carries one fails there."""
    return isinstance(exc, DBAPIError) and "0x00" in str(exc.orig)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if _id_out_of_range(exc):
        return problem_response(request, Problem(404.1, "Nothing was found at this address."))
    if _nul_in_text(exc):
        return problem_response(
            request, Problem(400.8, "The request contains NUL characters, which are not accepted.")
        )
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, unknown_error())
