"""Raw frames built column by column: the fast path of exports.tabulate.

The walker in exports.tabulate visits every answer of every record through a
few Python calls, which made it the largest cost of a big export. Records of
one form have the same shape, so this path instead reads each column for a
whole batch at once (`map(dict.get, groups, repeat(name))` runs in C),
descending group by group, and repeat rows once per instance: about half the
CPU of the walk, which is what bounds an export of a million submissions.

It must give exactly what the walker gives, so it declines (returns None) any
batch with a record it cannot read the same way, and the caller walks that
batch: text where a group belongs, an answer that is an array or object (an
element repeated outside a repeat, which the walker concatenates), a repeat
that is not an array. Strict Polars string columns catch the answers; the
`.get` of a non-object catches the groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat

import polars as pl

from exports.plan import KEY, PARENT_KEY, STATUS, ExportPlan, TablePlan

__all__ = ["tabulate_columns"]

Record = Mapping[str, object]
_EMPTY: Record = {}


class _IrregularError(Exception):
    """A record of the batch does not have the shape the plan reads."""


class _Node:
    """An element of the record that the plan reads: a group, a repeat or an answer."""

    __slots__ = ("children", "path", "repeat")

    def __init__(self, path: str, *, repeat: bool = False) -> None:
        self.path = path
        self.repeat = repeat
        self.children: dict[str, _Node] = {}


def tabulate_columns(
    plan: ExportPlan, records: Sequence[Record], meta: dict[str, list[str | None]]
) -> dict[str, pl.DataFrame] | None:
    """Raw frames like `tabulate_batch` gives, or None when the batch must be walked.

    `meta` holds the root table's system columns ("@KEY", "@Status" ...), one
    value per record.
    """
    root = _tree(plan)
    statuses = meta[STATUS]
    readable = [
        record if status is None else _EMPTY
        for record, status in zip(records, statuses, strict=True)
    ]
    columns: dict[str, list[object]] = {}
    items: dict[str | None, list[Record]] = {None: readable}
    keys: dict[str | None, list[str]] = {None: [key or "" for key in meta[KEY]]}
    try:
        _answers(root, readable, columns)
        for table in plan.tables[1:]:
            assert table.repeat_path is not None
            _instances(table, root, items, keys, columns)
        frames = {
            table.name: pl.DataFrame(
                [
                    pl.Series(source, _column(source, table, meta, columns), dtype=pl.String)
                    for source in table.sources
                ]
            )
            for table in plan.tables
        }
    except (_IrregularError, AttributeError, TypeError):
        return None
    # Blank answers are null, as in the walker.
    return {
        name: frame.with_columns(
            pl.when(pl.col(source) != "").then(pl.col(source)).alias(source)
            for source in frame.columns
            if source.startswith("/")
        )
        for name, frame in frames.items()
    }


def _tree(plan: ExportPlan) -> _Node:
    root = _Node("")
    for table in plan.tables:
        paths = [s for s in table.sources if s.startswith("/")]
        if table.repeat_path is not None:
            paths.insert(0, table.repeat_path)
        for path in paths:
            node = root
            for name in path[1:].split("/"):
                child = node.children.get(name)
                if child is None:
                    walked = f"{node.path}/{name}"
                    child = node.children[name] = _Node(walked, repeat=walked in plan.repeat_paths)
                node = child
    return root


def _answers(node: _Node, groups: Sequence[Record], columns: dict[str, list[object]]) -> None:
    """Columns of the answers below `node` (not inside its repeats), for these groups."""
    for name, child in node.children.items():
        if child.repeat:
            continue
        if child.children:
            # "" is an empty group element; any other text raises AttributeError below.
            _answers(child, [group.get(name) or _EMPTY for group in groups], columns)  # type: ignore[misc]
        else:
            # map over the unbound dict.get runs in C: this line is most of the work.
            columns[child.path] = list(map(dict.get, groups, repeat(name)))  # type: ignore[arg-type]


def _instances(
    table: TablePlan,
    root: _Node,
    items: dict[str | None, list[Record]],
    keys: dict[str | None, list[str]],
    columns: dict[str, list[object]],
) -> None:
    """Rows of one repeat table: its instances under every row of its parent table."""
    assert table.repeat_path is not None
    parent = table.parent_repeat
    relative = table.repeat_path[len(parent or "") + 1 :]
    *containers, name = relative.split("/")
    rows: list[Record] = []
    row_keys: list[str] = []
    parent_keys: list[str] = []
    for item, key in zip(items[parent], keys[parent], strict=True):
        holder = item
        for container in containers:
            holder = holder.get(container) or _EMPTY  # type: ignore[assignment]
        found = holder.get(name)
        if not found:
            continue
        if type(found) is not list:
            raise _IrregularError
        for index, instance in enumerate(found, start=1):
            if instance == "":
                instance = _EMPTY  # an empty repeat element: a row with no answers
            elif type(instance) is not dict:
                raise _IrregularError
            rows.append(instance)
            row_keys.append(f"{key}/{relative}[{index}]")
            parent_keys.append(key)
    items[table.repeat_path] = rows
    keys[table.repeat_path] = row_keys
    columns[f"{table.repeat_path}#{KEY}"] = list(row_keys)
    columns[f"{table.repeat_path}#{PARENT_KEY}"] = list(parent_keys)
    _answers(_node(root, table.repeat_path), rows, columns)


def _node(root: _Node, path: str) -> _Node:
    node = root
    for name in path[1:].split("/"):
        node = node.children[name]
    return node


def _column(
    source: str,
    table: TablePlan,
    meta: dict[str, list[str | None]],
    columns: dict[str, list[object]],
) -> Sequence[object]:
    if source.startswith("/"):
        return columns[source]
    if table.repeat_path is None:
        return meta[source]
    return columns[f"{table.repeat_path}#{source}"]
