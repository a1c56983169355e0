"""Queries behind the OData feed: the form, the filter in SQL, and keyset pages of rows.

Rows come from the stored records (``SubmissionDef.record``) and the form's
current schema; no XML is read. Pages follow a keyset cursor, never an offset:
the default order is Central's, newest submission date first, and every order
(``$orderby`` on the submission date or ``__id``) breaks ties by
``submissions.id``. The ``$skiptoken`` carries the last row's key, so a client that
pages while submissions keep arriving sees every row at most once, and every
row that existed when it started exactly once. (Central's token names only the
last instanceID and can skip or repeat rows in that case.)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    and_,
    case,
    extract,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from exports.odata import (
    Node,
    ODataError,
    ODataModel,
    OrderKey,
    RowWriter,
    build_model,
    shape_key,
    splice_row,
)
from exports.odata.fill import Row
from exports.odata.filter import BoolOp, Call, Comparison, Expr, Literal, Member, Not, Operand
from server import problems
from server.db.models import (
    Actor,
    Form,
    FormDef,
    Submission,
    SubmissionDef,
)
from server.services.field_filter import answer_fields, answer_value, contains_clause
from server.services.forms import find_form, schema_of
from server.services.stats import page_counts

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_ORDER",
    "Cursor",
    "Feed",
    "FeedQuery",
    "FeedRow",
    "base_where",
    "coerce_literal",
    "count_rows",
    "decode_skiptoken",
    "encode_skiptoken",
    "filter_clause",
    "find_table",
    "iterate_rows",
    "load_feed",
    "problem_of",
]

BATCH_SIZE = 1000  # submissions read per query while collecting rows

_decode_record = msgspec.json.Decoder(dict[str, object]).decode


def problem_of(error: ODataError) -> problems.Problem:
    return problems.Problem(error.code, error.message)


# --- the form -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Feed:
    form: Form
    model: ODataModel
    draft: bool


async def load_feed(db: AsyncSession, project_id: int, xml_form_id: str, *, draft: bool) -> Feed:
    """The form and its OData model (published version, or the draft); 404 without one."""
    form = await find_form(db, project_id, xml_form_id)
    def_id = form.draft_def_id if draft else form.current_def_id
    form_def = None if def_id is None else await db.get(FormDef, def_id)
    if form_def is None:
        raise problems.not_found()
    return Feed(form, build_model(schema_of(form_def)), draft)


# --- $filter in SQL ---------------------------------------------------------------

_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "__id": Submission.instance_id,
    "__system/submissionDate": Submission.created_at,
    "__system/updatedAt": Submission.updated_at,
    "__system/submitterId": Submission.submitter_id,
    "__system/reviewState": Submission.review_state,
    "__system/deletedAt": Submission.deleted_at,
}
_KINDS = {
    "__id": "text",
    "__system/submissionDate": "time",
    "__system/updatedAt": "time",
    "__system/submitterId": "int",
    "__system/reviewState": "text",
    "__system/deletedAt": "time",
}
_NOT_NULL = {"__id", "__system/submissionDate"}
_TIMESTAMP = DateTime(timezone=True)


@dataclass(frozen=True, slots=True)
class _Sql:
    expr: Any  # a column or SQL expression
    # text | time | int | number, and for answers (services.field_filter) also
    # day (a date's text) | choices (a select_multiple's text) | presence (null or not)
    kind: str
    nullable: bool
    # An answer read from the stored record: costly to read, so written once in SQL.
    answer: bool = False


# A form's questions by OData path (services.field_filter.answer_fields).
Answers = Mapping[str, Node]
# Parts of a filter decided from the analysis copy, and the condition each became.
Decided = Mapping[Expr, ColumnElement[bool]]


def _bad_value(value: object, kind: str) -> problems.Problem:
    wanted = {
        "time": "a date or time such as 2026-08-01 or 2026-08-01T10:00:00Z",
        "day": "a date such as 2026-08-01",
        "int": "a whole number",
        "number": "a number",
        "text": "a quoted string",
        "choices": "a quoted string",
        "presence": "null (answered or not)",
    }[kind]
    return problems.unexpected_value("$filter", value, f"compare it with {wanted}.")


def coerce_literal(value: object, kind: str) -> object:
    """A literal as the type of what it is compared with."""
    if kind == "time":
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError as error:
                raise _bad_value(value, kind) from error
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    elif kind in ("int", "number"):
        if isinstance(value, bool):
            raise _bad_value(value, kind)
        if isinstance(value, int | float):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                try:
                    return float(value)
                except ValueError as error:
                    raise _bad_value(value, kind) from error
    elif kind == "day":
        if isinstance(value, datetime | date):
            return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value[:10]).isoformat()
            except ValueError as error:
                raise _bad_value(value, kind) from error
    elif kind in ("text", "choices"):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    raise _bad_value(value, kind)


def _operand(node: Operand, answers: Answers) -> _Sql | Literal:
    match node:
        case Literal():
            return node
        case Member(name) if name in _COLUMNS:
            return _Sql(_COLUMNS[name], _KINDS[name], name not in _NOT_NULL)
        case Member(name) if name in answers:
            value, kind = answer_value(answers[name])
            return _Sql(value, kind, True, answer=True)
        case Call("now", ()):
            return _Sql(literal(datetime.now(UTC), _TIMESTAMP), "time", False)
        case Call(name, (argument,)):
            inner = _operand(argument, answers)
            if not isinstance(inner, _Sql) or inner.kind != "time":
                raise problems.unexpected_value(
                    "$filter", name, "its argument must be a date field or now()."
                )
            return _Sql(extract(name, inner.expr), "number", inner.nullable)
    raise ODataError.unsupported_expression("expression", 0, str(node))


def _python_compare(op: str, left: object, right: object) -> bool:
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return bool(
            {
                "lt": lambda: left < right,  # type: ignore[operator]
                "le": lambda: left <= right,  # type: ignore[operator]
                "gt": lambda: left > right,  # type: ignore[operator]
                "ge": lambda: left >= right,  # type: ignore[operator]
            }[op]()
        )
    except TypeError as error:
        raise problems.unexpected_value("$filter", right, "these cannot be compared.") from error


def _comparison(node: Comparison, answers: Answers) -> ColumnElement[bool]:
    left, right = _operand(node.left, answers), _operand(node.right, answers)
    if isinstance(left, Literal) and isinstance(right, Literal):
        return true() if _python_compare(node.op, left.value, right.value) else false()
    if isinstance(left, Literal):  # keep the column on the left
        flipped = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(node.op, node.op)
        return _comparison(Comparison(flipped, node.right, node.left), answers)
    assert isinstance(left, _Sql)
    column: ColumnElement[Any] = left.expr
    if isinstance(right, Literal):
        if right.value is None:
            if node.op == "eq":
                return column.is_(None)
            if node.op == "ne":
                return column.is_not(None)
            return false()  # like SQL: nothing is less than null
        if left.kind == "presence":
            raise _bad_value(right.value, left.kind)
        value: Any = coerce_literal(right.value, left.kind)
        other: Any = literal(value, _TIMESTAMP) if left.kind == "time" else value
        nullable = left.nullable
    elif "presence" in (left.kind, right.kind):
        raise problems.unexpected_value(
            "$filter", "a location", "compare it only with null (answered or not)."
        )
    else:
        other = right.expr
        nullable = left.nullable or right.nullable
    if left.answer and not isinstance(right, _Sql) and node.op in ("eq", "ne"):
        # Two-valued as below, with the answer read once per row rather than twice.
        compared = column == other if node.op == "eq" else column != other
        return func.coalesce(compared, node.op == "ne")
    if node.op == "eq":
        if isinstance(right, _Sql):
            return column.is_not_distinct_from(other)
        # Two-valued, so that not(...) keeps rows where the field is null (as Central).
        return and_(column.is_not(None), column == other) if nullable else column == other
    if node.op == "ne":
        if isinstance(right, _Sql):
            return column.is_distinct_from(other)
        return or_(column.is_(None), column != other) if nullable else column != other
    ordered: dict[str, ColumnElement[bool]] = {
        "lt": column < other,
        "le": column <= other,
        "gt": column > other,
        "ge": column >= other,
    }
    return ordered[node.op]


def _contains(field: Operand, text: Operand, answers: Answers) -> ColumnElement[bool]:
    value = _operand(field, answers)
    if (
        not isinstance(value, _Sql)
        or value.kind not in ("text", "choices")
        or not isinstance(text, Literal)
        or not isinstance(text.value, str)
    ):
        raise problems.unexpected_value(
            "$filter", "contains", "it takes a text field and a quoted string."
        )
    return contains_clause(value.expr, value.kind, text.value)


def filter_clause(
    expr: Expr, answers: Answers | None = None, decided: Decided | None = None
) -> ColumnElement[bool]:
    """The SQL condition on ``submissions`` for a parsed $filter (`answers`: the form's
    questions it may name, from services.field_filter; `decided`: parts already
    decided from the analysis copy, services.filter_copy)."""
    answers = answers or {}
    if decided and expr in decided:
        return decided[expr]
    match expr:
        case Comparison():
            return _comparison(expr, answers)
        case BoolOp("and", left, right):
            return and_(
                filter_clause(left, answers, decided), filter_clause(right, answers, decided)
            )
        case BoolOp(_, left, right):
            return or_(
                filter_clause(left, answers, decided), filter_clause(right, answers, decided)
            )
        case Not(operand):
            return not_(filter_clause(operand, answers, decided))
        case Call("contains", (field, text)):
            return _contains(field, text, answers)
    raise ODataError.unsupported_expression("expression", 0, str(expr))


# --- cursor and skiptoken ------------------------------------------------------------


class Cursor(NamedTuple):
    """Where the previous page stopped: the submission and rows already sent from it."""

    id: int  # submissions.id
    key: str | None = None  # the $orderby value, ISO text for dates
    sent: int = 0  # repeat tables: rows of this submission already on earlier pages


class _Token(msgspec.Struct, omit_defaults=True):
    id: int
    instanceId: str | None = None  # noqa: N815 - Central's spelling
    key: str | None = None
    sent: int = 0


_token_decoder = msgspec.json.Decoder(_Token)


def encode_skiptoken(cursor: Cursor, instance_id: str) -> str:
    """Central's scheme ("01" + base64 JSON), with our keyset fields inside."""
    data = msgspec.json.encode(_Token(cursor.id, instance_id, cursor.key, cursor.sent))
    return "01" + base64.b64encode(data).decode()


