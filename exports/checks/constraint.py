"""A small evaluator for the simple XForm constraints data can be checked against later.

Forms change after collection: a constraint added in version 3 was never shown
to the phones that sent versions 1 and 2. Re-evaluating it on every stored
answer finds the answers that break it. Only expressions about the answer
itself are understood: comparisons of `.`, `string-length(.)` or `number(.)`
with numbers or strings, `regex(., 'pattern')`, joined by `and`, `or`, `not()`
and parentheses. Anything else (other fields, `today()`, `selected()` ...)
raises NotEvaluable, and the check reports the constraint as not evaluated
rather than guessing. As in ODK, an empty answer satisfies every constraint.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

__all__ = ["NotEvaluable", "compile_constraint"]

Predicate = Callable[[str], bool]
_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d+)?)|(?P<string>'[^']*'|\"[^\"]*\")"
    r"|(?P<op><=|>=|!=|=|<|>|\(|\)|,)|(?P<name>[A-Za-z][\w:-]*|\.))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class NotEvaluable(ValueError):  # noqa: N818 - a verdict, not a failure
    """The constraint says more than this evaluator understands."""


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise NotEvaluable(f"cannot read {text[position:]!r}")
        tokens.append(match.group().strip())
        position = match.end()
    return tokens


Operand = Callable[[str], object]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise NotEvaluable(f"expected {expected or 'more'}")
        self.at += 1
        return token

    def expression(self) -> Predicate:
        left = self.conjunction()
        while self.peek() == "or":
            self.take()
            left = _either(left, self.conjunction())
        return left

    def conjunction(self) -> Predicate:
        left = self.comparison()
        while self.peek() == "and":
            self.take()
            left = _both(left, self.comparison())
        return left

    def comparison(self) -> Predicate:
        if self.peek() == "not":
            self.take()
            self.take("(")
            inner = self.expression()
            self.take(")")
            return lambda v: not inner(v)
        if self.peek() == "(":
            self.take()
            inner = self.expression()
            self.take(")")
            return inner
        if self.peek() == "regex":
            self.take()
            self.take("(")
            self.take(".")
            self.take(",")
            pattern = self.take()
            self.take(")")
            if pattern[0] not in "'\"":
                raise NotEvaluable("regex needs a literal pattern")
            compiled = re.compile(pattern[1:-1])
            return lambda v: compiled.search(v) is not None
        left = self.operand()
        symbol = self.take()
        if symbol not in _COMPARE:
            raise NotEvaluable(f"unknown operator {symbol!r}")
        right = self.operand()
        compare = _COMPARE[symbol]

        def predicate(value: str) -> bool:
            a, b = left(value), right(value)
            numbers = _as_number(a), _as_number(b)
            if numbers[0] is not None and numbers[1] is not None:
                return bool(compare(numbers[0], numbers[1]))
            return bool(compare(str(a), str(b)))

        return predicate

    def operand(self) -> Operand:
        # ruff's S105 reads "token == ..." as a password check; these are XPath tokens.
        token = self.take()
        if token == ".":  # noqa: S105
            return lambda v: v
        if token[0] in "'\"":
            text = token[1:-1]
            return lambda _: text
        if re.fullmatch(r"-?\d+(?:\.\d+)?", token):
            number = float(token)
            return lambda _: number
        if token in ("string-length", "number"):
            self.take("(")
            self.take(".")
            self.take(")")
            if token == "string-length":  # noqa: S105
                return lambda v: float(len(v))
            return lambda v: _as_number(v)
        raise NotEvaluable(f"{token!r} is not understood")


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda value: a(value) or b(value)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda value: a(value) and b(value)


def _as_number(value: object) -> float | None:
    if isinstance(value, float):
        return value
    try:
        return float(str(value))
    except ValueError:
        return None


def compile_constraint(text: str) -> Predicate:
    """A predicate on an answer's text; NotEvaluable when the expression is beyond us."""
    parser = _Parser(text)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise NotEvaluable(f"unexpected {parser.peek()!r}")
    return lambda value: value == "" or predicate(value)
