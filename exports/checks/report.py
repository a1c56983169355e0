"""What a check round is given and what it reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = [
    "CHECKS",
    "EXACT_KINDS",
    "FUZZY_KINDS",
    "MIN_OUTLIER_VALUES",
    "NUMERIC_KINDS",
    "OTHER_SUFFIXES",
    "OTHER_VALUES",
    "CheckReport",
    "CheckSettings",
    "NotEvaluated",
    "NotEvaluatedReason",
    "Suggestion",
]

CHECKS = ("duplicate", "outlier", "constraint", "other", "duration")
FUZZY_KINDS = frozenset({"string"})
EXACT_KINDS = frozenset({"date", "select1", "int"})
NUMERIC_KINDS = frozenset({"int", "decimal"})
OTHER_VALUES = frozenset({"other", "others", "oth", "other_specify", "specify"})
OTHER_SUFFIXES = ("_other", "_oth", "_specify", "_other_specify")
MIN_OUTLIER_VALUES = 8


class CheckSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    checks: tuple[str, ...] = CHECKS
    # Fields (paths or names) that identify a person; None: the form's personal
    # text, date and choice questions.
    duplicate_fields: tuple[str, ...] | None = None
    # How alike two texts must be (difflib's ratio, 0..1) to count as the same.
    duplicate_ratio: float = 0.9
    # Numeric fields to check; None: every int and decimal question outside repeats.
    outlier_fields: tuple[str, ...] | None = None
    # Tukey's fences: this many interquartile ranges beyond the quartiles (3: "far out").
    outlier_fence: float = 3.0
    # Interviews shorter than this (end - start) are suggested.
    min_minutes: float = 5.0
    other_ratio: float = 0.85
    # Report only submissions received at or after this moment (comparisons still
    # use every submission): the cheap run for new submissions.
    since: datetime | None = None


class Suggestion(msgspec.Struct, frozen=True, rename="camel"):
    check: str
    instance_id: str
    # The answer an entry would clean; None: the whole submission (remove it).
    field: str | None
    value: str | None
    suggested_value: str | None
    reason: str
    # Other submissions involved (the earlier registration of a duplicate).
    related: list[str] = msgspec.field(default_factory=list)
    # For an answer inside a repeat: the KEY of its row in the repeat's table
    # ("uuid:1/household[2]"); `field` then names the instance ("/household[2]/age").
    repeat_key: str | None = None


# Why a check could not run, as a stable code a program (the web app's translated
# sentences) can rely on; `why` says the same in English words for API users.
NotEvaluatedReason = Literal[
    "no_duplicate_fields",  # nothing identifies a person: duplicateFields names none
    "too_few_numbers",  # an outlier field has fewer answers than the fences need
    "no_spread",  # an outlier field's middle half is one value
    "no_such_question",  # a constraint names a question the form does not have
    "constraint_not_evaluable",  # a constraint expression the checks cannot compute
    "no_start_end",  # the duration check needs the form's start and end
]


class NotEvaluated(msgspec.Struct, frozen=True, rename="camel"):
    check: str
    field: str | None
    why: str
    reason: NotEvaluatedReason


class CheckReport(msgspec.Struct, rename="camel"):
    checked: int
    suggestions: list[Suggestion]
    not_evaluated: list[NotEvaluated]