def decode_skiptoken(token: str) -> Cursor:
    if not token.startswith("01"):
        raise problem_of(ODataError.invalid_skiptoken())
    try:
        decoded = _token_decoder.decode(base64.b64decode(token[2:], validate=True))
    except (binascii.Error, ValueError, msgspec.DecodeError) as error:
        raise problem_of(ODataError.invalid_skiptoken()) from error
    if decoded.sent < 0:
        raise problem_of(ODataError.invalid_skiptoken())
    return Cursor(decoded.id, decoded.key, decoded.sent)


# --- rows ---------------------------------------------------------------------------


# Central's own order: newest submission first, the id breaking ties.
DEFAULT_ORDER = OrderKey("__system/submissionDate", descending=True)


@dataclass(slots=True)
class FeedQuery:
    feed: Feed
    table: Node
    writer: RowWriter
    where: tuple[ColumnElement[bool], ...]
    order: OrderKey = DEFAULT_ORDER
    skip: int = 0
    cursor: Cursor | None = None
    # What the caller may see of a record (server.services.personal); None: all of it.
    # Rows stored at ingest hold every answer, so a masked feed writes each from its record.
    shown: Callable[[dict[str, object]], dict[str, object]] | None = None


def _key_value(order: OrderKey, key: str | None) -> Any:
    if key is None:
        raise problem_of(ODataError.invalid_skiptoken())
    if order.field == "__system/submissionDate":
        try:
            return literal(datetime.fromisoformat(key), _TIMESTAMP)
        except ValueError as error:
            raise problem_of(ODataError.invalid_skiptoken()) from error
    return key


