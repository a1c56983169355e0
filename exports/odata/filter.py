"""OData ``$filter`` (and ``$orderby``) as Central supports them, parsed to a small AST.

Central accepts comparisons (eq ne lt le gt ge), and/or/not, parentheses, the
literals null, strings, numbers, dates and times, the functions year() month()
day() hour() minute() second() and now(), over the submission fields below.
Repeat tables may filter on their submission through ``$root/Submissions/``.
Homeward's feed also reads a form's own fields when the caller names them in
``fields`` (their OData paths, ``household/size``), and with ``conditions``
OData's boolean ``contains(field, 'text')``; what they mean in SQL is the
feed's to decide. Without them a filter reads exactly what Central reads.
Everything else raises :class:`ODataError` with Central's code (400.18 when it
cannot be read, 501.4 for an unsupported construct, 501.5 for an unsupported
field), never a guess: a filter we do not understand must not select rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from .errors import ODataError

__all__ = [
    "FILTER_FIELDS",
    "BoolOp",
    "Call",
    "Comparison",
    "Expr",
    "Literal",
    "Member",
    "Not",
    "OrderKey",
    "mentions",
    "parse_filter",
    "parse_orderby",
]

FILTER_FIELDS = frozenset(
    {
        "__id",
        "__system/submissionDate",
        "__system/updatedAt",
        "__system/submitterId",
        "__system/reviewState",
        "__system/deletedAt",
    }
)
ROOT_PREFIX = "$root/Submissions/"
COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
FUNCTIONS = {"year": 1, "month": 1, "day": 1, "hour": 1, "minute": 1, "second": 1, "now": 0}
# Functions that are a condition on their own, not a value to compare.
CONDITIONS = {"contains": 2}

LiteralValue = str | int | float | bool | date | datetime | None


@dataclass(frozen=True, slots=True)
class Member:
    field: str  # one of FILTER_FIELDS


@dataclass(frozen=True, slots=True)
class Literal:
    value: LiteralValue


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # one of FUNCTIONS or CONDITIONS
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str  # one of COMPARISONS
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


Operand = Member | Literal | Call
Expr = Comparison | BoolOp | Not | Call  # a Call here is one of CONDITIONS


# --- tokens ---------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*(?:/\$?[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise ODataError.unparseable_filter(f"unexpected {text[at]!r} at {at}")
        kind = match.lastgroup or ""
        if kind != "space":
            found.append(_Token(kind, match.group(), at))
        at = match.end()
    return found


def _instant(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise ODataError.unparseable_filter(f"{text!r} is not a valid date and time") from error
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise ODataError.unparseable_filter(f"{text!r} is not a valid date") from error


# The parser and everything that walks its tree recurse once per level; a filter
# built to exhaust Python's stack (thousands of parentheses) is refused first.
MAX_NESTING = 32
MAX_OPERATORS = 100


def _refuse_deep(tokens: list[_Token]) -> None:
    depth = deepest = operators = 0
    for token in tokens:
        if token.kind == "open":
            depth += 1
            deepest = max(deepest, depth)
        elif token.kind == "close":
            depth -= 1
        elif token.kind == "name" and token.text in ("and", "or", "not"):
            operators += 1
    if deepest > MAX_NESTING:
        raise ODataError.unparseable_filter(
            f"it nests parentheses {deepest} deep; at most {MAX_NESTING} are accepted"
        )
    if operators > MAX_OPERATORS:
        raise ODataError.unparseable_filter(
            f"it has {operators} and/or/not operators; at most {MAX_OPERATORS} are accepted"
        )


class _Parser:
    def __init__(
        self, text: str, *, root_only: bool, fields: frozenset[str], conditions: bool
    ) -> None:
        self.fields = fields
        self.conditions = CONDITIONS if conditions else {}
        self.text = text
        self.tokens = _tokens(text)
        _refuse_deep(self.tokens)
        self.position = 0
        self.root_only = root_only  # repeat tables: only $root/Submissions/... fields

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ODataError.unparseable_filter("the expression ends too early")
        self.position += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text in words:
            self.position += 1
            return token.text
        return None

    def parse(self) -> Expr:
        expr = self.disjunction()
        token = self.peek()
        if token is not None:
            raise ODataError.unparseable_filter(f"unexpected {token.text!r} at {token.at}")
        return expr

    def disjunction(self) -> Expr:
        expr = self.conjunction()
        while self.keyword("or"):
            expr = BoolOp("or", expr, self.conjunction())
        return expr

    def conjunction(self) -> Expr:
        expr = self.negation()
        while self.keyword("and"):
            expr = BoolOp("and", expr, self.negation())
        return expr

    def negation(self) -> Expr:
        if self.keyword("not"):
            return Not(self.negation())
        return self.comparison()

    def comparison(self) -> Expr:
        token = self.peek()
        if token is not None and token.kind == "open" and self._parenthesised_bool():
            self.take()
            expr = self.disjunction()
            if self.take().kind != "close":
                raise ODataError.unparseable_filter(f"missing ')' for '(' at {token.at}")
            return expr
        left = self.operand()
        op_token = self.peek()
        op = self.keyword(*COMPARISONS)
        if op is None and isinstance(left, Call) and left.name in CONDITIONS:
            return left
        if op is None:
            if op_token is not None and op_token.kind == "name":
                raise ODataError.unsupported_expression("operator", op_token.at, op_token.text)
            start = token.at if token is not None else 0
            raise ODataError.unsupported_expression("non-boolean expression", start, self.text)
        return Comparison(op, left, self.operand())

    def _parenthesised_bool(self) -> bool:
        """Whether the '(' here opens a boolean group rather than an operand."""
        depth = 0
        for token in self.tokens[self.position :]:
            if token.kind == "open":
                depth += 1
            elif token.kind == "close":
                depth -= 1
                if depth == 0:
                    return False
            elif token.kind == "name" and token.text in COMPARISONS | {"and", "or", "not"}:
                return True
        return False

    def operand(self) -> Operand:
        token = self.take()
        if token.kind == "string":
            return Literal(token.text[1:-1].replace("''", "'"))
        if token.kind == "datetime":
            return Literal(_instant(token.text))
        if token.kind == "date":
            return Literal(_day(token.text))
        if token.kind == "number":
            is_float = any(c in token.text for c in ".eE")
            return Literal(float(token.text) if is_float else int(token.text))
        if token.kind == "open":
            inner = self.operand()
            if self.take().kind != "close":
                raise ODataError.unparseable_filter(f"missing ')' for '(' at {token.at}")
            return inner
        if token.kind != "name":
            raise ODataError.unparseable_filter(f"unexpected {token.text!r} at {token.at}")
        following = self.peek()
        if following is not None and following.kind == "open":
            return self.call(token)
        if token.text == "null":
            return Literal(None)
        if token.text in ("true", "false"):
            return Literal(token.text == "true")
        return self.member(token)

    def member(self, token: _Token) -> Member:
        name = token.text
        if name.startswith(ROOT_PREFIX):
            name = name[len(ROOT_PREFIX) :]
        elif self.root_only:
            raise ODataError.unsupported_field(token.text)
        if name not in self.fields:
            raise ODataError.unsupported_field(token.text)
        return Member(name)

    def call(self, token: _Token) -> Call:
        arity = FUNCTIONS.get(token.text, self.conditions.get(token.text))
        if arity is None:
            raise ODataError.unsupported_expression("function", token.at, token.text)
        self.take()  # (
        args: list[Operand] = []
        if self.peek() is not None and self.tokens[self.position].kind != "close":
            args.append(self.operand())
            while self.peek() is not None and self.tokens[self.position].kind == "comma":
                self.take()
                args.append(self.operand())
        if self.take().kind != "close":
            raise ODataError.unparseable_filter(f"missing ')' after {token.text} at {token.at}")
        if len(args) != arity:
            raise ODataError.unparseable_filter(
                f"{token.text}() takes {arity} argument{'s' if arity != 1 else ''}"
            )
        if any(isinstance(arg, Call) and arg.name != "now" for arg in args):
            raise ODataError.unsupported_expression("nested function", token.at, token.text)
        return Call(token.text, tuple(args))


def parse_filter(
    text: str | None,
    *,
    root_only: bool = False,
    fields: frozenset[str] = FILTER_FIELDS,
    conditions: bool = False,
) -> Expr | None:
    """The $filter AST, or None for no filter; ``root_only`` for repeat tables,
    ``fields`` for feeds other than submissions' (entity lists) or with a form's
    questions, ``conditions`` to read boolean functions (``contains``)."""
    if text is None or not text.strip():
        return None
    return _Parser(text, root_only=root_only, fields=fields, conditions=conditions).parse()


def mentions(expr: Expr | Operand | None, field: str) -> bool:
    """Whether the expression reads `field` (Central shows deleted rows only then)."""
    match expr:
        case None | Literal():
            return False
        case Member(name):
            return name == field
        case Call(_, args):
            return any(mentions(arg, field) for arg in args)
        case Comparison(_, left, right) | BoolOp(_, left, right):
            return mentions(left, field) or mentions(right, field)
        case Not(operand):
            return mentions(operand, field)
    return False


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: str  # one of ORDER_FIELDS
    descending: bool


ORDER_FIELDS = frozenset({"__id", "__system/submissionDate"})


def parse_orderby(text: str | None, *, root_only: bool = False) -> OrderKey | None:
    """One sort key of those a keyset cursor can follow; None for the default order."""
    if text is None or not text.strip():
        return None
    clauses = [clause.split() for clause in text.split(",")]
    if len(clauses) != 1 or not 1 <= len(clauses[0]) <= 2:
        raise ODataError.not_implemented("$orderby with more than one property")
    name, *direction = clauses[0]
    if name.startswith(ROOT_PREFIX):
        name = name[len(ROOT_PREFIX) :]
    elif root_only:
        raise ODataError.unsupported_field(clauses[0][0])
    if name not in ORDER_FIELDS:
        raise ODataError.unsupported_field(clauses[0][0])
    order = direction[0].lower() if direction else "asc"
    if order not in ("asc", "desc"):
        raise ODataError.unsupported_field(direction[0])
    return OrderKey(name, order == "desc")
