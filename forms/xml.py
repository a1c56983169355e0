"""Parsing XML that arrives from strangers (uploaded XForms, submissions).

Every XML document Homeward reads comes from outside, so the one parser here
refuses the classic attacks instead of trusting lxml's defaults: no DTD is
loaded, no entity is expanded, nothing is fetched from the network, and any
document that declares a DOCTYPE at all is rejected (entity declarations are
how "billion laughs" and XXE payloads travel, and ODK never needs them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

__all__ = ["XmlError", "child_elements", "first_child", "local_name", "parse_xml"]


_DOCTYPE_MARKERS = tuple(
    "<!DOCTYPE".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)
_DOCTYPE_REASON = (
    "contains a DOCTYPE declaration: DOCTYPE not allowed "
    "(it can expand entities without bound or read local files)"
)


class XmlError(ValueError):
    """The bytes are not XML that Homeward is willing to read.

    `reason` completes a sentence about the document ("is not well-formed XML
    (line 3: ...)"), so callers can name what was being read: "The submission
    is not well-formed XML (...)".
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"The document {reason}")
        self.reason = reason


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )


# An ampersand that starts no character or entity reference ("&*()" in an id).
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[A-Za-z_:][A-Za-z0-9_.:-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")


def parse_xml(data: bytes, *, bare_ampersands: bool = False) -> etree._Element:
    """Parse untrusted XML bytes into an element tree, refusing DOCTYPEs.

    With ``bare_ampersands``, an ``&`` that starts no reference is read as a
    literal ``&`` rather than failing the document. ODK Central reads
    submissions that way (its parser is lenient there), pyodk's own test suite
    sends an instance ID containing ``&*()``, and some clients build
    submission XML by string formatting. Only ASCII-compatible encodings are
    repaired; nothing else about the rules changes (no DTD, no entity is
    expanded: ``&name;`` still needs to be one of XML's five).
    """
    try:
        return _parse_strict(data)
    except XmlError:
        if not bare_ampersands or not _BARE_AMPERSAND.search(data):
            raise
        try:
            return _parse_strict(_BARE_AMPERSAND.sub(b"&amp;", data))
        except XmlError:
            pass
        raise


def _parse_strict(data: bytes) -> etree._Element:
    if not data.strip():
        raise XmlError("is empty")
    # libxml2 reads the internal subset even when told not to expand entities
    # (and fails on "billion laughs" with an obscure amplification error), so
    # a DOCTYPE is refused before parsing. Rare false positive accepted: the
    # text "<!DOCTYPE" inside a CDATA section or comment.
    if any(marker in data for marker in _DOCTYPE_MARKERS):
        raise XmlError(_DOCTYPE_REASON)
    # lxml parsers keep state between documents and are not thread-safe, so
    # every call builds its own (cheap compared with parsing).
    try:
        root = etree.fromstring(data, parser=_safe_parser())
    except etree.XMLSyntaxError as err:
        raise XmlError(f"is not well-formed XML ({_describe(err)})") from err
    except (etree.LxmlError, ValueError) as err:
        raise XmlError(f"could not be read as XML ({err})") from err
    if root is None:
        raise XmlError("is empty")
    # lxml-stubs does not know DocInfo.doctype.
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlError(_DOCTYPE_REASON)
    return root


def _describe(err: etree.XMLSyntaxError) -> str:
    message = (err.msg or str(err)).strip()
    line = err.lineno
    return f"line {line}: {message}" if line else message


def local_name(element: etree._Element) -> str:
    """An element's name without its namespace."""
    return etree.QName(element).localname


def child_elements(element: etree._Element) -> Iterator[etree._Element]:
    """Child elements, skipping comments and processing instructions."""
    return (child for child in element if isinstance(child.tag, str))


def first_child(element: etree._Element | None, name: str) -> etree._Element | None:
    """The first child element with this local name, in any namespace."""
    if element is None:
        return None
    return next((c for c in child_elements(element) if local_name(c) == name), None)
