"""Entity rows of a form's OData tables, from stored records (never from XML).

A record is what ``forms.submission`` stored at ingest: element name -> text,
dict (group) or list of dicts (repeat). Rows follow Central's rules: every
field of the table is present (``null`` when unanswered), numbers and
geometries are typed, a repeat row's ``__id`` is the sha1 of its place in the
submission (stable across exports), and every repeat that has instances is
linked with ``<name>@odata.navigationLink``.

``RowWriter`` compiles the table's fields into a row function once per request
(``fill``); this module picks the level, the ids and the ``__system`` block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from forms.schema import REPEAT, STRUCTURE

from .errors import ODataError
from .fill import Row, compile_fill, instances, needs_context, row_id
from .model import ROOT_TABLE, SYSTEM_PROPERTIES, Node, ODataModel

__all__ = ["RowOptions", "RowWriter", "Selection", "parse_select"]

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


class RowWriter:
    """Rows of one table of one form, for one set of query options."""

    def __init__(self, model: ODataModel, table: Node, options: RowOptions) -> None:
        self.model = model
        self.table = table
        self.options = options
        selection = options.select
        shape = selection.table if selection is not None else table
        self._fill = compile_fill(shape, expand=options.expand, wkt=options.wkt)
        self._needs_context = needs_context(shape)
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

    @property
    def writes_default_rows(self) -> bool:
        """Rows of the root table with every field as written by default (``rendered``)."""
        return self.table.parent is None and self.options == RowOptions()

    def fields(self, instance_id: str, record: Mapping[str, object]) -> Row:
        """A root row's fields, without ``__id`` and ``__system``."""
        if self._needs_context:
            return self._fill(record, f"{ROOT_TABLE}#{instance_id}", _root_link(instance_id))
        return self._fill(record, "", "")

    def rows(
        self,
        instance_id: str,
        record: Mapping[str, object] | None,
        system: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        """The table's rows in one submission; ``record`` None when it cannot be read."""
        if self.table.parent is None:
            row = {} if record is None else self.fields(instance_id, record)
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
        for index, item in enumerate(instances(value)):
            item_hash = f"{hash_base}%%{node.key}#{index}"
            identity = row_id(item_hash)
            if last:
                row = self._fill(item, item_hash, f"{link}/{node.name}('{identity}')")
                if self._with_id:
                    row["__id"] = identity
                if self._parent_id is not None:
                    row[self._parent_id] = parent_id
                found.append(row)
            else:
                self._descend(
                    item, depth + 1, item_hash, f"{link}/{node.name}('{identity}')", identity, found
                )


def _root_link(instance_id: str) -> str:
    return f"{ROOT_TABLE}('{quote(instance_id, safe=_URL_SAFE)}')"


# encodeURIComponent leaves these alone.
_URL_SAFE = "!'()*-._~"