def _key_text(value: object) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def _page(
    query: FeedQuery,
    limit: int,
    offset: int,
    cursor: Cursor | None,
    *,
    page_first: bool,
    stored: str | None = None,
) -> Select[Any]:
    """One batch of submissions with their current versions, in feed order.

    The cursor is a row-value comparison, ``(key, id) < (:key, :id)``: both
    databases turn it into one range of the index on (key, id), where the
    equivalent ``key < :key OR (key = :key AND id < :id)`` made PostgreSQL walk
    the index from its start (5 ms in the middle of 100,000 submissions).

    ``page_first`` (PostgreSQL) picks the page's submissions in a limited
    subquery and joins their versions after it: with statistics, PostgreSQL
    otherwise merge-joined the whole versions index down to the page (40 ms in
    the middle of 100,000 submissions). SQLite plans the flat join well and the
    nested one badly (it sorted a date filter's whole range), so it gets the flat one.

    ``stored`` is the shape key of rows written at ingest that the page may send
    as they are (``exports.odata.rendered``): such rows come without their record.
    """
    order = query.order
    column = _COLUMNS[order.field]
    conditions = list(query.where)
    if cursor is not None:
        here = tuple_(column, Submission.id)
        there = tuple_(_key_value(order, cursor.key), literal(cursor.id))
        # A repeat table may owe rows of the cursor's own submission, so it reads
        # from that submission on; the root table sent that submission's row already.
        if query.table.parent is None:
            conditions.append(here < there if order.descending else here > there)
        else:
            conditions.append(here <= there if order.descending else here >= there)
    ordering = _ordering(column, Submission.id, order.descending)
    if not page_first:
        flat = _with_versions(Submission.__table__.c, column, stored).where(*conditions)
        return flat.order_by(*ordering).limit(limit).offset(offset)
    chosen = select(*Submission.__table__.c, column.label("sort_key")).where(*conditions)
    page = chosen.order_by(*ordering).limit(limit).offset(offset).subquery("page")
    again = _ordering(page.c.sort_key, page.c.id, order.descending)
    return _with_versions(page.c, page.c.sort_key, stored).order_by(*again)


