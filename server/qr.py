"""Collect's QR provisioning code: settings JSON, zlib-compressed, base64, as a QR image.

A wrong value type makes Collect reject the whole code, so every value here is a
string except where Collect's settings schema wants a boolean.
"""

from __future__ import annotations

import base64
import io
import zlib

import msgspec
import segno


def collect_settings(
    server_url: str, project_name: str, *, username: str | None = None
) -> dict[str, object]:
    general: dict[str, object] = {
        "server_url": server_url,
        "form_update_mode": "match_exactly",
        "autosend": "wifi_and_cellular",
    }
    if username:
        general["username"] = username
    return {
        "general": general,
        "admin": {},
        "project": {
            "name": project_name,
            "icon": project_name[:1].upper() or "H",
            "color": "#1f6f5c",
        },
    }


def settings_payload(settings: dict[str, object]) -> str:
    """What the QR code carries: zlib (with header), then standard base64, no line breaks."""
    return base64.b64encode(zlib.compress(msgspec.json.encode(settings))).decode("ascii")


def decode_payload(payload: str) -> dict[str, object]:
    decoded: dict[str, object] = msgspec.json.decode(zlib.decompress(base64.b64decode(payload)))
    return decoded


def qr_png(payload: str, *, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(payload, error="l").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def qr_terminal(payload: str) -> str:
    buffer = io.StringIO()
    segno.make(payload, error="l").terminal(out=buffer, compact=True)
    return buffer.getvalue()
