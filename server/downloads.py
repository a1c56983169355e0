"""What a stored file may be served as.

Attachments come from phones and uploads: their declared type is whatever the
sender said. A type a browser would render as a page (HTML, XHTML, SVG, XML,
script) is served as plain bytes, always as a download, never inline. A photo
asked for by the web app is shown inline, so its thumbnail opens it full size.
"""

from __future__ import annotations

OCTET_STREAM = "application/octet-stream"
# Types a browser renders as documents that can run script or load content.
_ACTIVE = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/x-shockwave-flash",
        "text/xsl",
        "application/xslt+xml",
        "application/rdf+xml",
        "multipart/x-mixed-replace",
    }
)


def safe_media_type(declared: str | None) -> str:
    """The declared type if a browser would only display it; octet-stream otherwise."""
    if not declared:
        return OCTET_STREAM
    essence = declared.split(";")[0].strip().lower()
    if (
        "/" not in essence
        or essence in _ACTIVE
        or essence.endswith("+xml")
        or any(c in essence for c in "\r\n\0")
    ):
        return OCTET_STREAM
    return declared.strip()  # with its parameters (charset=...)


# Still pictures a browser only displays: the web app opens these in a tab of their own.
_PICTURES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})


def shown_inline(media_type: str) -> bool:
    """Whether a file of this (already made safe) type may be shown rather than saved."""
    return media_type.split(";")[0].strip().lower() in _PICTURES
