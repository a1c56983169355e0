"""What an analysis copy stores: the raw columns of every table of the form."""

from __future__ import annotations

import hashlib
import re

import msgspec

from exports.options import ExportOptions
from exports.plan import KEY, PARENT_KEY, ExportPlan, TablePlan, plan_export
from forms.schema import FormSchema

__all__ = [
    "DEF",
    "ENCRYPTED",
    "FORM_DEF",
    "ORDER",
    "SUBMISSION",
    "copy_plan",
    "layout_key",
    "stored_columns",
    "table_folder",
]

# Columns of our own beside the raw ones: the submission and version a row
# came from, and (repeats) the row's place within its submission.
SUBMISSION = "__submission"
DEF = "__def"
ORDER = "__order"
# On the root table, what never changes about a version once it is stored: the
# form version it was sent for, and whether it came encrypted. With them an
# export reads only the narrow `submissions` rows for what changes, never the
# wide version rows (XML, record) of every submission.
FORM_DEF = "__form_def"
ENCRYPTED = "__encrypted"
# Bumped when the files' own columns change, so copies written before are rebuilt.
_FORMAT = 2

# Every field, nothing escaped or dropped: options act later, when an export
# shapes the raw frames (exports.tabulate.shape_table).
_COPY_OPTIONS = ExportOptions(escape_formulas=False)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def copy_plan(schema: FormSchema) -> ExportPlan:
    """The plan a copy is written with: `schema` should merge every published version."""
    return plan_export(schema, _COPY_OPTIONS)


def stored_columns(table: TablePlan) -> list[str]:
    """The raw columns a segment keeps for `table`: answers, and keys for repeats.

    The root table's system columns (submission date, review state ...) are
    not stored: they come from the database at read time, where they change.
    """
    answers = [source for source in table.sources if source.startswith("/")]
    if table.repeat_path is None:
        return answers
    return [KEY, PARENT_KEY, *answers]


def layout_key(plan: ExportPlan) -> str:
    """Changes whenever the copy's tables or columns would: the copy is then rebuilt."""
    shape = [_FORMAT, *((t.name, t.repeat_path, stored_columns(t)) for t in plan.tables)]
    return hashlib.sha256(msgspec.json.encode(shape)).hexdigest()[:32]


def table_folder(table: TablePlan) -> str:
    """The table's folder name among the copy's objects (a readable, safe name)."""
    return _UNSAFE.sub("_", table.name)
