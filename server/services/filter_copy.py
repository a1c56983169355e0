"""Answer filters read from the analysis copy: the answer part of a `$filter` in Polars.

Reading an answer in SQL (services.field_filter) parses every submission's
stored JSON record on every request: about 30 µs a submission on SQLite and
70 µs on PostgreSQL, so 100,000 submissions take seconds. The analysis copy
(services.analysis) holds the same answers as columns of text, so the parts of
a filter that read answers only are evaluated here with Polars over the
copy's segments, and handed to the SQL query as the submissions they select:

    contains(municipality, 'tir') and __system/reviewState eq null
    └──── decided here: ids ─────┘     └──── stays in SQL ────────┘

Paging, `$count`, `$orderby` and system fields stay in SQL, and so does
everything the copy cannot answer for: submissions beyond it or missing
from it, and those edited since they were copied (their current version is
not the copied one) are read through the SQL path, in the same query.

Each decided part keeps SQL's three-valued logic (`size gt 3` is unknown, not
false, where size is empty, so `not (size gt 3)` leaves it out), and each
comparison means what it means in SQL on this database: SQLite casts a text
that is not a number to 0 and lower-cases only ASCII letters; PostgreSQL's
text order follows its collation, so ordered comparisons of text stay in SQL
there.
"""

from __future__ import annotations

import io
import logging
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec
import polars as pl
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    any_,
    false,
    func,
    literal,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from exports.analysis import DEF, SUBMISSION, stored_columns
from exports.odata import Node
from exports.odata.filter import BoolOp, Call, Comparison, Expr, Literal, Member, Not, mentions
from server.db.models import AnalysisCopy, AnalysisSegment, Form, Submission, SubmissionDef
from server.runtime import Runtime
from server.services.analysis import CopyLayout, copy_layout
from server.services.field_filter import kind_of

__all__ = ["decide_from_copy"]

log = logging.getLogger("homeward.filter_copy")

_Coerce = Callable[[object, str], object]

# SQLite's CAST(text AS REAL): the longest number at the start, 0 if none.
_NUMBER_PREFIX = r"^\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
# PostgreSQL's reading (services.field_filter): the whole text a number, else null.
_NUMBER_WHOLE = _NUMBER_PREFIX + r"\s*$"
_UPPER = list(string.ascii_uppercase)
_LOWER = list(string.ascii_lowercase)
# PostgreSQL lower-cases by its ctype: found out once per database.
_UNICODE_LOWER: dict[str, bool] = {}


@dataclass(frozen=True, slots=True)
class _Rules:
    """What SQL comparisons mean on this database, for the Polars side to match."""

    sqlite: bool
    unicode_lower: bool

    def lower(self, value: pl.Expr) -> pl.Expr:
        return value.str.to_lowercase() if self.unicode_lower else _ascii_lower(value)


def _ascii_lower(value: pl.Expr) -> pl.Expr:
    return value.str.replace_many(_UPPER, _LOWER)


def _answer(node: Node, rules: _Rules) -> tuple[pl.Expr, str]:
    """The answer as SQL reads it (services.field_filter.answer_value), and its kind."""
    raw = pl.col(node.path)
    answer = pl.when(raw == "").then(None).otherwise(raw)
    kind = kind_of(node)
    if kind == "number":
        if rules.sqlite:
            trimmed = answer.str.strip_chars(" ")
            trimmed = pl.when(trimmed == "").then(None).otherwise(trimmed)
            number = trimmed.str.extract(_NUMBER_PREFIX, 1).cast(pl.Float64, strict=False)
            return pl.when(trimmed.is_null()).then(None).otherwise(number.fill_null(0.0)), kind
        return answer.str.extract(_NUMBER_WHOLE, 1).cast(pl.Float64, strict=False), kind
    if kind == "day":
        return answer.str.slice(0, 10), kind
    return answer, kind


# Literals are str, float or date; Any because polars types the operand by what is installed.
_ORDERED: dict[str, Callable[[pl.Expr, Any], pl.Expr]] = {
    "lt": lambda column, value: column < value,
    "le": lambda column, value: column <= value,
    "gt": lambda column, value: column > value,
    "ge": lambda column, value: column >= value,
}
_FLIPPED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}


def _comparison(
    node: Comparison, answers: Mapping[str, Node], rules: _Rules, coerce: _Coerce
) -> pl.Expr | None:
    left, right, op = node.left, node.right, node.op
    if isinstance(left, Literal) and isinstance(right, Member):
        left, right, op = right, left, _FLIPPED.get(op, op)
    if not (isinstance(left, Member) and left.field in answers and isinstance(right, Literal)):
        return None
    column, kind = _answer(answers[left.field], rules)
    if right.value is None:
        if op == "eq":
            return column.is_null()
        if op == "ne":
            return column.is_not_null()
        return pl.lit(False)
    if kind == "presence":
        return None
    value = coerce(right.value, kind)
    if op == "eq":
        return (column == pl.lit(value)).fill_null(False)
    if op == "ne":
        return (column != pl.lit(value)).fill_null(True)
    if kind in ("text", "choices") and not rules.sqlite:
        return None  # ordered by the database's collation: left to SQL
    return _ORDERED[op](column, pl.lit(value))


