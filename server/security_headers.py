"""Headers every response carries, set in one place (Litestar's before_send hook,
which also sees 404s and error responses that no handler produced).

A handler that sets one of them itself keeps its own: blob downloads send a
sandboxing CSP, the OpenRosa form routes send ``Cache-Control: no-cache`` so
that Collect's HTTP cache can revalidate with ``If-None-Match``.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# The web app is served from this origin and runs no inline script or style.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Only the web app's fill pages (full page loads of .../fill and .../draft/fill) hold
# ODK Web Forms, which compiles WebAssembly ('wasm-unsafe-eval': without it the form
# does not appear; plain eval stays refused) and injects its component styles as
# <style> elements (style-src 'unsafe-inline'). Scripts stay 'self' only, so an
# injected inline script still cannot run there either.
FILL_PAGE_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'"
).replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# For stored files (attachments, media): nothing in them may run, even if a
# browser were to render one.
SANDBOX_POLICY = "default-src 'none'; sandbox"
HSTS = "max-age=31536000; includeSubDomains"

_ALWAYS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    # App-user and draft tokens travel in paths: never tell another site the URL.
    ("referrer-policy", "no-referrer"),
    # Submission data must not linger in browser or proxy caches.
    ("cache-control", "no-store"),
)


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in _ALWAYS:
        if name not in headers:
            headers[name] = value
    # The scheme is https only when the connection was, or when a proxy uvicorn
    # trusts (FORWARDED_ALLOW_IPS) said so in X-Forwarded-Proto.
    if scope.get("scheme") == "https" and "strict-transport-security" not in headers:
        headers["strict-transport-security"] = HSTS
