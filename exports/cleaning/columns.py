"""The cleaning log applied to batches that arrive in columns (the analysis copy).

A cleaned export of a large form reads the analysis copy like a raw one; the
log is applied to the raw frames each batch tabulates to, so no record is
decoded. An entry becomes a cell: the table of the field's closest repeat, the
row whose KEY is the submission's instance id followed by the field's path up
to its last repeat index ("uuid:1/household[2]"), the column named by the
field's path without indices ("/household/age"). As in `apply_cleaning`, a
later entry for the same answer wins, an empty new value is an empty answer
(null), an entry whose row does not exist changes nothing, and a submission
with an entry without a field is left out with its repeat rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from exports.cleaning.paths import field_steps
from exports.plan import KEY, PARENT_KEY, ExportPlan
from exports.records import TabulatedBatch

if TYPE_CHECKING:
    from exports.cleaning.log import CleaningChange

__all__ = ["CleanedBatch", "ColumnarLog", "columnar_log"]


@dataclass(frozen=True, slots=True)
class ColumnarLog:
    """The log as cells: submissions left out, and (repeat path, column) -> KEY -> value."""

    removed: frozenset[str]
    cells: dict[tuple[str | None, str], dict[str, str | None]] = field(default_factory=dict)


def columnar_log(log: Sequence[CleaningChange]) -> ColumnarLog:
    removed = frozenset(change.instance_id for change in log if change.field is None)
    cells: dict[tuple[str | None, str], dict[str, str | None]] = {}
    for change in log:
        if change.field is None or change.instance_id in removed:
            continue
        steps = field_steps(change.field)
        last_repeat = max(
            (i for i, (_, index) in enumerate(steps) if index is not None), default=-1
        )
        names = [name for name, _ in steps]
        repeat_path = "/" + "/".join(names[: last_repeat + 1]) if last_repeat >= 0 else None
        row_path = "".join(
            f"/{name}" if index is None else f"/{name}[{index}]"
            for name, index in steps[: last_repeat + 1]
        )
        column = "/" + "/".join(names)
        cells.setdefault((repeat_path, column), {})[change.instance_id + row_path] = (
            change.new_value or None
        )
    return ColumnarLog(removed, cells)


class CleanedBatch(TabulatedBatch):
    """A tabulated batch with the log applied to its frames."""

    def __init__(self, inner: TabulatedBatch, log: ColumnarLog) -> None:
        self._inner = inner
        self._log = log

    def __len__(self) -> int:
        return len(self._inner)

    def tabulate(self, plan: ExportPlan) -> dict[str, pl.DataFrame]:
        frames = self._inner.tabulate(plan)
        # Keys of the rows left out, by repeat path: a removed row's children go too.
        gone: dict[str | None, pl.Series] = {}
        result = {}
        for table in plan.tables:
            frame = frames[table.name]
            if self._log.removed:
                if table.repeat_path is None:
                    out = pl.col(KEY).is_in(list(self._log.removed))
                else:
                    out = pl.col(PARENT_KEY).is_in(gone[table.parent_repeat].implode())
                gone[table.repeat_path] = frame.filter(out).get_column(KEY)
                frame = frame.filter(~out)
            result[table.name] = _set_cells(frame, table.repeat_path, self._log)
        return result


def _set_cells(frame: pl.DataFrame, repeat_path: str | None, log: ColumnarLog) -> pl.DataFrame:
    changed = []
    for (path, column), values in log.cells.items():
        if path != repeat_path or column not in frame.columns:
            continue
        dtype = frame.schema[column]
        new = pl.col(KEY).replace_strict(values, default=None, return_dtype=dtype)
        changed.append(
            pl.when(pl.col(KEY).is_in(list(values)))
            .then(new)
            .otherwise(pl.col(column))
            .alias(column)
        )
    return frame.with_columns(changed) if changed else frame
