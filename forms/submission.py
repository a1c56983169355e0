"""Reading submission XML (what ODK Collect posts) into a JSON-able record.

The record is parsed once, at ingest, so exports never touch XML again: leaves
become strings, groups dicts, and repeats lists of dicts. A repeat that was
answered once looks like a group in the XML, so callers pass the form's repeat
paths to keep its shape stable across submissions.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from lxml import etree

from forms.entities import SubmittedEntity, read_submitted_entity
from forms.xml import XmlError, child_elements, first_child, local_name, parse_xml

__all__ = [
    "ParsedSubmission",
    "SubmissionError",
    "answers_at",
    "binary_values",
    "parse_submission",
    "with_repeats",
]

ENCRYPTED_NS = "http://www.opendatakit.org/xforms/encrypted"
MAX_DEPTH = 64
MAX_ELEMENTS = 1_000_000


class SubmissionError(ValueError):
    """The submission cannot be accepted; the message says why in plain words."""


class ParsedSubmission(msgspec.Struct, frozen=True):
    form_id: str
    version: str | None
    instance_id: str
    deprecated_id: str | None = None
    instance_name: str | None = None
    encrypted: bool = False
    # For encrypted submissions: the file names of the encrypted parts.
    encrypted_media: list[str] = msgspec.field(default_factory=list)
    encrypted_xml_file: str | None = None
    # Element name -> str (leaf) | dict (group) | list (repeat). Empty for
    # encrypted submissions beyond their manifest.
    record: dict[str, object] = msgspec.field(default_factory=dict)
    # The meta/entity block (ODK Entities), whose attributes the record leaves out.
    entity: SubmittedEntity | None = None


def parse_submission(xml: bytes, repeat_paths: frozenset[str] = frozenset()) -> ParsedSubmission:
    """Parse submission XML; `repeat_paths` ("/household/member") are always lists."""
    try:
        root = parse_xml(xml, bare_ampersands=True)
    except XmlError as err:
        raise SubmissionError(f"The submission {err.reason}") from err
    _check_size(root)
    form_id = root.get("id")
    if not form_id:
        raise SubmissionError(
            f"The submission's root element <{local_name(root)}> has no id attribute "
            "(the form id), so it cannot be matched to a form"
        )
    meta = first_child(root, "meta")
    instance_id = _child_text(meta, "instanceID")
    if not instance_id:
        raise SubmissionError("The submission has no meta/instanceID")
    encrypted = root.get("encrypted", "").strip().lower() == "yes" or (
        etree.QName(root).namespace == ENCRYPTED_NS
    )
    encrypted_media: list[str] = []
    if encrypted:
        media = first_child(root, "media")
        if media is not None:
            encrypted_media = [_text(f) for f in child_elements(media) if local_name(f) == "file"]
    return ParsedSubmission(
        form_id=form_id,
        version=root.get("version"),
        instance_id=instance_id,
        deprecated_id=_child_text(meta, "deprecatedID") or None,
        instance_name=_child_text(meta, "instanceName") or None,
        encrypted=encrypted,
        encrypted_media=[name for name in encrypted_media if name],
        encrypted_xml_file=(_child_text(root, "encryptedXmlFile") or None) if encrypted else None,
        record=_record(root, "", repeat_paths),
        entity=None if encrypted else read_submitted_entity(root),
    )


def with_repeats(parsed: ParsedSubmission, repeat_paths: frozenset[str]) -> ParsedSubmission:
    """The same submission with every repeat in `repeat_paths` as a list.

    For callers that parse before they know the form: equal to parsing again with
    `repeat_paths`, without touching the XML.
    """
    if not repeat_paths:
        return parsed
    return msgspec.structs.replace(parsed, record=_listify(parsed.record, "", repeat_paths))


def _listify(
    record: dict[str, object], path: str, repeat_paths: frozenset[str]
) -> dict[str, object]:
    result: dict[str, object] = {}
    for name, value in record.items():
        child_path = f"{path}/{name}"
        if isinstance(value, dict):
            value = _listify(value, child_path, repeat_paths)
        elif isinstance(value, list):
            value = [
                _listify(item, child_path, repeat_paths) if isinstance(item, dict) else item
                for item in value
            ]
        if child_path in repeat_paths and not isinstance(value, list):
            value = [value if isinstance(value, dict) else {}]
        result[name] = value
    return result


def binary_values(record: dict[str, object], binary_paths: Iterable[str]) -> list[str]:
    """File names a record's binary fields refer to (attachments to expect), in order."""
    names: list[str] = []
    for path in binary_paths:
        for value in _values_at(record, [step for step in path.split("/") if step]):
            if isinstance(value, str) and value.strip() and value.strip() not in names:
                names.append(value.strip())
    return names


def answers_at(record: dict[str, object], path: str) -> list[object]:
    """Every answer at `path` ("/household/member/name": one per repeat instance)."""
    return list(_values_at(record, [step for step in path.split("/") if step]))


def _values_at(node: object, steps: list[str]) -> Iterable[object]:
    if isinstance(node, list):
        for item in node:
            yield from _values_at(item, steps)
        return
    if not steps:
        yield node
        return
    if isinstance(node, dict) and steps[0] in node:
        yield from _values_at(node[steps[0]], steps[1:])


def _record(
    element: etree._Element, path: str, repeat_paths: frozenset[str], depth: int = 1
) -> dict[str, object]:
    if depth > MAX_DEPTH:
        raise SubmissionError(f"The submission nests elements more than {MAX_DEPTH} levels deep")
    record: dict[str, object] = {}
    children = list(child_elements(element))
    counts: dict[str, int] = {}
    for child in children:
        counts[local_name(child)] = counts.get(local_name(child), 0) + 1
    for child in children:
        name = local_name(child)
        child_path = f"{path}/{name}"
        is_repeat = child_path in repeat_paths
        value: object
        if next(child_elements(child), None) is not None:
            value = _record(child, child_path, repeat_paths, depth + 1)
        elif is_repeat:
            value = {}  # a repeat instance whose questions were all left unanswered
        else:
            value = child.text or ""
        if counts[name] > 1 or is_repeat:
            existing = record.setdefault(name, [])
            if isinstance(existing, list):
                existing.append(value)
        else:
            record[name] = value
    return record


def _check_size(root: etree._Element) -> None:
    if sum(1 for _ in root.iter()) > MAX_ELEMENTS:
        raise SubmissionError(
            f"The submission has more than {MAX_ELEMENTS} elements; it cannot be accepted"
        )


def _child_text(element: etree._Element | None, name: str) -> str:
    return _text(first_child(element, name))


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return (element.text or "").strip()
