"""OpenRosa XML documents, built with lxml (never from text templates)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"


@dataclass(frozen=True, slots=True)
class FormListEntry:
    form_id: str
    name: str
    version: str
    md5: str
    download_url: str
    manifest_url: str | None


@dataclass(frozen=True, slots=True)
class MediaEntry:
    filename: str
    md5: str
    download_url: str
    # Entity lists: type="entityList" and the URL Collect asks which entities were deleted.
    entity_list: bool = False
    integrity_url: str | None = None


def _default_ns(uri: str) -> Any:
    # lxml accepts None as the key of the default namespace; its stubs do not.
    return {None: uri}


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def render_form_list(entries: Iterable[FormListEntry]) -> bytes:
    root = etree.Element(f"{{{XFORMS_LIST_NS}}}xforms", nsmap=_default_ns(XFORMS_LIST_NS))
    for entry in entries:
        xform = etree.SubElement(root, f"{{{XFORMS_LIST_NS}}}xform")
        for tag, value in (
            ("formID", entry.form_id),
            ("name", entry.name),
            ("version", entry.version),
            ("hash", f"md5:{entry.md5}"),
            ("downloadUrl", entry.download_url),
            ("manifestUrl", entry.manifest_url),
        ):
            if value is not None:
                etree.SubElement(xform, f"{{{XFORMS_LIST_NS}}}{tag}").text = value
    return _serialise(root)


def render_manifest(media: Iterable[MediaEntry]) -> bytes:
    root = etree.Element(f"{{{MANIFEST_NS}}}manifest", nsmap=_default_ns(MANIFEST_NS))
    for item in media:
        media_file = etree.SubElement(root, f"{{{MANIFEST_NS}}}mediaFile")
        if item.entity_list:
            media_file.set("type", "entityList")
        etree.SubElement(media_file, f"{{{MANIFEST_NS}}}filename").text = item.filename
        etree.SubElement(media_file, f"{{{MANIFEST_NS}}}hash").text = f"md5:{item.md5}"
        etree.SubElement(media_file, f"{{{MANIFEST_NS}}}downloadUrl").text = item.download_url
        if item.integrity_url is not None:
            url = etree.SubElement(media_file, f"{{{MANIFEST_NS}}}integrityUrl")
            url.text = item.integrity_url
    return _serialise(root)


# Characters XML 1.0 cannot carry at all (lxml raises ValueError on them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` with the characters XML cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def render_response(message: str) -> bytes:
    """The envelope Collect reads: it shows the first ``<message>`` to the user.

    Messages may quote what the client sent (a URL path, a file name), so
    characters XML cannot hold are replaced rather than failing the error page.
    """
    root = etree.Element(f"{{{RESPONSE_NS}}}OpenRosaResponse", nsmap=_default_ns(RESPONSE_NS))
    element = etree.SubElement(root, f"{{{RESPONSE_NS}}}message", nature="")
    element.text = xml_safe(message)
    return _serialise(root)


def render_integrity(entities: Iterable[tuple[str, bool]]) -> bytes:
    """Which of the entities a phone holds were deleted (Collect's integrity check)."""
    root = etree.Element("data")
    listed = etree.SubElement(root, "entities")
    for uuid, deleted in entities:
        entity = etree.SubElement(listed, "entity", id=uuid)
        etree.SubElement(entity, "deleted").text = "true" if deleted else "false"
    return _serialise(root)
