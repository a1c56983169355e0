"""The checks, each fed one batch of tables at a time and holding only what it must.

Every checker receives a batch's tables (exports.checks.round: the root's
readable rows and every repeat's, each row with the submission it belongs to,
its cleaning-log path and whether it is reported) and keeps its suggestions in
row order, so a round over many batches finds what one over a single batch
finds. What crosses batches is small: the duplicate check's blocking columns
for the rows that have any, and per outlier field how often each number was
answered and the most extreme rows seen so far.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

import polars as pl

from exports.checks.constraint import compile_constraint
from exports.checks.report import (
    FUZZY_KINDS,
    MIN_OUTLIER_VALUES,
    OTHER_SUFFIXES,
    OTHER_VALUES,
    CheckSettings,
    NotEvaluated,
    Suggestion,
)
from exports.plan import KEY, SUBMISSION_DATE
from exports.typed import to_utc_datetime
from forms.schema import Field, FormSchema

__all__ = [
    "INSTANCE",
    "REPORTED",
    "ROW",
    "Checker",
    "Constraints",
    "Duplicates",
    "Durations",
    "OtherSpecify",
    "Outliers",
    "TableShape",
]

# Columns the round adds to every table: the submission a row belongs to, the
# cleaning-log path of the row ("" for the root, "/household[2]" in a repeat),
# and whether suggestions are made for it (settings.since, `only`).
INSTANCE = "@instance"
ROW = "@row"
REPORTED = "@reported"


class Checker(Protocol):
    """One check over a round's batches: fed each batch's tables, findings in row order."""

    found: list[Suggestion]

    def add(self, tables: Sequence[pl.DataFrame]) -> None: ...


@dataclass(frozen=True, slots=True)
class TableShape:
    """One table of the export's shape, with the questions that are its columns."""

    name: str
    repeat_path: str | None
    parent_repeat: str | None
    fields: dict[str, Field]

    def target(self, row: str, field: Field) -> str:
        """The cleaning-log path of `field`'s answer in the row with path `row`."""
        return row + field.path[len(self.repeat_path or "") :]

    def repeat_key(self, instance: str, row: str) -> str | None:
        return None if self.repeat_path is None else instance + row


