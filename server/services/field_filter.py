"""A form's own answers in `$filter`: which fields may be named, and their values in SQL.

Central's `$filter` reads only `__system` fields; the office's submissions table
narrows by any answer ("municipality eq 'Tirana'", "household/size ge 5"), so
Homeward reads the answers too, on the server, where paging and counts stay true.

An answer is read from the current version's stored record (msgspec JSON, kept
as bytes) with each database's own JSON function, so no column is added and no
record is decoded in Python. Stored answers are text as the phone sent them;
what a comparison means follows the field's type:

- numbers (int, decimal) compare as numbers; text that is not a number is null
  on PostgreSQL and 0 on SQLite (phones send only numbers there);
- date and dateTime compare by their day as collected (the first ten characters,
  the phone's own calendar day), with a date literal;
- geopoints, traces and shapes only with `null` (answered or not);
- everything else compares as text, and `contains(field, 'x')` finds a piece
  of text regardless of case, or one choice of a select_multiple.

An empty answer counts as null, as it does in exports. Fields inside repeats are
not offered: a submission has many of those rows, and the table is of submissions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from exports.odata import Node, ODataModel
from forms.schema import REPEAT, STRUCTURE
from server.db.models import Submission, SubmissionDef

__all__ = ["AnswerKind", "answer_fields", "answer_value", "contains_clause", "kind_of"]

AnswerKind = str  # "text" | "number" | "day" | "presence" | "choices"

_NUMBERS = frozenset({"int", "decimal"})
_DAYS = frozenset({"date", "dateTime"})
_SHAPES = frozenset({"geopoint", "geotrace", "geoshape"})
# Anything PostgreSQL can cast to a number without an error (SQLite's cast never fails),
# its one capturing group the number itself.
_NUMBER_PATTERN = r"^\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*$"


def answer_fields(model: ODataModel) -> dict[str, Node]:
    """The form's questions outside repeats, by OData path (``group/question``)."""
    found: dict[str, Node] = {}

    def walk(node: Node) -> None:
        for child in node.children:
            if child.kind == REPEAT:
                continue
            if child.kind == STRUCTURE:
                walk(child)
            else:
                found["/".join(child.parts)] = child

    walk(model.root)
    return found


def kind_of(node: Node) -> AnswerKind:
    if node.kind in _NUMBERS:
        return "number"
    if node.kind in _DAYS:
        return "day"
    if node.kind in _SHAPES:
        return "presence"
    if node.kind == "select":
        return "choices"
    return "text"


class _Answer(FunctionElement[str]):
    """One answer of the current version's record, as text: (record, sqlite path, *steps)."""

    type = Text()
    inherit_cache = True
    name = "homeward_answer"


@compiles(_Answer, "postgresql")
def _answer_postgresql(element: _Answer, compiler: Any, **kw: Any) -> str:
    record, _, *steps = list(element.clauses)
    keys = ", ".join(compiler.process(step, **kw) for step in steps)
    source = compiler.process(record, **kw)
    return f"json_extract_path_text(convert_from({source}, 'UTF8')::json, {keys})"


@compiles(_Answer)
def _answer_sqlite(element: _Answer, compiler: Any, **kw: Any) -> str:
    record, path, *_ = list(element.clauses)
    source = compiler.process(record, **kw)
    return f"json_extract(CAST({source} AS TEXT), {compiler.process(path, **kw)})"


class _Number(FunctionElement[float]):
    """Text as a number, null when it is not one (on PostgreSQL a bad cast is an error)."""

    inherit_cache = True
    name = "homeward_number"


# Each reads the answer once: it is a subquery and a JSON parse per row.
@compiles(_Number, "postgresql")
def _number_postgresql(element: _Number, compiler: Any, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    pattern = compiler.process(literal(_NUMBER_PATTERN), **kw)
    return f"CAST(substring({text} from {pattern}) AS double precision)"


@compiles(_Number)
def _number_sqlite(element: _Number, compiler: Any, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    return f"CAST(nullif(trim({text}), '') AS REAL)"


def _stored_answer(node: Node) -> ColumnElement[str]:
    keys = [step for step in node.path.split("/") if step]
    # SQLite's JSON path quotes each key: XML names may hold '.' and '-'.
    sqlite_path = "$" + "".join(f'."{key}"' for key in keys)
    version = aliased(SubmissionDef)
    record = (
        select(version.record)
        .where(version.submission_id == Submission.id, version.current.is_(True))
        .correlate(Submission)
        .scalar_subquery()
    )
    answer = _Answer(record, literal(sqlite_path), *(literal(key) for key in keys))
    return func.nullif(answer, "")


def answer_value(node: Node) -> tuple[ColumnElement[Any], AnswerKind]:
    """The SQL value of a question's answer in the current version, and how it compares."""
    kind = kind_of(node)
    answer = _stored_answer(node)
    if kind == "number":
        return _Number(answer), kind
    if kind == "day":
        return func.substr(answer, 1, 10), kind
    return answer, kind


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_clause(value: ColumnElement[Any], kind: AnswerKind, text: str) -> ColumnElement[bool]:
    """`contains(field, 'text')`: a piece of the text, any case; one choice of a select_multiple."""
    # Two-valued (a missing answer contains nothing, and not(...) keeps it), the answer
    # read once.
    if kind == "choices":
        spaced = literal(" ") + cast(value, Text) + literal(" ")
        return func.coalesce(spaced.like(f"% {_escaped(text)} %", escape="\\"), False)
    pattern = f"%{_escaped(text.lower())}%"
    return func.coalesce(func.lower(value).like(pattern, escape="\\"), False)
