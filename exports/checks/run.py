"""Running the checks over a form's submissions: the root table, read once."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Literal

import msgspec
import polars as pl

from exports.checks.constraint import NotEvaluable, compile_constraint
from exports.options import ExportOptions
from exports.plan import KEY, PARENT_KEY, STATUS, SUBMISSION_DATE, plan_export
from exports.records import ExportRecord
from exports.tabulate import tabulate_batch
from exports.typed import to_utc_datetime
from forms.schema import REPEAT, STRUCTURE, Field, FormSchema

__all__ = [
    "CHECKS",
    "CheckInput",
    "CheckReport",
    "CheckSettings",
    "NotEvaluated",
    "NotEvaluatedReason",
    "Suggestion",
    "run_checks",
]

CHECKS = ("duplicate", "outlier", "constraint", "other", "duration")
_FUZZY_KINDS = frozenset({"string"})
_EXACT_KINDS = frozenset({"date", "select1", "int"})
_NUMERIC_KINDS = frozenset({"int", "decimal"})
_OTHER_VALUES = frozenset({"other", "others", "oth", "other_specify", "specify"})
_OTHER_SUFFIXES = ("_other", "_oth", "_specify", "_other_specify")
_MIN_OUTLIER_VALUES = 8


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


# Columns the checks add to every table: the submission a row belongs to, and
# the cleaning-log path of the row ("" for the root, "/household[2]" in a repeat).
_INSTANCE = "@instance"
_ROW = "@row"


@dataclass(frozen=True, slots=True)
class _Table:
    """One table of the export's shape, with the questions that are its columns."""

    repeat_path: str | None
    fields: dict[str, Field]
    frame: pl.DataFrame

    def target(self, row: str, field: Field) -> str:
        """The cleaning-log path of `field`'s answer in the row with path `row`."""
        return row + field.path[len(self.repeat_path or "") :]

    def repeat_key(self, instance: str, row: str) -> str | None:
        return None if self.repeat_path is None else instance + row


class CheckInput:
    """The form's tables for the checks, built a batch at a time.

    Only the tabulated frames are held, never the records: a caller reading
    pages from a database adds each page as it arrives. Given the settings and
    constraints the checks will run with, each batch keeps only the columns
    they read (a million submissions of a 40-question form held whole take
    gigabytes; the checks read a few columns).
    """

    def __init__(
        self,
        schema: FormSchema,
        settings: CheckSettings | None = None,
        constraints: Mapping[str, str] | None = None,
    ) -> None:
        self.schema = schema
        self.plan = plan_export(schema, ExportOptions())
        self.parts: dict[str, list[pl.DataFrame]] = {table.name: [] for table in self.plan.tables}
        self.kept = None if settings is None else checked_paths(schema, settings, constraints or {})

    def add(self, batch: Sequence[ExportRecord]) -> None:
        if batch:
            for name, part in tabulate_batch(self.plan, batch).items():
                if self.kept is not None:
                    part = part.select(c for c in part.columns if c in self.kept)
                self.parts[name].append(part)


# The columns every table keeps: which row it is, whose, when, and whether readable.
_ROW_COLUMNS = frozenset({KEY, PARENT_KEY, STATUS, SUBMISSION_DATE})


def checked_paths(
    schema: FormSchema, settings: CheckSettings, constraints: Mapping[str, str]
) -> frozenset[str]:
    """The columns the chosen checks read (more rather than fewer: a name in the
    settings keeps every question so named)."""
    questions = [f for f in schema.fields if f.kind not in (STRUCTURE, REPEAT)]
    wanted = set(settings.checks)
    kept: set[str] = set(_ROW_COLUMNS)

    def named(names: Sequence[str]) -> set[str]:
        return {f.path for f in questions if f.path in names or f.name in names}

    if "duplicate" in wanted:
        if settings.duplicate_fields is not None:
            kept |= named(settings.duplicate_fields)
        else:
            kept |= {
                f.path
                for f in questions
                if f.personal and (f.kind in _FUZZY_KINDS or f.kind in _EXACT_KINDS)
            }
    if "outlier" in wanted:
        if settings.outlier_fields is not None:
            kept |= named(settings.outlier_fields)
        else:
            kept |= {f.path for f in questions if f.kind in _NUMERIC_KINDS}
    if "constraint" in wanted:
        kept |= set(constraints)
    if "other" in wanted:
        kept |= _other_pairs(schema, questions)
    if "duration" in wanted:
        kept |= {"/start", "/end"}
    return frozenset(kept)


