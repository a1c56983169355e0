"""A check round fed one batch at a time: memory bounded by the batch, not the form.

    round = CheckRound(schema, settings, constraints)
    for batch in batches: round.add(batch)
    if round.needs_second_pass():        # many outliers in a field, or people
        for batch in batches: round.add_again(batch)
    report = round.report()

A batch holds whole submissions (their repeat rows with them), so each
batch's repeat rows are joined to their submission within the batch. The
checks (exports.checks.checkers) run on the batch and keep their findings in
row order; nothing is kept per submission but what a check needs across
batches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC

import msgspec
import polars as pl

from exports.checks.checkers import (
    INSTANCE,
    REPORTED,
    ROW,
    Checker,
    Constraints,
    Duplicates,
    Durations,
    OtherSpecify,
    Outliers,
    TableShape,
    other_pairs,
    resolve,
)
from exports.checks.constraint import NotEvaluable
from exports.checks.report import (
    CHECKS,
    EXACT_KINDS,
    FUZZY_KINDS,
    NUMERIC_KINDS,
    CheckReport,
    CheckSettings,
    NotEvaluated,
    NotEvaluatedReason,
    Suggestion,
)
from exports.options import ExportOptions
from exports.plan import KEY, PARENT_KEY, STATUS, SUBMISSION_DATE, ExportPlan, plan_export
from exports.records import ExportRecord
from exports.tabulate import tabulate_batch
from exports.typed import to_utc_datetime
from forms.schema import REPEAT, STRUCTURE, FormSchema

__all__ = ["DUPLICATE_ROWS", "EXTREMES", "CheckRound", "checked_paths"]

# Rows with a duplicate field answered that are held for the comparison; more
# (hundreds of thousands of people) cost a second pass for the shared blocks.
DUPLICATE_ROWS = 200_000

# Rows kept at each end of an outlier field's numbers while the fences are not
# known yet; more findings than this on one side cost a second pass.
EXTREMES = 10_000

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
                if f.personal and (f.kind in FUZZY_KINDS or f.kind in EXACT_KINDS)
            }
    if "outlier" in wanted:
        if settings.outlier_fields is not None:
            kept |= named(settings.outlier_fields)
        else:
            kept |= {f.path for f in questions if f.kind in NUMERIC_KINDS}
    if "constraint" in wanted:
        kept |= set(constraints)
    if "other" in wanted:
        for table in _shapes(schema):
            for select, text, _ in other_pairs(schema, table):
                kept |= {select.path, text.path}
    if "duration" in wanted:
        kept |= {"/start", "/end"}
    return frozenset(kept)


def _shapes(schema: FormSchema) -> list[TableShape]:
    """The export's tables (root first, a repeat after its parent) with their questions."""
    questions = [f for f in schema.fields if f.kind not in (STRUCTURE, REPEAT)]
    shapes = []
    for table in plan_export(schema, ExportOptions()).tables:
        sources = set(table.sources)
        fields = {
            f.path: f
            for f in questions
            if f.parent_repeat == table.repeat_path and f.path in sources
        }
        shapes.append(TableShape(table.name, table.repeat_path, table.parent_repeat, fields))
    return shapes


