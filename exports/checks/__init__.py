"""Data checks that suggest cleaning log entries (they never change anything themselves).

    run_checks(schema, batches, settings, constraints) -> CheckReport

Checks: possible duplicates (the same person registered twice: fuzzy text,
equal dates and choices), numeric outliers (Tukey's fences on the quartiles),
answers that break a constraint of the current form version (exports.checks.
constraint), "other, specify" answers that match a listed choice, and
interviews shorter than a minimum by their start and end. Each suggestion
names the submission and field an entry would clean, so a client accepts it
by posting it to the cleaning log.
"""

from exports.checks.run import (
    CHECKS,
    CheckInput,
    CheckReport,
    CheckSettings,
    NotEvaluated,
    Suggestion,
    run_checks,
)

__all__ = [
    "CHECKS",
    "CheckInput",
    "CheckReport",
    "CheckSettings",
    "NotEvaluated",
    "Suggestion",
    "run_checks",
]
