"""Submissions' entity rows written once, at ingest, and spliced into pages.

Turning a stored record into a row (decode the JSON, convert some forty answers,
encode the row) was most of a 1,000-row page's time: about 20 ms. A row's fields
depend only on the record and on the shape of the form's table, so ingest
writes them once, as the JSON object a page would send, and stores with them a
key naming the shape they were written for. A page whose form still has that
shape, and that asks for every field as written by default (no ``$select``,
``$expand`` or ``$wkt``), sends the stored bytes with the row's ``__id`` and
``__system`` added; every other row is written from its record as before.

The key covers everything the bytes depend on: the table's names, record keys
and kinds, recursively, and ``RENDER_VERSION``, the way values are written.
Change how a value is converted and bump it: rows stored earlier then stop
matching and are written from their records again.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec

from forms.schema import FormSchema

from .fill import shape_of
from .model import ROOT_TABLE, Node, build_model
from .rows import RowOptions, RowWriter

__all__ = ["RENDER_VERSION", "render_fields", "shape_key", "splice_row"]

RENDER_VERSION = 1

_encode = msgspec.json.Encoder().encode


def shape_key(table: Node) -> str:
    """The key of a table's shape as rows of it are written by default."""
    return _key(shape_of(table))


@functools.lru_cache(maxsize=256)
def _key(shape: tuple[Any, ...]) -> str:
    text = _encode([RENDER_VERSION, shape])
    return hashlib.sha256(text).hexdigest()[:32]


class _Renderer:
    """What rendering rows of one schema needs, made once."""

    def __init__(self, schema: FormSchema) -> None:
        self.schema = schema
        model = build_model(schema)
        self.writer = RowWriter(model, model.tables[ROOT_TABLE], RowOptions())
        self.key = shape_key(model.tables[ROOT_TABLE])


# Ingest renders every submission with its version's schema, and building the
# model costs more than rendering the row. Schemas are shared objects (the server
# caches them by XForm hash), so renderers are kept by identity, each holding its
# schema so that the identity cannot be reused while the entry lives.
_RENDERERS: dict[int, _Renderer] = {}
_RENDERERS_KEPT = 128


def _renderer(schema: FormSchema) -> _Renderer:
    found = _RENDERERS.get(id(schema))
    if found is not None and found.schema is schema:
        return found
    if len(_RENDERERS) >= _RENDERERS_KEPT:
        _RENDERERS.pop(next(iter(_RENDERERS)))
    made = _RENDERERS[id(schema)] = _Renderer(schema)
    return made


def render_fields(
    schema: FormSchema, instance_id: str, record: Mapping[str, object]
) -> tuple[str, bytes]:
    """The shape key and the root row's fields (no ``__id``, no ``__system``) as JSON.

    ``instance_id`` is the submission's (its first version's): repeat links and
    row ids below hang from it.
    """
    renderer = _renderer(schema)
    return renderer.key, _encode(renderer.writer.fields(instance_id, record))


def splice_row(fields: bytes, instance_id: str, system: Mapping[str, Any]) -> msgspec.Raw:
    """A whole row: the stored fields, then ``__id`` and ``__system`` as a page writes them."""
    tail = b'"__id":' + _encode(instance_id) + b',"__system":' + _encode(system) + b"}"
    if fields == b"{}":
        return msgspec.Raw(b"{" + tail)
    return msgspec.Raw(fields[:-1] + b"," + tail)