class CheckRound:
    """The checks over a form's submissions, given a batch at a time.

    Settings naming unknown checks or questions raise ValueError here, before
    any batch is read. With settings.since, suggestions are made for the
    submissions received since then alone, still compared with all of them
    (new submissions' run).
    """

    def __init__(
        self,
        schema: FormSchema,
        settings: CheckSettings | None = None,
        constraints: Mapping[str, str] | None = None,
        *,
        extremes: int = EXTREMES,
        duplicate_rows: int = DUPLICATE_ROWS,
    ) -> None:
        settings = settings or CheckSettings()
        constraints = constraints or {}
        unknown = [c for c in settings.checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"Unknown checks: {', '.join(unknown)}; known: {', '.join(CHECKS)}")
        self.kept = checked_paths(schema, settings, constraints)
        self.plan = _narrowed(plan_export(schema, ExportOptions()), self.kept)
        self.shapes = _shapes(schema)
        self.checked = 0
        self._reported = _reported_expr(settings)
        self._skipped: dict[str, list[NotEvaluated]] = {check: [] for check in CHECKS}
        wanted = set(settings.checks)
        root = self.shapes[0]
        self.duplicates: Duplicates | None = None
        if "duplicate" in wanted:
            self.duplicates = self._duplicates(root, settings, duplicate_rows)
        self.outliers: list[Outliers] = []
        if "outlier" in wanted:
            self.outliers = self._outliers(settings, extremes)
        self.constraints: list[Constraints] = []
        if "constraint" in wanted:
            self.constraints = self._constraints(constraints)
        self.others: list[OtherSpecify] = []
        if "other" in wanted:
            self.others = [
                OtherSpecify(index, table, pair, schema, settings)
                for index, table in enumerate(self.shapes)
                for pair in other_pairs(schema, table)
            ]
        self.durations: Durations | None = None
        if "duration" in wanted:
            start, end = root.fields.get("/start"), root.fields.get("/end")
            if start is None or end is None:
                self._skip("duration", None, "the form has no start and end", "no_start_end")
            else:
                self.durations = Durations(start, end, settings)
        self._finished = False

    def _skip(self, check: str, field: str | None, why: str, reason: NotEvaluatedReason) -> None:
        self._skipped[check].append(NotEvaluated(check, field, why, reason))

    def _duplicates(
        self, root: TableShape, settings: CheckSettings, budget: int
    ) -> Duplicates | None:
        if settings.duplicate_fields is not None:
            chosen = resolve(root.fields, settings.duplicate_fields)
        else:
            chosen = [
                f
                for f in root.fields.values()
                if f.personal and (f.kind in FUZZY_KINDS or f.kind in EXACT_KINDS)
            ]
        if not chosen:
            why = "no fields to compare: name them in duplicateFields"
            self._skip("duplicate", None, why, "no_duplicate_fields")
            return None
        return Duplicates(chosen, settings, budget)

    def _outliers(self, settings: CheckSettings, extremes: int) -> list[Outliers]:
        every = {path: f for table in self.shapes for path, f in table.fields.items()}
        if settings.outlier_fields is not None:
            chosen = {f.path for f in resolve(every, settings.outlier_fields, "")}
        else:
            chosen = {f.path for f in every.values() if f.kind in NUMERIC_KINDS}
        return [
            Outliers(index, table, field, settings.outlier_fence, extremes)
            for index, table in enumerate(self.shapes)
            for path, field in table.fields.items()
            if path in chosen
        ]

    def _constraints(self, constraints: Mapping[str, str]) -> list[Constraints]:
        found = []
        for path, expression in constraints.items():
            index = next((i for i, t in enumerate(self.shapes) if path in t.fields), None)
            if index is None:
                self._skip("constraint", path, "the form has no such question", "no_such_question")
                continue
            table = self.shapes[index]
            try:
                found.append(Constraints(index, table, table.fields[path], expression))
            except (NotEvaluable, re.error) as error:
                why = f"{expression}: {error}"
                self._skip("constraint", path, why, "constraint_not_evaluable")
        return found

    def add(self, batch: Sequence[ExportRecord]) -> None:
        """Check one batch of submissions (whole: each with its repeat rows)."""
        if batch:
            self.add_tables(tabulate_batch(self.plan, batch))

    def add_tables(self, frames: Mapping[str, pl.DataFrame]) -> None:
        """Check one batch already tabulated (exports.tabulate.tabulate_batch's frames)."""
        tables = self._tables(frames)
        self.checked += tables[0].height
        checkers: list[Checker | None] = [
            self.duplicates,
            *self.outliers,
            *self.constraints,
            *self.others,
            self.durations,
        ]
        for checker in checkers:
            if checker is not None:
                checker.add(tables)

    def needs_second_pass(self) -> bool:
        """Whether the batches must be given again (add_again): an outlier field
        with more findings than the rows kept at its ends, or more people to
        compare than DUPLICATE_ROWS. Ends the first pass."""
        if not self._finished:
            self._finished = True
            if self.duplicates is not None:
                self.duplicates.finish()
            for outliers in self.outliers:
                outliers.finish(self._skipped["outlier"])
        again = self.duplicates is not None and self.duplicates.second_pass
        return again or any(outliers.second_pass for outliers in self.outliers)

    def add_again(self, batch: Sequence[ExportRecord]) -> None:
        if batch:
            self.add_tables_again(tabulate_batch(self.plan, batch))

    def add_tables_again(self, frames: Mapping[str, pl.DataFrame]) -> None:
        tables = self._tables(frames)
        if self.duplicates is not None:
            self.duplicates.add_again(tables)
        for outliers in self.outliers:
            outliers.add_again(tables)

    def report(self) -> CheckReport:
        self.needs_second_pass()
        found: list[Suggestion] = []
        if self.duplicates is not None:
            self.duplicates.finish_again()
            found += self.duplicates.found
        checkers: list[Checker] = [*self.outliers, *self.constraints, *self.others]
        for checker in checkers:
            found += checker.found
        if self.durations is not None:
            found += self.durations.found
        skipped = [n for check in CHECKS for n in self._skipped[check]]
        return CheckReport(checked=self.checked, suggestions=found, not_evaluated=skipped)

    def _tables(self, frames: Mapping[str, pl.DataFrame]) -> list[pl.DataFrame]:
        """The batch's tables: the root's readable rows, each repeat's rows of
        those submissions, every row with its INSTANCE, ROW and REPORTED."""
        tables: list[pl.DataFrame] = []
        parents: dict[str | None, pl.DataFrame] = {}  # repeat path -> KEY, INSTANCE, REPORTED
        for shape in self.shapes:
            frame = frames[shape.name]
            frame = frame.select(c for c in frame.columns if c in self.kept)
            if shape.repeat_path is None:
                frame = frame.filter(pl.col(STATUS).is_null())  # unreadable data has no answers
                frame = frame.with_columns(
                    pl.col(KEY).alias(INSTANCE), pl.lit("").alias(ROW), self._reported
                )
            else:
                above = parents[shape.parent_repeat].rename({KEY: PARENT_KEY})
                frame = frame.join(above, on=PARENT_KEY, how="inner", maintain_order="left")
                frame = frame.with_columns(
                    pl.col(KEY).str.slice(pl.col(INSTANCE).str.len_chars()).alias(ROW)
                )
            parents[shape.repeat_path] = frame.select(KEY, INSTANCE, REPORTED)
            tables.append(frame)
        return tables


def _narrowed(plan: ExportPlan, kept: frozenset[str]) -> ExportPlan:
    """The plan with only the columns the checks read: a batch is tabulated (and
    a copied segment projected) to those, not to the form's every question."""
    tables = tuple(
        msgspec.structs.replace(table, columns=tuple(c for c in table.columns if c.source in kept))
        for table in plan.tables
    )
    return msgspec.structs.replace(plan, tables=tables)


def _reported_expr(settings: CheckSettings) -> pl.Expr:
    """Whether a root row gets suggestions: received since settings.since."""
    reported = pl.lit(True)
    if settings.since is not None:
        since = settings.since
        utc = since if since.tzinfo is not None else since.replace(tzinfo=UTC)  # none given: UTC
        at = to_utc_datetime(pl.col(SUBMISSION_DATE))
        reported = reported & (at >= utc).fill_null(False)
    return reported.alias(REPORTED)
