"""Entity rows of a form's OData tables, from stored records (never from XML).

A record is what ``forms.submission`` stored at ingest: element name -> text,
dict (group) or list of dicts (repeat). Rows follow Central's rules: every
field of the table is present (``null`` when unanswered), numbers and
geometries are typed, a repeat row's ``__id`` is the sha1 of its place in the
submission (stable across exports), and every repeat that has instances is
linked with ``<name>@odata.navigationLink``.

``RowWriter`` compiles the table's fields once per request; writing a row is
then a walk over prebuilt tuples.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from forms.schema import REPEAT, STRUCTURE

from .errors import ODataError
from .model import ROOT_TABLE, SYSTEM_PROPERTIES, Node, ODataModel

__all__ = ["RowOptions", "RowWriter", "Selection", "parse_select"]

Row = dict[str, Any]
Convert = Callable[[str], Any]

_INT = re.compile(r"\s*[+-]?\d+")
_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")
_POINT_SPLIT = re.compile(r"; ?")
_OFFSET_HOURS = re.compile(r"[+-]\d\d$")


def _js_number(value: float) -> float | int:
    """Numbers as JavaScript prints them: 512.0 is 512."""
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _js_text(value: float | int) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _int(text: str) -> int | None:
    """JavaScript's parseInt: the leading digits, if any."""
    if text.isdigit():
        return int(text)
    match = _INT.match(text)
    return int(match.group()) if match else None