def _contains(call: Call, answers: Mapping[str, Node], rules: _Rules) -> pl.Expr | None:
    field, needle = call.args
    if not (isinstance(field, Member) and field.field in answers):
        return None
    if not (isinstance(needle, Literal) and isinstance(needle.value, str)):
        return None
    column, kind = _answer(answers[field.field], rules)
    if kind == "choices":
        spaced = pl.lit(" ") + column + pl.lit(" ")
        wanted = f" {needle.value} "
        if rules.sqlite:  # LIKE ignores the case of ASCII letters there
            spaced, wanted = _ascii_lower(spaced), wanted.translate(_ASCII_LOWER)
        return spaced.str.contains(wanted, literal=True).fill_null(False)
    if kind != "text":
        return None
    return rules.lower(column).str.contains(needle.value.lower(), literal=True).fill_null(False)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _polars(
    expr: Expr, answers: Mapping[str, Node], rules: _Rules, coerce: _Coerce
) -> pl.Expr | None:
    """The whole of `expr` in Polars (Kleene logic, as SQL's), or None if part of it is not."""
    match expr:
        case Comparison():
            return _comparison(expr, answers, rules, coerce)
        case Call("contains", (_, _)):
            return _contains(expr, answers, rules)
        case BoolOp(op, left, right):
            a = _polars(left, answers, rules, coerce)
            b = _polars(right, answers, rules, coerce)
            if a is None or b is None:
                return None
            return a & b if op == "and" else a | b
        case Not(operand):
            inner = _polars(operand, answers, rules, coerce)
            return None if inner is None else ~inner
    return None


def _reads_answer(expr: Expr, answers: Mapping[str, Node]) -> bool:
    match expr:
        case Comparison(_, left, right):
            return any(isinstance(side, Member) and side.field in answers for side in (left, right))
        case Call(_, args):
            return any(isinstance(arg, Member) and arg.field in answers for arg in args)
        case BoolOp(_, left, right):
            return _reads_answer(left, answers) or _reads_answer(right, answers)
        case Not(operand):
            return _reads_answer(operand, answers)
    return False


def _copyable_parts(
    expr: Expr, answers: Mapping[str, Node], rules: _Rules, coerce: _Coerce
) -> dict[Expr, pl.Expr]:
    """The largest parts of `expr` that read answers and Polars can decide alone."""
    found: dict[Expr, pl.Expr] = {}

    def walk(part: Expr) -> None:
        built = _polars(part, answers, rules, coerce)
        if built is not None:
            if _reads_answer(part, answers):
                found[part] = built
            return
        match part:
            case BoolOp(_, left, right):
                walk(left)
                walk(right)
            case Not(operand):
                walk(operand)

    walk(expr)
    return found


@dataclass(frozen=True, slots=True)
class _Copy:
    layout: CopyLayout
    copied_through: int
    segments: tuple[int, ...]


async def _usable(db: AsyncSession, form: Form, paths: set[str]) -> _Copy | None:
    state = await db.get(AnalysisCopy, form.id)
    if state is None or state.copied_through == 0:
        return None
    layout = await copy_layout(db, form)
    if layout is None or layout.key != state.layout:
        return None  # written for other fields: read the row store until it is rewritten
    if not paths <= set(stored_columns(layout.plan.root)):
        return None
    numbers = (
        await db.scalars(
            select(AnalysisSegment.number)
            .where(AnalysisSegment.form_id == form.id)
            .order_by(AnalysisSegment.number)
        )
    ).all()
    if not numbers:
        return None
    return _Copy(layout, state.copied_through, tuple(numbers))


async def _rules(db: AsyncSession) -> _Rules:
    connection = await db.connection()
    if connection.dialect.name == "sqlite":
        return _Rules(sqlite=True, unicode_lower=False)
    url = str(connection.engine.url)
    if url not in _UNICODE_LOWER:
        lowered = await connection.scalar(text("SELECT lower('ÀÉÎÕÜ')"))
        _UNICODE_LOWER[url] = lowered == "àéîõü"
    return _Rules(sqlite=False, unicode_lower=_UNICODE_LOWER[url])


def _evaluate(
    data: bytes, columns: list[str], parts: dict[Expr, pl.Expr]
) -> tuple[pl.DataFrame, dict[Expr, tuple[list[int], list[int]]]]:
    """One segment: its (submission, version) pairs, and per part the submissions
    it holds true and those it leaves unknown."""
    frame = pl.read_parquet(io.BytesIO(data), columns=[SUBMISSION, DEF, *columns])
    frame = frame.unique(SUBMISSION, keep="last", maintain_order=True)
    decided = frame.select(
        SUBMISSION, *(built.alias(f"part{i}") for i, built in enumerate(parts.values()))
    )
    found: dict[Expr, tuple[list[int], list[int]]] = {}
    for i, part in enumerate(parts):
        value = pl.col(f"part{i}")
        truths = decided.filter(value).get_column(SUBMISSION).to_list()
        unknown = decided.filter(value.is_null()).get_column(SUBMISSION).to_list()
        found[part] = (truths, unknown)
    return frame.select(SUBMISSION, DEF), found