def _ordering(sort_key: Any, row_id: Any, descending: bool) -> list[Any]:
    """Feed order: by the sort key, then by the id (its tie-break)."""
    if descending:
        return [sort_key.desc(), row_id.desc()]
    return [sort_key.asc(), row_id.asc()]


def _with_versions(submission: Any, sort_key: Any, stored: str | None) -> Select[Any]:
    """The columns a row needs, from submission columns (the table's or a page's).

    With ``stored``, a version written for that shape gives its stored row and
    no record; any other gives its record (PostgreSQL does not even read the
    column a CASE leaves out).
    """
    if stored is None:
        record: Any = SubmissionDef.record
        written: Any = null()
    else:
        matches = SubmissionDef.odata_shape == stored
        record = case((matches, null()), else_=SubmissionDef.record)
        written = case((matches, SubmissionDef.odata_row), else_=null())
    return (
        select(
            submission.id,
            submission.instance_id,
            submission.created_at,
            submission.updated_at,
            submission.deleted_at,
            submission.submitter_id,
            Actor.display_name,
            submission.review_state,
            submission.device_id,
            record,
            SubmissionDef.encrypted,
            FormDef.version,
            SubmissionDef.id,
            sort_key,
            written,
        )
        .join(
            SubmissionDef,
            and_(SubmissionDef.submission_id == submission.id, SubmissionDef.current.is_(True)),
        )
        .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
        .outerjoin(Actor, Actor.id == submission.submitter_id)
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # Three per row, so the cheapest spelling: naive values are UTC already
    # (SQLite), and asyncpg hands out UTC ones (PostgreSQL), "+00:00" at the end.
    zone = value.tzinfo
    if zone is None:
        return value.isoformat(timespec="milliseconds") + "Z"
    if zone is UTC:
        return value.isoformat(timespec="milliseconds")[:-6] + "Z"
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


_NO_FILES = (0, 0)


def _system(
    row: Any, versions: dict[int, int], files: dict[int, tuple[int, int]]
) -> dict[str, Any]:
    expected, present = files.get(row[12], _NO_FILES)
    return {
        "submissionDate": _iso(row[2]),
        "updatedAt": _iso(row[3]),
        "deletedAt": _iso(row[4]),
        "submitterId": None if row[5] is None else str(row[5]),
        "submitterName": row[6],
        "attachmentsPresent": present,
        "attachmentsExpected": expected,
        "status": "notDecrypted" if row[10] else None,
        "reviewState": row[7],
        "deviceId": row[8],
        "edits": versions.get(row[0], 1) - 1,
        "formVersion": row[11] or "",
    }


class FeedRow(NamedTuple):
    """One row of the table with the position a skiptoken needs to resume after it.

    Named tuples, not frozen dataclasses: one of each is made per row, and a
    frozen dataclass costs about a microsecond to build.
    """

    row: Row | msgspec.Raw  # Raw: a row written at ingest, sent as it is
    instance_id: str
    cursor: Cursor


Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def iterate_rows(
    open_session: Sessions, query: FeedQuery, *, batch: int | None = None
) -> AsyncGenerator[FeedRow, None]:
    """The table's rows in feed order from the cursor on, reading `batch` submissions at a time.

    `open_session()` gives an async context manager yielding a session: one per
    batch, so a long stream holds no snapshot open between batches. The root
    table's $skip is applied by the database; a repeat table's here.
    """
    batch = batch or BATCH_SIZE  # read at call time, so tests may lower it
    root = query.table.parent is None
    shown = query.shown
    stored = shape_key(query.table) if query.writer.writes_default_rows and shown is None else None
    cursor = query.cursor
    offset = query.skip if root and cursor is None else 0
    to_skip = 0 if root or cursor is not None else query.skip
    while True:
        async with open_session() as db:
            connection = await db.connection()  # Core rows: no ORM bookkeeping per row
            page_first = connection.dialect.name == "postgresql"
            statement = _page(query, batch, offset, cursor, page_first=page_first, stored=stored)
            fetched = (await connection.execute(statement)).all()
            # Versions and files of the whole batch in two grouped queries; only
            # the root table's __system block shows them.
            versions, files = (
                await page_counts(
                    connection,
                    [row[0] for row in fetched if row[3] is not None],  # ever updated
                    [row[12] for row in fetched],
                )
                if root and fetched
                else ({}, {})
            )
        offset = 0
        owed = cursor.sent if cursor is not None else 0
        first_id = cursor.id if cursor is not None else None
        for submission in fetched:
            rows: list[Row | msgspec.Raw]
            if submission[14] is not None:
                block = _system(submission, versions, files)
                rows = [splice_row(submission[14], submission[1], block)]
            else:
                record = None if submission[10] else _decode_record(submission[9])
                if record is not None and shown is not None:
                    record = shown(record)
                system = _system(submission, versions, files) if root else None
                rows = list(query.writer.rows(submission[1], record, system))
            key = _key_text(submission[13])
            start = owed if submission[0] == first_id else 0
            for index in range(start, len(rows)):
                if to_skip:
                    to_skip -= 1
                    continue
                yield FeedRow(rows[index], submission[1], Cursor(submission[0], key, index + 1))
        if len(fetched) < batch:
            return
        last = fetched[-1]
        cursor = Cursor(last[0], _key_text(last[13]), 1 << 62)


async def count_rows(db: AsyncSession, query: FeedQuery, open_session: Sessions) -> int:
    """All rows the filter selects (ignoring $top, $skip and the cursor)."""
    if query.table.parent is None:
        statement = select(func.count()).select_from(Submission).where(*query.where)
        return int(await db.scalar(statement) or 0)
    plain = FeedQuery(query.feed, query.table, query.writer, query.where, query.order)
    total = 0
    async for _ in iterate_rows(open_session, plain):
        total += 1
    return total


def base_where(
    feed: Feed, expr: Expr | None, *, include_deleted: bool, decided: Decided | None = None
) -> tuple[Any, ...]:
    conditions: list[ColumnElement[bool]] = [
        Submission.form_id == feed.form.id,
        Submission.draft == feed.draft,
    ]
    if not include_deleted:
        conditions.append(Submission.deleted_at.is_(None))
    if expr is not None:
        conditions.append(filter_clause(expr, answer_fields(feed.model), decided))
    return tuple(conditions)


def find_table(model: ODataModel, name: str) -> Node:
    """The table named in the URL; Central's 404 when the form has none such."""
    node = model.tables.get(name)
    if node is None:
        raise problems.not_found()
    return node