def run_checks(
    schema: FormSchema,
    batches: Iterable[Sequence[ExportRecord]] | CheckInput,
    settings: CheckSettings | None = None,
    constraints: Mapping[str, str] | None = None,
    *,
    only: Collection[str] | None = None,
) -> CheckReport:
    """Suggestions for the submissions in `batches`; `constraints` maps field paths to
    the current form version's constraint expressions (forms.xform.bind_constraints).

    Outliers, constraints and "other, specify" are checked in repeats too, per
    repeat instance. With `only` (instance ids), suggestions are made for those
    submissions alone, still compared with all of them (new submissions' run).
    """
    settings = settings or CheckSettings()
    unknown = [c for c in settings.checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"Unknown checks: {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    if not isinstance(batches, CheckInput):
        collected = CheckInput(schema)
        for batch in batches:
            collected.add(batch)
        batches = collected
    tables = _tables(batches)
    root = tables[0]
    frame = root.frame
    reported = _reported(frame, settings.since)
    if only is not None:
        reported &= set(only)
    suggestions: list[Suggestion] = []
    skipped: list[NotEvaluated] = []
    wanted = set(settings.checks)
    if "duplicate" in wanted:
        _duplicates(frame, reported, root.fields, schema, settings, suggestions, skipped)
    if "outlier" in wanted:
        _outliers(tables, reported, settings, suggestions, skipped)
    if "constraint" in wanted:
        _constraints(tables, reported, constraints or {}, suggestions, skipped)
    if "other" in wanted:
        for table in tables:
            _other_specify(table, reported, schema, settings, suggestions)
    if "duration" in wanted:
        _durations(frame, reported, root.fields, settings, suggestions, skipped)
    return CheckReport(checked=frame.height, suggestions=suggestions, not_evaluated=skipped)


def _tables(collected: CheckInput) -> list[_Table]:
    """The root table (readable submissions only) and every repeat's, as one frame each.

    Consumes `collected`: its batches are dropped as they are joined up."""
    plan, parts = collected.plan, collected.parts
    questions = [f for f in collected.schema.fields if f.kind not in (STRUCTURE, REPEAT)]
    tables: list[_Table] = []
    instances: dict[str | None, pl.DataFrame] = {}  # repeat path -> KEY, _INSTANCE
    for table in plan.tables:
        empty = pl.DataFrame(schema={s: pl.String for s in table.sources})
        # The batches are let go as each table is joined up: held once, not twice.
        batches = parts.pop(table.name, [])
        frame = pl.concat(batches, how="diagonal_relaxed") if batches else empty
        del batches
        if table.repeat_path is None:
            frame = frame.filter(pl.col(STATUS).is_null())  # unreadable data has no answers
            frame = frame.with_columns(pl.col(KEY).alias(_INSTANCE), pl.lit("").alias(_ROW))
        else:
            parents = instances[table.parent_repeat].rename({KEY: PARENT_KEY})
            frame = frame.join(parents, on=PARENT_KEY, how="inner", maintain_order="left")
            frame = frame.with_columns(
                pl.col(KEY).str.slice(pl.col(_INSTANCE).str.len_chars()).alias(_ROW)
            )
        instances[table.repeat_path] = frame.select(KEY, _INSTANCE)
        fields = {
            f.path: f
            for f in questions
            if f.parent_repeat == table.repeat_path and f.path in frame.columns
        }
        tables.append(_Table(table.repeat_path, fields, frame))
    return tables


def _other_pairs(schema: FormSchema, questions: Sequence[Field]) -> set[str]:
    """Selects with an "other" choice and their "specify" text beside them (_other_specify)."""
    found: set[str] = set()
    for select in questions:
        if select.kind not in ("select1", "select") or not select.choice_list:
            continue
        choices = schema.choices.get(select.choice_list, [])
        if not any(c.name.casefold() in _OTHER_VALUES for c in choices):
            continue
        texts = {
            f.path
            for f in questions
            if f.kind == "string"
            and f.parent_repeat == select.parent_repeat
            and any(f.name == select.name + suffix for suffix in _OTHER_SUFFIXES)
        }
        if texts:
            found |= {select.path, *texts}
    return found


def _reported(frame: pl.DataFrame, since: datetime | None) -> set[str]:
    if since is None:
        return set(frame.get_column(KEY).to_list())
    moments = frame.select(KEY, to_utc_datetime(pl.col(SUBMISSION_DATE)).alias("at"))
    utc = since if since.tzinfo is not None else since.replace(tzinfo=UTC)  # none given: UTC
    return set(moments.filter(pl.col("at") >= utc).get_column(KEY).to_list())


def _resolve(
    fields: Mapping[str, Field], names: Sequence[str], where: str = " outside repeats"
) -> list[Field]:
    found = []
    for name in names:
        path = name if name.startswith("/") else None
        match = (
            fields.get(path) if path else next((f for f in fields.values() if f.name == name), None)
        )
        if match is None:
            raise ValueError(f'The form has no question "{name}"{where}')
        found.append(match)
    return found


def _normal(text: str) -> str:
    """Case, accents and spacing do not make two names different."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _duplicates(
    frame: pl.DataFrame,
    reported: set[str],
    fields: Mapping[str, Field],
    schema: FormSchema,
    settings: CheckSettings,
    out: list[Suggestion],
    skipped: list[NotEvaluated],
) -> None:
    if settings.duplicate_fields is not None:
        chosen = _resolve(fields, settings.duplicate_fields)
    else:
        chosen = [
            f
            for f in fields.values()
            if f.personal and (f.kind in _FUZZY_KINDS or f.kind in _EXACT_KINDS)
        ]
    if not chosen:
        skipped.append(
            NotEvaluated(
                "duplicate",
                None,
                "no fields to compare: name them in duplicateFields",
                "no_duplicate_fields",
            )
        )
        return
    fuzzy = [f.path for f in chosen if f.kind in _FUZZY_KINDS]
    exact = [f.path for f in chosen if f.kind not in _FUZZY_KINDS]
    rows = frame.select(KEY, SUBMISSION_DATE, *[pl.col(p) for p in chosen_paths(chosen)])
    groups: dict[tuple[str, ...], list[tuple[str, str, list[str]]]] = {}
    for row in rows.iter_rows(named=True):
        texts = [_normal(row[p] or "") for p in fuzzy]
        if not any(texts) and not any(row[p] for p in exact):
            continue
        # Equal exact fields first, then the fuzzy texts' first letter: fewer pairs to compare.
        block = tuple(row[p] or "" for p in exact) + tuple(t[:1] for t in texts[:1])
        groups.setdefault(block, []).append((row[KEY], row[SUBMISSION_DATE], texts))
    names = ", ".join(f.name for f in chosen)
    for members in groups.values():
        for first, second in combinations(sorted(members, key=lambda m: m[1]), 2):
            ratios = [_ratio(a, b) for a, b in zip(first[2], second[2], strict=True)]
            if all(r >= settings.duplicate_ratio for r in ratios) and second[0] in reported:
                similarity = min(ratios, default=1.0)
                out.append(
                    Suggestion(
                        check="duplicate",
                        instance_id=second[0],
                        field=None,
                        value=None,
                        suggested_value=None,
                        reason=(
                            f"possible duplicate of {first[0]} ({names}; "
                            f"similarity {similarity:.2f})"
                        ),
                        related=[first[0]],
                    )
                )


def chosen_paths(fields: Sequence[Field]) -> list[str]:
    return list(dict.fromkeys(f.path for f in fields))


def _outliers(
    tables: Sequence[_Table],
    reported: set[str],
    settings: CheckSettings,
    out: list[Suggestion],
    skipped: list[NotEvaluated],
) -> None:
    every = {path: f for table in tables for path, f in table.fields.items()}
    if settings.outlier_fields is not None:
        chosen = {f.path for f in _resolve(every, settings.outlier_fields, "")}
    else:
        chosen = {f.path for f in every.values() if f.kind in _NUMERIC_KINDS}
    for table in tables:
        for field in (f for path, f in table.fields.items() if path in chosen):
            _field_outliers(table, field, reported, settings, out, skipped)


def _field_outliers(
    table: _Table,
    field: Field,
    reported: set[str],
    settings: CheckSettings,
    out: list[Suggestion],
    skipped: list[NotEvaluated],
) -> None:
    """Tukey's fences over every answer to the field (in a repeat: every instance's)."""
    values = table.frame.select(
        _INSTANCE,
        _ROW,
        pl.col(field.path).alias("text"),
        pl.col(field.path).str.strip_chars().cast(pl.Float64, strict=False).alias("x"),
    ).filter(pl.col("x").is_not_null() & pl.col("x").is_finite())
    if values.height < _MIN_OUTLIER_VALUES:
        skipped.append(
            NotEvaluated(
                "outlier",
                field.path,
                f"fewer than {_MIN_OUTLIER_VALUES} numbers",
                "too_few_numbers",
            )
        )
        return
    q1 = values.get_column("x").quantile(0.25, "linear")
    q3 = values.get_column("x").quantile(0.75, "linear")
    assert q1 is not None
    assert q3 is not None
    spread = q3 - q1
    if spread == 0:
        skipped.append(
            NotEvaluated("outlier", field.path, "the middle half is one value", "no_spread")
        )
        return
    low, high = q1 - settings.outlier_fence * spread, q3 + settings.outlier_fence * spread
    outside = values.filter((pl.col("x") < low) | (pl.col("x") > high))
    for instance, row, text, _ in outside.iter_rows():
        if instance in reported:
            out.append(
                Suggestion(
                    check="outlier",
                    instance_id=instance,
                    field=table.target(row, field),
                    value=text,
                    suggested_value=None,
                    reason=(
                        f"{field.name} {text} is outside {low:g} to {high:g} "
                        f"({settings.outlier_fence:g} interquartile ranges beyond the "
                        f"quartiles of {values.height} answers)"
                    ),
                    repeat_key=table.repeat_key(instance, row),
                )
            )


def _constraints(
    tables: Sequence[_Table],
    reported: set[str],
    constraints: Mapping[str, str],
    out: list[Suggestion],
    skipped: list[NotEvaluated],
) -> None:
    for path, expression in constraints.items():
        table = next((t for t in tables if path in t.fields), None)
        if table is None:
            skipped.append(
                NotEvaluated(
                    "constraint", path, "the form has no such question", "no_such_question"
                )
            )
            continue
        try:
            holds = compile_constraint(expression)
        except (NotEvaluable, re.error) as error:
            skipped.append(
                NotEvaluated(
                    "constraint", path, f"{expression}: {error}", "constraint_not_evaluable"
                )
            )
            continue
        field = table.fields[path]
        for instance, row, value in table.frame.select(_INSTANCE, _ROW, path).iter_rows():
            if value is not None and instance in reported and not holds(value):
                out.append(
                    Suggestion(
                        check="constraint",
                        instance_id=instance,
                        field=table.target(row, field),
                        value=value,
                        suggested_value=None,
                        reason=f"breaks the form's constraint {expression}",
                        repeat_key=table.repeat_key(instance, row),
                    )
                )


def _other_specify(
    table: _Table,
    reported: set[str],
    schema: FormSchema,
    settings: CheckSettings,
    out: list[Suggestion],
) -> None:
    """A select answered "other" whose specify text (a sibling question named
    <select>_other ...) matches a listed choice, in the same row."""
    fields = table.fields
    for select in fields.values():
        if select.kind not in ("select1", "select") or not select.choice_list:
            continue
        choices = schema.choices.get(select.choice_list, [])
        others = {c.name for c in choices if c.name.casefold() in _OTHER_VALUES}
        text_field = next(
            (
                f
                for f in fields.values()
                if f.kind == "string"
                and any(f.name == select.name + suffix for suffix in _OTHER_SUFFIXES)
            ),
            None,
        )
        if not others or text_field is None:
            continue
        # (choice name, its label, a normalised text it is known by) for every listed choice.
        listed = []
        for choice in choices:
            if choice.name in others:
                continue
            label = next(iter(choice.labels.values()), choice.name)
            for known in {choice.name, *choice.labels.values()}:
                listed.append((choice.name, label, _normal(known)))
        rows = table.frame.select(_INSTANCE, _ROW, select.path, text_field.path).iter_rows()
        for instance, row, chosen, written in rows:
            if instance not in reported or not chosen or not written:
                continue
            tokens = chosen.split()
            if not others & set(tokens):
                continue
            typed = _normal(written)
            best = max(listed, key=lambda item: _ratio(typed, item[2]), default=None)
            if best is None or _ratio(typed, best[2]) < settings.other_ratio:
                continue
            if select.kind == "select1":
                suggested = best[0]
            else:
                suggested = " ".join(dict.fromkeys(best[0] if t in others else t for t in tokens))
            out.append(
                Suggestion(
                    check="other",
                    instance_id=instance,
                    field=table.target(row, select),
                    value=chosen,
                    suggested_value=suggested,
                    reason=(
                        f'the "other, specify" answer "{written}" '
                        f"({table.target(row, text_field)}) "
                        f'is the listed choice "{best[1]}"'
                    ),
                    repeat_key=table.repeat_key(instance, row),
                )
            )


def _durations(
    frame: pl.DataFrame,
    reported: set[str],
    fields: Mapping[str, Field],
    settings: CheckSettings,
    out: list[Suggestion],
    skipped: list[NotEvaluated],
) -> None:
    start = fields.get("/start")
    end = fields.get("/end")
    if start is None or end is None:
        skipped.append(
            NotEvaluated("duration", None, "the form has no start and end", "no_start_end")
        )
        return
    moments = frame.select(
        KEY,
        to_utc_datetime(pl.col(start.path)).alias("start"),
        to_utc_datetime(pl.col(end.path)).alias("end"),
    ).with_columns(((pl.col("end") - pl.col("start")).dt.total_seconds() / 60).alias("minutes"))
    short = moments.filter(pl.col("minutes") < settings.min_minutes)
    for key, _, _, minutes in short.iter_rows():
        if key not in reported:
            continue
        why = (
            "the interview ended before it started"
            if minutes < 0
            else f"the interview took {minutes:.1f} minutes (start to end), "
            f"under {settings.min_minutes:g}"
        )
        out.append(
            Suggestion(
                check="duration",
                instance_id=key,
                field=None,
                value=None,
                suggested_value=None,
                reason=why,
            )
        )
