"""Personal answers: which paths of a form are personal, and their stand-ins.

A researcher marks questions, groups or repeats personal in the XLSForm (the
`personal` column, carried as `homeward:personal="yes"`). Everything below a
marked group or repeat is personal too, and so is `meta/instanceName` when its
formula uses a personal answer, directly or through other calculations (see
forms.xform; for forms stored before that was recorded, whenever the form has
anything personal).

The functions here are the pure half of the policy in server.services.personal:
they take the paths and a key and rewrite a record, submission XML or entity
properties for a caller who may not read the values. A pseudonym is keyed with
the project's secret, so the same value gets the same stand-in everywhere
(exports, OData, XML, diffs) and analysts can still count and join; answers
whose type a stand-in would not fit (numbers, dates, locations) are withheld.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Collection, Iterable, Mapping

import msgspec
from lxml import etree

from forms.schema import FormSchema
from forms.submission import answers_at, binary_values
from forms.xml import child_elements, local_name, parse_xml

__all__ = [
    "INSTANCE_NAME",
    "PersonalFields",
    "answers_at",
    "mask_properties",
    "mask_record",
    "mask_xml",
    "personal_fields",
    "personal_file_names",
    "pseudonym",
]

INSTANCE_NAME = "/meta/instanceName"
# Kinds whose answers are text anyway, so a pseudonym stands in for them; a
# pseudonym would not be a valid number, date or location, so those are withheld.
_TEXT_KINDS = frozenset({"string", "select1", "select", "barcode", "binary", "rank", "structure"})


def pseudonym(key: bytes, value: str) -> str:
    """A stable stand-in for a personal value: 16 hex digits of HMAC-SHA256 under `key`."""
    keyed = _keyed(key).copy()
    keyed.update(value.encode("utf-8"))
    return keyed.hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def _keyed(key: bytes) -> hmac.HMAC:
    # Copying a keyed HMAC skips hashing the key again: a third of the cost per value,
    # which counts on a viewer's OData page (thousands of values).
    return hmac.new(key, digestmod=hashlib.sha256)


class PersonalFields(msgspec.Struct, frozen=True):
    """The personal paths of a form, over all its versions."""

    # Paths marked personal; a group or repeat covers everything below it.
    marked: frozenset[str] = frozenset()
    # Personal binary questions (their files are personal).
    binary: frozenset[str] = frozenset()
    # Personal paths whose answers are withheld rather than pseudonymised.
    withheld: frozenset[str] = frozenset()

    @property
    def any(self) -> bool:
        return bool(self.marked)

    def covers(self, path: str) -> bool:
        """Whether the answer at `path` ("/household/name") is personal."""
        while path:
            if path in self.marked:
                return True
            path = path.rpartition("/")[0]
        return False


def personal_fields(schemas: Iterable[FormSchema]) -> PersonalFields:
    """What is personal in a form whose versions have `schemas`: marked in any of them.

    A question marked personal in one version stays personal in the answers
    every other version collected, so the marks of all versions are joined.
    """
    schemas = list(schemas)
    marked = {f.path for schema in schemas for f in schema.fields if f.personal}
    if not marked:
        return PersonalFields()
    if any(schema.instance_name_personal is not False for schema in schemas):
        marked.add(INSTANCE_NAME)
    found = PersonalFields(frozenset(marked))
    kinds = {f.path: f.kind for schema in schemas for f in schema.fields}
    binary = {path for schema in schemas for path in schema.binary_paths if found.covers(path)}
    withheld = {
        path
        for path, kind in kinds.items()
        if kind not in _TEXT_KINDS and kind != "repeat" and found.covers(path)
    }
    return PersonalFields(frozenset(marked), frozenset(binary), frozenset(withheld))


def mask_record(
    record: Mapping[str, object], fields: PersonalFields, key: bytes, path: str = ""
) -> dict[str, object]:
    """`record` with personal answers pseudonymised or, where a stand-in would not fit, left out."""
    masked: dict[str, object] = {}
    for name, value in record.items():
        here = f"{path}/{name}"
        if isinstance(value, dict):
            masked[name] = mask_record(value, fields, key, here)
        elif isinstance(value, list):
            masked[name] = [
                mask_record(item, fields, key, here) if isinstance(item, dict) else item
                for item in value
            ]
        elif not fields.covers(here):
            masked[name] = value
        elif here in fields.withheld:
            continue
        else:
            masked[name] = _stand_in(value, key)
    return masked


def _stand_in(value: object, key: bytes) -> object:
    if isinstance(value, str) and value != "":
        return pseudonym(key, value)
    return value


def mask_xml(xml: bytes, fields: PersonalFields, key: bytes) -> bytes:
    """Submission XML with personal elements pseudonymised, or emptied where withheld."""
    root = parse_xml(xml)
    _mask_element(root, "", fields, key)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def _mask_element(element: etree._Element, path: str, fields: PersonalFields, key: bytes) -> None:
    children = list(child_elements(element))
    if not children:
        if path and fields.covers(path) and element.text:
            element.text = "" if path in fields.withheld else pseudonym(key, element.text)
        return
    for child in children:
        _mask_element(child, f"{path}/{local_name(child)}", fields, key)


def personal_file_names(record: dict[str, object], fields: PersonalFields) -> frozenset[str]:
    """Attachments of a version that answer personal questions (its photos of people ...)."""
    if not fields.binary:
        return frozenset()
    return frozenset(binary_values(record, sorted(fields.binary)))


def mask_properties(
    properties: Mapping[str, str], personal: Collection[str], key: bytes
) -> dict[str, str]:
    """Entity properties with those saved from personal fields pseudonymised.

    `personal` names the properties whose values came from personal questions
    (a form's `save_to` on a personal field); entity lists and entity feeds call
    this for callers who may not read personal values.
    """
    return {
        name: pseudonym(key, value) if name in personal and value else value
        for name, value in properties.items()
    }
