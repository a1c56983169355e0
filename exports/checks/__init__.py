"""Data checks that suggest cleaning log entries (they never change anything themselves).

    CheckRound(schema, settings, constraints).add(batch) ... .report() -> CheckReport
    run_checks(schema, batches, settings, constraints) -> CheckReport

Checks: possible duplicates (the same person registered twice: fuzzy text,
equal dates and choices), numeric outliers (Tukey's fences on the quartiles),
answers that break a constraint of the current form version (exports.checks.
constraint), "other, specify" answers that match a listed choice, and
interviews shorter than a minimum by their start and end. Each suggestion
names the submission and field an entry would clean, so a client accepts it
by posting it to the cleaning log. A round is fed a batch at a time and holds
only what the checks need across batches (exports.checks.round).
"""

from exports.checks.report import (
    CHECKS,
    CheckReport,
    CheckSettings,
    NotEvaluated,
    Suggestion,
)
from exports.checks.round import CheckRound
from exports.checks.run import CheckInput, run_checks

__all__ = [
    "CHECKS",
    "CheckInput",
    "CheckReport",
    "CheckRound",
    "CheckSettings",
    "NotEvaluated",
    "Suggestion",
    "run_checks",
]
