"""`$filter`, `$search` and `$orderby` on entity lists (entities.csv and the OData feed).

The filter is parsed by exports.odata's parser with the entity fields Central
allows; comparisons of those fields with literals (and `null`), and/or/not,
become SQL on `entities`. Anything else is refused with Central's codes rather
than guessed at: a filter we do not understand must not select rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, not_, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.functions import FunctionElement

from exports.odata import ODataError, parse_filter
from exports.odata.filter import BoolOp, Comparison, Expr, Literal, Member, Not
from server import problems
from server.db.models import EntityRow
from server.services.odata import problem_of

_COLUMNS: dict[str, Any] = {
    "__id": EntityRow.uuid,
    "label": EntityRow.label,
    "__system/createdAt": EntityRow.created_at,
    "__system/updatedAt": EntityRow.updated_at,
    "__system/creatorId": EntityRow.creator_id,
    "__system/conflict": EntityRow.conflict,
    "__system/version": EntityRow.version,
}
FIELDS = frozenset(_COLUMNS)
# Central sorts by the fields it filters on, and by deletedAt (null in a live feed).
_ORDERABLE: dict[str, Any] = _COLUMNS | {"__system/deletedAt": EntityRow.deleted_at}
_TIMES = frozenset({"__system/createdAt", "__system/updatedAt"})
_NUMBERS = frozenset({"__system/creatorId", "__system/version"})


def entity_filter(text: str | None) -> ColumnElement[bool] | None:
    try:
        expr = parse_filter(text, fields=FIELDS)
    except ODataError as error:
        raise problem_of(error) from error
    return None if expr is None else _clause(expr)


def entity_order(text: str | None) -> list[Any]:
    """`$orderby=field [asc|desc], ...` as SQL; ties broken by entity id in the first
    direction, so every order is total. Nulls come first going up and last going
    down, as in Central."""
    if text is None or not text.strip():
        return []
    clauses: list[Any] = []
    first_descending: bool | None = None
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or words[0] not in _ORDERABLE:
            raise _unsupported_order(part.strip())
        if len(words) == 2 and words[1].lower() not in ("asc", "desc"):
            raise _unsupported_order(words[1])
        descending = len(words) == 2 and words[1].lower() == "desc"
        column = _ORDERABLE[words[0]]
        clauses.append(column.desc().nulls_last() if descending else column.asc().nulls_first())
        if first_descending is None:
            first_descending = descending
    clauses.append(EntityRow.id.desc() if first_descending else EntityRow.id.asc())
    return clauses


def _unsupported_order(text: str) -> problems.Problem:
    return problems.Problem(
        501.5,
        f"The given OData filter expression references fields not supported by this server: {text}",
    )


def entity_search(text: str | None) -> ColumnElement[bool] | None:
    """`$search`: every word appears in the label or the properties (case-insensitive)."""
    if text is None or not text.strip():
        return None
    if "\x00" in text:
        raise problems.unexpected_value("$search", text, "it holds a NUL character.")
    words = [w.lower() for w in text.split()]
    haystack: ColumnClause[Any] = EntityRow.label  # type: ignore[assignment]
    return and_(
        *(or_(haystack.ilike(f"%{_escaped(w)}%", escape="\\"), _data_like(w)) for w in words)
    )


class _DataText(FunctionElement[str]):
    """The properties' JSON bytes as text, on either database."""

    type = Text()
    inherit_cache = True


@compiles(_DataText, "postgresql")
def _data_text_postgresql(element: _DataText, compiler: Any, **kw: Any) -> str:
    return f"convert_from({compiler.process(element.clauses, **kw)}, 'UTF8')"


@compiles(_DataText)
def _data_text(element: _DataText, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


def _data_like(word: str) -> ColumnElement[bool]:
    # Properties are stored as JSON bytes; the word is searched in their text.
    return _DataText(EntityRow.data).ilike(f"%{_escaped(word)}%", escape="\\")


def _escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _clause(expr: Expr) -> ColumnElement[bool]:
    match expr:
        case Comparison(op, Member(name), Literal(value)):
            return _compare(op, name, value)
        case Comparison(op, Literal(value), Member(name)):
            flipped = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(op, op)
            return _compare(flipped, name, value)
        case BoolOp("and", left, right):
            return and_(_clause(left), _clause(right))
        case BoolOp(_, left, right):
            return or_(_clause(left), _clause(right))
        case Not(operand):
            return not_(_clause(operand))
    raise problems.Problem(
        501.4, "The $filter on an entity list compares a field with a value, nothing else."
    )


def _compare(op: str, name: str, value: object) -> ColumnElement[bool]:
    column = _COLUMNS[name]
    if value is None:
        if op == "eq":
            return column.is_(None)  # type: ignore[no-any-return]
        if op == "ne":
            return column.is_not(None)  # type: ignore[no-any-return]
        raise problems.unexpected_value("$filter", "null", "only eq and ne compare with null.")
    typed = _typed(name, value)
    if op == "eq":
        return and_(column.is_not(None), column == typed)
    if op == "ne":
        return or_(column.is_(None), column != typed)
    ordered: dict[str, ColumnElement[bool]] = {
        "lt": column < typed,
        "le": column <= typed,
        "gt": column > typed,
        "ge": column >= typed,
    }
    return ordered[op]


def _typed(name: str, value: object) -> object:
    if name in _TIMES:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        raise problems.unexpected_value("$filter", value, f"compare {name} with a date.")
    if name in _NUMBERS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise problems.unexpected_value("$filter", value, f"compare {name} with a number.")
    if isinstance(value, str):
        return value
    raise problems.unexpected_value("$filter", value, f"compare {name} with a string.")