def normal(text: str) -> str:
    """Case, accents and spacing do not make two names different."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


class Duplicates:
    """The same person registered twice: equal exact fields, alike texts.

    Rows are blocked by their exact fields and the first letter of the first
    text; only blocks of two or more rows are compared. Up to `budget` rows
    (those with any of the fields answered) are held as a frame; beyond that
    only each row's block hash is (8 bytes a row), and a second pass
    (`add_again`) takes the rows of the blocks that hold more than one.
    """

    def __init__(self, chosen: Sequence[Field], settings: CheckSettings, budget: int) -> None:
        self.chosen = chosen
        self.fuzzy = [f.path for f in chosen if f.kind in FUZZY_KINDS]
        self.exact = [f.path for f in chosen if f.kind not in FUZZY_KINDS]
        self.paths = list(dict.fromkeys(f.path for f in chosen))
        self.ratio = settings.duplicate_ratio
        self.blocks = [f"e{i}" for i in range(len(self.exact))] + (["b"] if self.fuzzy else [])
        self.budget = budget
        self.parts: list[pl.DataFrame] | None = []  # None: over budget, hashes only
        self.held = 0
        self.hashes: list[pl.Series] = []
        self.shared: pl.Series | None = None  # hashes of blocks of more than one row
        self.second_pass = False
        self.found: list[Suggestion] = []

    def _rows(self, tables: Sequence[pl.DataFrame]) -> pl.DataFrame | None:
        """The batch's rows with any of the fields answered, normalised and blocked."""
        rows = tables[0].select(KEY, SUBMISSION_DATE, REPORTED, *self.paths)
        kept: list[tuple[object, ...]] = []
        for row in rows.iter_rows(named=True):
            texts = [normal(row[p] or "") for p in self.fuzzy]
            if not any(texts) and not any(row[p] for p in self.exact):
                continue
            # Equal exact fields first, then the fuzzy texts' first letter: fewer pairs to compare.
            block = [row[p] or "" for p in self.exact] + [t[:1] for t in texts[:1]]
            kept.append((row[KEY], row[SUBMISSION_DATE], row[REPORTED], *block, *texts))
        if not kept:
            return None
        names = [KEY, SUBMISSION_DATE, REPORTED, *self.blocks]
        names += [f"t{i}" for i in range(len(self.fuzzy))]
        schema = {n: pl.Boolean if n == REPORTED else pl.String for n in names}
        frame = pl.DataFrame(kept, schema=schema, orient="row")
        return frame.with_columns(pl.struct(self.blocks).hash().alias("hash"))

    def add(self, tables: Sequence[pl.DataFrame]) -> None:
        rows = self._rows(tables)
        if rows is None:
            return
        self.hashes.append(rows.get_column("hash"))
        if self.parts is not None:
            self.parts.append(rows)
            self.held += rows.height
            if self.held > self.budget:
                self.parts = None

    def finish(self) -> None:
        """End of the first pass: compare, or say which blocks a second pass takes."""
        hashes = pl.concat(self.hashes) if self.hashes else pl.Series("hash", [], pl.UInt64)
        self.hashes = []
        if self.parts is not None:
            self._compare(self.parts)
            return
        counts = hashes.value_counts(name="count")
        self.shared = counts.filter(pl.col("count") > 1).get_column("hash")
        self.second_pass = not self.shared.is_empty()
        self.parts = []

    def add_again(self, tables: Sequence[pl.DataFrame]) -> None:
        if not self.second_pass or self.parts is None or self.shared is None:
            return
        rows = self._rows(tables)
        if rows is not None:
            self.parts.append(rows.filter(pl.col("hash").is_in(self.shared.implode())))

    def finish_again(self) -> None:
        if self.second_pass and self.parts is not None:
            self._compare(self.parts)
            self.parts = None

    def _compare(self, parts: list[pl.DataFrame]) -> None:
        if not parts:
            return
        rows = pl.concat(parts).drop("hash")
        self.parts = []
        rows = rows.filter(pl.len().over(self.blocks) > 1)  # a block of one has no pair
        groups: dict[tuple[str, ...], list[tuple[str, str, bool, list[str]]]] = {}
        width = len(self.blocks)
        for key, date, reported, *rest in rows.iter_rows():
            block, texts = tuple(rest[:width]), list(rest[width:])
            groups.setdefault(block, []).append((key, date, reported, texts))
        names = ", ".join(f.name for f in self.chosen)
        for members in groups.values():
            for first, second in combinations(sorted(members, key=lambda m: m[1]), 2):
                ratios = [_ratio(a, b) for a, b in zip(first[3], second[3], strict=True)]
                if all(r >= self.ratio for r in ratios) and second[2]:
                    similarity = min(ratios, default=1.0)
                    self.found.append(
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


# Numbers held as they come before they are tallied (a group-by a batch costs more).
_UNTALLIED = 100_000


class Outliers:
    """Tukey's fences over every answer to one field (in a repeat: every instance's).

    The quartiles need every number: a tally of them is held (each distinct
    number and how often), not the rows. Beside them the `extremes` lowest and
    highest reported rows are kept: when the rows outside the fences are among them (almost always),
    they are the findings. Otherwise `second_pass` is set and the caller feeds
    the batches again (`add_again`), which picks the rows outside the fences.
    """

    def __init__(
        self, index: int, table: TableShape, field: Field, fence: float, extremes: int
    ) -> None:
        self.index, self.table, self.field = index, table, field
        self.fence, self.extremes = fence, extremes
        # How often each number was answered (reported or not): survey numbers
        # repeat (ages, counts, prices in cents), so this is far smaller than
        # the answers; merged whenever it doubles.
        self.numbers: list[pl.DataFrame] = []
        self.tallied = self.merged = 0
        # Reported rows that may be among the extremes, and how many; once the
        # ends are full, a row between them (`bounds`) cannot enter.
        self.kept: list[pl.DataFrame] = []
        self.held = 0
        self.bounds: tuple[float, float] | None = None
        self.rows = 0
        self.fences: tuple[float, float, int] | None = None
        self.second_pass = False
        self.found: list[Suggestion] = []

    def _values(self, tables: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """The table's rows with a finite number, each with its position in the table."""
        frame = tables[self.index]
        number = pl.col(self.field.path).str.strip_chars().cast(pl.Float64, strict=False)
        values = (
            frame.select(INSTANCE, ROW, REPORTED, self.field.path)
            .with_row_index("seq", offset=self.rows)
            .with_columns(number.alias("x"))
            .filter(pl.col("x").is_not_null() & pl.col("x").is_finite())
            .rename({self.field.path: "text"})
        )
        self.rows += frame.height
        return values

    def add(self, tables: Sequence[pl.DataFrame]) -> None:
        values = self._values(tables)
        self._tally(values.select("x", REPORTED, pl.lit(1, dtype=pl.Int64).alias("n")))
        ends = pl.col(REPORTED)
        if self.bounds is not None:
            ends = ends & ((pl.col("x") <= self.bounds[0]) | (pl.col("x") >= self.bounds[1]))
        candidates = values.filter(ends)
        self.kept.append(candidates)
        self.held += candidates.height
        if self.held > 4 * self.extremes:
            every = pl.concat(self.kept)
            lowest = every.bottom_k(self.extremes, by="x")
            highest = every.top_k(self.extremes, by="x")
            low, high = lowest.get_column("x").max(), highest.get_column("x").min()
            assert isinstance(low, float)
            assert isinstance(high, float)
            self.bounds = (low, high)
            kept = pl.concat([lowest, highest]).unique("seq")  # ties may put a row in both
            self.kept, self.held = [kept], kept.height

    def _tally(self, counts: pl.DataFrame) -> None:
        self.numbers.append(counts)
        self.tallied += counts.height
        if self.tallied > max(2 * self.merged, _UNTALLIED):
            merged = pl.concat(self.numbers).group_by("x", REPORTED).agg(pl.col("n").sum())
            self.numbers, self.tallied = [merged], merged.height
            self.merged = merged.height

    def finish(self, skipped: list[NotEvaluated]) -> None:
        schema = {"x": pl.Float64, REPORTED: pl.Boolean, "n": pl.Int64}
        tally = pl.concat(self.numbers) if self.numbers else pl.DataFrame(schema=schema)
        self.numbers = []
        total = int(tally.get_column("n").sum())
        if total < MIN_OUTLIER_VALUES:
            skipped.append(
                NotEvaluated(
                    "outlier",
                    self.field.path,
                    f"fewer than {MIN_OUTLIER_VALUES} numbers",
                    "too_few_numbers",
                )
            )
            return
        # Every answer again, one field at a time after the read: Polars' quantile
        # of the same numbers, so the fences are exactly those of the held column.
        x = tally.select(pl.col("x").repeat_by("n").explode()).get_column("x")
        q1, q3 = x.quantile(0.25, "linear"), x.quantile(0.75, "linear")
        assert q1 is not None
        assert q3 is not None
        spread = q3 - q1
        if spread == 0:
            skipped.append(
                NotEvaluated(
                    "outlier", self.field.path, "the middle half is one value", "no_spread"
                )
            )
            return
        low, high = q1 - self.fence * spread, q3 + self.fence * spread
        self.fences = (low, high, total)
        outside = (pl.col("x") < low) | (pl.col("x") > high)
        count = int(tally.filter(outside & pl.col(REPORTED)).get_column("n").sum())
        found = pl.concat(self.kept).filter(outside).sort("seq")
        self.kept = []
        if found.height == count:
            self._suggest(found)
        else:
            self.second_pass = True
            self.rows = 0

    def add_again(self, tables: Sequence[pl.DataFrame]) -> None:
        if self.fences is None or not self.second_pass:
            return
        low, high, _ = self.fences
        values = self._values(tables)
        outside = (pl.col("x") < low) | (pl.col("x") > high)
        self._suggest(values.filter(pl.col(REPORTED) & outside))

    def _suggest(self, rows: pl.DataFrame) -> None:
        assert self.fences is not None
        low, high, count = self.fences
        for instance, row, text in rows.select(INSTANCE, ROW, "text").iter_rows():
            self.found.append(
                Suggestion(
                    check="outlier",
                    instance_id=instance,
                    field=self.table.target(row, self.field),
                    value=text,
                    suggested_value=None,
                    reason=(
                        f"{self.field.name} {text} is outside {low:g} to {high:g} "
                        f"({self.fence:g} interquartile ranges beyond the "
                        f"quartiles of {count} answers)"
                    ),
                    repeat_key=self.table.repeat_key(instance, row),
                )
            )


class Constraints:
    """Answers that break a constraint of the current form version, a row at a time."""

    def __init__(self, index: int, table: TableShape, field: Field, expression: str) -> None:
        self.index, self.table, self.field, self.expression = index, table, field, expression
        self.holds: Callable[[str], bool] = compile_constraint(expression)
        self.found: list[Suggestion] = []

    def add(self, tables: Sequence[pl.DataFrame]) -> None:
        path = self.field.path
        rows = tables[self.index].filter(pl.col(REPORTED) & pl.col(path).is_not_null())
        for instance, row, value in rows.select(INSTANCE, ROW, path).iter_rows():
            if not self.holds(value):
                self.found.append(
                    Suggestion(
                        check="constraint",
                        instance_id=instance,
                        field=self.table.target(row, self.field),
                        value=value,
                        suggested_value=None,
                        reason=f"breaks the form's constraint {self.expression}",
                        repeat_key=self.table.repeat_key(instance, row),
                    )
                )


def other_pairs(schema: FormSchema, table: TableShape) -> list[tuple[Field, Field, set[str]]]:
    """Selects with an "other" choice, the "specify" text beside them in the same
    table (a sibling named <select>_other ...), and the choices meaning "other"."""
    fields = table.fields
    pairs = []
    for select in fields.values():
        if select.kind not in ("select1", "select") or not select.choice_list:
            continue
        choices = schema.choices.get(select.choice_list, [])
        others = {c.name for c in choices if c.name.casefold() in OTHER_VALUES}
        text_field = next(
            (
                f
                for f in fields.values()
                if f.kind == "string"
                and any(f.name == select.name + suffix for suffix in OTHER_SUFFIXES)
            ),
            None,
        )
        if others and text_field is not None:
            pairs.append((select, text_field, others))
    return pairs


class OtherSpecify:
    """A select answered "other" whose specify text matches a listed choice, in the same row."""

    def __init__(
        self,
        index: int,
        table: TableShape,
        pair: tuple[Field, Field, set[str]],
        schema: FormSchema,
        settings: CheckSettings,
    ) -> None:
        self.index, self.table = index, table
        self.select, self.text_field, self.others = pair
        self.ratio = settings.other_ratio
        # (choice name, its label, a normalised text it is known by) for every listed choice.
        self.listed: list[tuple[str, str, str]] = []
        for choice in schema.choices.get(self.select.choice_list or "", []):
            if choice.name in self.others:
                continue
            label = next(iter(choice.labels.values()), choice.name)
            for known in {choice.name, *choice.labels.values()}:
                self.listed.append((choice.name, label, normal(known)))
        self.found: list[Suggestion] = []

    def add(self, tables: Sequence[pl.DataFrame]) -> None:
        select, text_field, others = self.select, self.text_field, self.others
        rows = tables[self.index].filter(pl.col(REPORTED))
        for instance, row, chosen, written in rows.select(
            INSTANCE, ROW, select.path, text_field.path
        ).iter_rows():
            if not chosen or not written:
                continue
            tokens = chosen.split()
            if not others & set(tokens):
                continue
            typed = normal(written)
            best = max(self.listed, key=lambda item: _ratio(typed, item[2]), default=None)
            if best is None or _ratio(typed, best[2]) < self.ratio:
                continue
            if select.kind == "select1":
                suggested = best[0]
            else:
                suggested = " ".join(dict.fromkeys(best[0] if t in others else t for t in tokens))
            self.found.append(
                Suggestion(
                    check="other",
                    instance_id=instance,
                    field=self.table.target(row, select),
                    value=chosen,
                    suggested_value=suggested,
                    reason=(
                        f'the "other, specify" answer "{written}" '
                        f"({self.table.target(row, text_field)}) "
                        f'is the listed choice "{best[1]}"'
                    ),
                    repeat_key=self.table.repeat_key(instance, row),
                )
            )


class Durations:
    """Interviews shorter than settings.min_minutes by their start and end."""

    def __init__(self, start: Field, end: Field, settings: CheckSettings) -> None:
        self.start, self.end, self.minimum = start, end, settings.min_minutes
        self.found: list[Suggestion] = []

    def add(self, tables: Sequence[pl.DataFrame]) -> None:
        moments = tables[0].select(
            KEY,
            REPORTED,
            to_utc_datetime(pl.col(self.start.path)).alias("start"),
            to_utc_datetime(pl.col(self.end.path)).alias("end"),
        )
        minutes = ((pl.col("end") - pl.col("start")).dt.total_seconds() / 60).alias("minutes")
        short = moments.select(KEY, REPORTED, minutes).filter(
            (pl.col("minutes") < self.minimum) & pl.col(REPORTED)
        )
        for key, _, taken in short.iter_rows():
            why = (
                "the interview ended before it started"
                if taken < 0
                else f"the interview took {taken:.1f} minutes (start to end), "
                f"under {self.minimum:g}"
            )
            self.found.append(
                Suggestion(
                    check="duration",
                    instance_id=key,
                    field=None,
                    value=None,
                    suggested_value=None,
                    reason=why,
                )
            )


def resolve(
    fields: Mapping[str, Field], names: Sequence[str], where: str = " outside repeats"
) -> list[Field]:
    """The fields `names` (paths or names) stand for; ValueError names one the form lacks."""
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
