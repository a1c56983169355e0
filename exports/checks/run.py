"""Running the checks over batches given at once (settings checks, tests, small forms).

A server round reads a form's batches itself and feeds them to a CheckRound
(exports.checks.round) as they arrive; run_checks does the same for batches
it is handed, and reads them twice when the round asks for a second pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from exports.checks.report import (
    CHECKS,
    CheckReport,
    CheckSettings,
    NotEvaluated,
    NotEvaluatedReason,
    Suggestion,
)
from exports.checks.round import CheckRound, checked_paths
from exports.options import ExportOptions
from exports.plan import plan_export
from exports.records import ExportRecord
from exports.tabulate import tabulate_batch
from forms.schema import FormSchema

__all__ = [
    "CHECKS",
    "CheckInput",
    "CheckReport",
    "CheckSettings",
    "NotEvaluated",
    "NotEvaluatedReason",
    "Suggestion",
    "checked_paths",
    "run_checks",
]


class CheckInput:
    """A form's tables for the checks, tabulated a batch at a time and held.

    Given the settings and constraints the checks will run with, each batch
    keeps only the columns they read.
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

    def batches(self) -> list[dict[str, pl.DataFrame]]:
        """The held batches, each as its tables by name."""
        names = list(self.parts)
        count = len(self.parts[names[0]]) if names else 0
        return [{name: self.parts[name][i] for name in names} for i in range(count)]


def run_checks(
    schema: FormSchema,
    batches: Iterable[Sequence[ExportRecord]] | CheckInput,
    settings: CheckSettings | None = None,
    constraints: Mapping[str, str] | None = None,
) -> CheckReport:
    """Suggestions for the submissions in `batches`; `constraints` maps field paths to
    the current form version's constraint expressions (forms.xform.bind_constraints).

    Outliers, constraints and "other, specify" are checked in repeats too, per
    repeat instance. With settings.since, suggestions are made for the
    submissions received since then alone, still compared with all of them.
    """
    checks = CheckRound(schema, settings, constraints)
    if not isinstance(batches, CheckInput):
        collected = CheckInput(schema, settings, constraints)
        for batch in batches:
            collected.add(batch)
        batches = collected
    held = batches.batches()
    for tables in held:
        checks.add_tables(tables)
    if checks.needs_second_pass():
        for tables in held:
            checks.add_tables_again(tables)
    return checks.report()