def _float(text: str) -> float | None:
    """JavaScript's parseFloat: the leading number, if any."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        # Python also reads "1_000", "nan" and "inf"; JavaScript stops earlier.
        if math.isfinite(value) and "_" not in text:
            return value
    match = _FLOAT.match(text)
    return float(match.group()) if match else None


def _decimal(text: str) -> float | int | None:
    value = _float(text)
    return None if value is None else _js_number(value)


def _date_time(text: str) -> str:
    trimmed = text.strip()
    # Collect may write "+07" as the offset; OData wants "+07:00".
    return f"{trimmed}:00" if _OFFSET_HOURS.search(trimmed) else trimmed


def _numbers(text: str) -> list[float | None]:
    return [_float(part) for part in text.split()]


def _geopoint(text: str, wkt: bool) -> Any:
    numbers = _numbers(text)
    if len(numbers) < 2 or numbers[0] is None or numbers[1] is None:
        return None
    coordinates = [_js_number(numbers[1]), _js_number(numbers[0])]
    altitude = numbers[2] if len(numbers) > 2 else None
    if altitude is not None:
        coordinates.append(_js_number(altitude))
    if wkt:
        return f"POINT ({' '.join(_js_text(c) for c in coordinates)})"
    point: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
    accuracy = numbers[3] if len(numbers) > 3 else None
    if accuracy is not None:
        point["properties"] = {"accuracy": _js_number(accuracy)}
    return point


def _geo_line(text: str, kind: str, wkt: bool) -> Any:
    points: list[list[float | int]] = []
    accuracies: list[float | int | None] = []
    for part in _POINT_SPLIT.split(text):
        numbers = _numbers(part)
        if len(numbers) < 2 or numbers[0] is None or numbers[1] is None:
            continue  # most likely a trailing ";"
        point = [_js_number(numbers[1]), _js_number(numbers[0])]
        if len(numbers) > 2 and numbers[2] is not None:
            point.append(_js_number(numbers[2]))
        points.append(point)
        accuracy = numbers[3] if len(numbers) > 3 else None
        accuracies.append(_js_number(accuracy) if accuracy else None)
    if wkt:
        joined = ",".join(" ".join(_js_text(c) for c in point) for point in points)
        return f"LINESTRING ({joined})" if kind == "geotrace" else f"POLYGON (({joined}))"
    shape: dict[str, Any] = (
        {"type": "LineString", "coordinates": points}
        if kind == "geotrace"
        else {"type": "Polygon", "coordinates": [points]}
    )
    if any(accuracy is not None for accuracy in accuracies):
        shape["properties"] = {"accuracies": accuracies}
    return shape


def _converter(kind: str, wkt: bool) -> Convert | None:
    if kind == "int":
        return _int
    if kind == "decimal":
        return _decimal
    if kind == "dateTime":
        return _date_time
    if kind == "geopoint":
        return lambda text: _geopoint(text, wkt)
    if kind in ("geotrace", "geoshape"):
        return lambda text: _geo_line(text, kind, wkt)
    return None  # text as it came


# --- $select ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """What $select keeps: a pruned field tree and which id/system properties."""

    table: Node
    ids: frozenset[str]
    system: tuple[str, ...] | None  # None: the whole __system block


def parse_select(table: Node, text: str | None) -> Selection | None:
    """None when everything is selected (no $select, or ``*``)."""
    if text is None or text.strip() in ("", "*"):
        return None
    wanted: set[int] = set()  # ids of kept nodes
    ids: set[str] = set()
    system: list[str] = []
    whole_system = False
    id_names = {"__id"} if table.parent is None else {"__id", table.parent_id_property}
    for raw in text.split(","):
        name = raw.strip()
        if name in id_names:
            ids.add(name)
            continue
        if table.parent is None and name == "__system":
            whole_system = True
            continue
        if table.parent is None and name.startswith("__system/"):
            if name[len("__system/") :] not in SYSTEM_PROPERTIES:
                raise ODataError.property_not_found(name)
            system.append(name[len("__system/") :])
            continue
        node = _find(table, name)
        _keep(node, wanted)
        ancestor = node.parent
        while ancestor is not None and ancestor is not table:
            if ancestor.kind == REPEAT:
                raise ODataError.select_in_repeat(name)
            wanted.add(id(ancestor))
            ancestor = ancestor.parent
    if whole_system:
        chosen: tuple[str, ...] | None = None
    elif system:
        chosen = tuple(s for s in SYSTEM_PROPERTIES if s in system)
    else:
        chosen = ()
    return Selection(_prune(table, wanted), frozenset(ids), chosen)


def _find(table: Node, name: str) -> Node:
    node = table
    for step in name.split("/"):
        child = next((c for c in node.children if c.name == step), None)
        if child is None:
            raise ODataError.property_not_found(name)
        node = child
    return node


def _keep(node: Node, wanted: set[int]) -> None:
    wanted.add(id(node))
    if node.kind == STRUCTURE:
        for child in node.children:
            _keep(child, wanted)


def _prune(node: Node, wanted: set[int]) -> Node:
    children = [
        _prune(child, wanted) if child.kind == STRUCTURE else child
        for child in node.children
        if id(child) in wanted
    ]
    return Node(node.name, node.key, node.path, node.kind, children, node.parent)


# --- rows -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowOptions:
    expand: bool = False
    wkt: bool = False
    select: Selection | None = None


class _Plan:
    """One level of a table's fields, sorted by what writing them takes.

    ``template`` holds every leaf and group name in form order, so copying it and
    assigning fills a row in that order while unanswered fields stay null.
    """

    __slots__ = ("converted", "groups", "needs_context", "plain", "repeats", "template")

    def __init__(self, node: Node, options: RowOptions) -> None:
        self.template: Row = {}
        self.plain: list[tuple[str, str]] = []
        self.converted: list[tuple[str, str, Convert]] = []
        self.groups: list[tuple[str, str, _Plan]] = []
        self.repeats: list[tuple[str, str, _Plan | None]] = []
        for child in node.children:
            if child.kind == REPEAT:
                nested = _Plan(child, options) if options.expand else None
                self.repeats.append((child.name, child.key, nested))
                continue
            self.template[child.name] = None
            if child.kind == STRUCTURE:
                self.groups.append((child.name, child.key, _Plan(child, options)))
                continue
            convert = _converter(child.kind, options.wkt)
            if convert is None:
                self.plain.append((child.name, child.key))
            else:
                self.converted.append((child.name, child.key, convert))
        # Ids and links are only worked out where a repeat needs them.
        self.needs_context: bool = bool(self.repeats) or any(
            nested.needs_context for _, _, nested in self.groups
        )


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _instances(value: object) -> list[Mapping[str, object]]:
    if isinstance(value, list):
        return [item if isinstance(item, dict) else {} for item in value]
    if isinstance(value, dict):
        return [value]
    return []


class RowWriter:
    """Rows of one table of one form, for one set of query options."""

    def __init__(self, model: ODataModel, table: Node, options: RowOptions) -> None:
        self.model = model
        self.table = table
        self.options = options
        selection = options.select
        shape = selection.table if selection is not None else table
        self._plan = _Plan(shape, options)
        self._with_id = selection is None or "__id" in selection.ids
        self._parent_id = (
            None
            if table.parent is None
            else (
                table.parent_id_property
                if selection is None or table.parent_id_property in selection.ids
                else None
            )
        )
        self._system = None if selection is None else selection.system
        # The way down from the root to this table.
        chain: list[Node] = []
        node: Node | None = table
        while node is not None and node.parent is not None:
            chain.append(node)
            node = node.parent
        self._chain = list(reversed(chain))

    @property
    def parent_id_property(self) -> str | None:
        return None if self.table.parent is None else self.table.parent_id_property

    def rows(
        self,
        instance_id: str,
        record: Mapping[str, object] | None,
        system: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        """The table's rows in one submission; ``record`` None when it cannot be read."""
        if self.table.parent is None:
            if record is None:
                row: Row = {}
            elif self._plan.needs_context:
                row = self._fill(
                    self._plan, record, f"{ROOT_TABLE}#{instance_id}", _root_link(instance_id)
                )
            else:
                row = self._fill(self._plan, record, "", "")
            if self._with_id:
                row["__id"] = instance_id
            if system is not None:
                if self._system is None:
                    row["__system"] = system
                elif self._system:
                    row["__system"] = {name: system[name] for name in self._system}
            return [row]
        if record is None:
            return []
        found: list[Row] = []
        base = f"{ROOT_TABLE}#{instance_id}"
        self._descend(record, 0, base, _root_link(instance_id), instance_id, found)
        return found

    def _descend(
        self,
        data: Mapping[str, object],
        depth: int,
        hash_base: str,
        link: str,
        parent_id: str,
        found: list[Row],
    ) -> None:
        node = self._chain[depth]
        value = data.get(node.key)
        if node.kind == STRUCTURE:
            inner = value if isinstance(value, dict) else {}
            self._descend(
                inner,
                depth + 1,
                f"{hash_base}%%{node.key}#",
                f"{link}/{node.name}",
                parent_id,
                found,
            )
            return
        last = depth == len(self._chain) - 1
        for index, item in enumerate(_instances(value)):
            item_hash = f"{hash_base}%%{node.key}#{index}"
            row_id = _sha1(item_hash)
            if last:
                row = self._fill(self._plan, item, item_hash, f"{link}/{node.name}('{row_id}')")
                if self._with_id:
                    row["__id"] = row_id
                if self._parent_id is not None:
                    row[self._parent_id] = parent_id
                found.append(row)
            else:
                self._descend(
                    item, depth + 1, item_hash, f"{link}/{node.name}('{row_id}')", row_id, found
                )

    def _fill(self, plan: _Plan, data: Mapping[str, object], hash_base: str, link: str) -> Row:
        row = plan.template.copy()
        get = data.get
        for name, key in plan.plain:
            value = get(key)
            if value.__class__ is str and value:
                row[name] = value
            elif value.__class__ is list:
                row[name] = _last_text(value)
        for name, key, convert in plan.converted:
            value = get(key)
            if value.__class__ is str and value:
                row[name] = convert(value)
            elif value.__class__ is list:
                text = _last_text(value)
                row[name] = None if text is None else convert(text)
        for name, key, nested in plan.groups:
            inner = get(key)
            row[name] = self._fill(
                nested,
                inner if inner.__class__ is dict else {},
                f"{hash_base}%%{key}#" if nested.needs_context else "",
                f"{link}/{name}" if nested.needs_context else "",
            )
        for name, key, expanded in plan.repeats:
            items = _instances(get(key))
            if not items:
                continue
            row[f"{name}@odata.navigationLink"] = f"{link}/{name}"
            if expanded is not None:
                children = []
                for index, item in enumerate(items):
                    item_hash = f"{hash_base}%%{key}#{index}"
                    row_id = _sha1(item_hash)
                    child = self._fill(expanded, item, item_hash, f"{link}/{name}('{row_id}')")
                    child["__id"] = row_id
                    children.append(child)
                row[name] = children
        return row


def _root_link(instance_id: str) -> str:
    return f"{ROOT_TABLE}('{quote(instance_id, safe=_URL_SAFE)}')"


def _last_text(values: list[object]) -> str | None:
    """A leaf sent twice: the last answer counts."""
    text = values[-1] if values else None
    return text if isinstance(text, str) and text else None


# encodeURIComponent leaves these alone.
_URL_SAFE = "!'()*-._~"