async def _stale(
    db: AsyncSession, form: Form, through: int, held: pl.DataFrame
) -> tuple[list[int], list[int]]:
    """Submissions up to `through` the copy cannot answer for: edited since they were
    copied, or missing from it. Returns (those, the held ones among them)."""
    edited = (
        select(SubmissionDef.submission_id)
        .where(SubmissionDef.submission_id <= through)
        .group_by(SubmissionDef.submission_id)
        .having(func.count() > 1)
    )
    current = (
        await db.execute(
            select(SubmissionDef.submission_id, SubmissionDef.id)
            .join(Submission, Submission.id == SubmissionDef.submission_id)
            .where(
                Submission.form_id == form.id,
                Submission.draft.is_(False),
                SubmissionDef.current.is_(True),
                SubmissionDef.submission_id.in_(edited),
            )
        )
    ).all()
    copied = dict(held.rows())
    stale = {sid for sid, def_id in current if copied.get(sid) != def_id}
    stored = await db.scalar(
        select(func.count()).where(
            Submission.form_id == form.id, Submission.draft.is_(False), Submission.id <= through
        )
    )
    if (stored or 0) != len(copied):  # some never reached the copy
        ids = await db.scalars(
            select(Submission.id).where(
                Submission.form_id == form.id,
                Submission.draft.is_(False),
                Submission.id <= through,
            )
        )
        stale |= {sid for sid in ids if sid not in copied}
    return sorted(stale), sorted(sid for sid in stale if sid in copied)


def _id_in(ids: list[int], sqlite: bool) -> ColumnElement[bool]:
    """`submissions.id` among `ids`, bound as one value however many there are."""
    if not ids:
        return false()
    if sqlite:
        listed = func.json_each(literal(msgspec.json.encode(ids).decode())).table_valued("value")
        return Submission.id.in_(select(listed.c.value))
    return Submission.id == any_(literal(ids, ARRAY(BigInteger)))


async def decide_from_copy(
    rt: Runtime,
    form: Form,
    expr: Expr | None,
    answers: Mapping[str, Node],
    sql_of: Callable[[Expr], ColumnElement[bool]],
    coerce: _Coerce,
) -> dict[Expr, ColumnElement[bool]]:
    """SQL conditions standing for the parts of `expr` the copy decides (none when
    the form has no usable copy): `sql_of` is a part's own SQL, for the submissions
    the copy cannot answer for; `coerce` turns a literal into a field kind's value."""
    if expr is None:
        return {}
    async with rt.read() as db:
        rules = await _rules(db)
        parts = _copyable_parts(expr, answers, rules, coerce)
        if not parts:
            return {}
        paths = {node.path for name, node in answers.items() if mentions(expr, name)}
        copy = await _usable(db, form, paths)
    if copy is None:
        return {}
    truths: dict[Expr, list[int]] = {part: [] for part in parts}
    unknown: dict[Expr, list[int]] = {part: [] for part in parts}
    held: list[pl.DataFrame] = []
    columns = sorted(paths)
    try:
        for number in copy.segments:
            name = copy.layout.object_name(copy.layout.plan.root.name, number)
            data = await rt.blobs.read_object(name)
            pairs, found = await anyio.to_thread.run_sync(_evaluate, data, columns, parts)
            held.append(pairs)
            for part, (yes, maybe) in found.items():
                truths[part] += yes
                unknown[part] += maybe
    except Exception:  # a segment merged away while listed: the SQL path answers
        log.warning("answer filter of form %s read from the row store", form.id, exc_info=True)
        return {}
    copied = pl.concat(held).unique(SUBMISSION, keep="last")
    async with rt.read() as db:
        stale, stale_held = await _stale(db, form, copy.copied_through, copied)
    sqlite = rules.sqlite
    elsewhere = or_(Submission.id > copy.copied_through, _id_in(stale, sqlite))
    decided: dict[Expr, ColumnElement[bool]] = {}
    for part in parts:
        drop = set(stale_held)
        yes = [sid for sid in truths[part] if sid not in drop] if drop else truths[part]
        maybe = [sid for sid in unknown[part] if sid not in drop] if drop else unknown[part]
        # True, unknown (null: as SQL would have it), or SQL's own answer beyond the copy.
        alternatives = [_id_in(yes, sqlite)]
        if maybe:
            alternatives.append(and_(_id_in(maybe, sqlite), null()))
        alternatives.append(and_(elsewhere, sql_of(part)))
        decided[part] = or_(*alternatives)
    return decided
