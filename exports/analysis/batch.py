"""Reading a segment back: raw frames joined with the values that change after ingest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeVar

import polars as pl

from exports.analysis.layout import DEF, ORDER, SUBMISSION
from exports.plan import KEY, STATUS, SUBMISSION_DATE, ExportPlan, TablePlan
from exports.records import ExportRecord, TabulatedBatch
from exports.tabulate import tabulate_batch

__all__ = ["META_SOURCES", "CopiedBatch", "meta_frame"]

# The root table's system columns, in the order exports.tabulate.meta_columns gives.
META_SOURCES = (
    SUBMISSION_DATE,
    KEY,
    "@SubmitterID",
    "@SubmitterName",
    "@AttachmentsPresent",
    "@AttachmentsExpected",
    STATUS,
    "@ReviewState",
    "@DeviceID",
    "@Edits",
    "@FormVersion",
)


T = TypeVar("T")
# A column given as Python values, or as a Polars series already (no copy through Python).
Values = Sequence[T] | pl.Series


def meta_frame(
    *,
    submission_ids: Values[int],
    def_ids: Values[int],
    instance_ids: Values[str],
    submitted_at: Values[datetime],
    submitter_ids: Values[int | None],
    submitter_names: Values[str | None],
    present: Values[int],
    expected: Values[int],
    encrypted: Values[bool],
    review_states: Values[str | None],
    device_ids: Values[str | None],
    edits: Values[int],
    form_versions: Values[str],
) -> pl.DataFrame:
    """The system columns of a run of submissions, written as Central writes them.

    Built by columns (Polars formats the dates), not through one SubmissionMeta
    per row: at a million rows that difference is seconds.
    """
    dates = submitted_at if isinstance(submitted_at, pl.Series) else pl.Series(submitted_at)
    if isinstance(dates.dtype, pl.Datetime) and dates.dtype.time_zone is not None:
        dates = dates.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return pl.DataFrame(
        [
            pl.Series(SUBMISSION, submission_ids, dtype=pl.Int64),
            pl.Series(DEF, def_ids, dtype=pl.Int64),
            dates.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias(SUBMISSION_DATE),
            pl.Series(KEY, instance_ids, dtype=pl.String),
            pl.Series("@SubmitterID", submitter_ids, dtype=pl.Int64).cast(pl.String),
            pl.Series("@SubmitterName", submitter_names, dtype=pl.String),
            pl.Series("@AttachmentsPresent", present, dtype=pl.Int64).cast(pl.String),
            pl.Series("@AttachmentsExpected", expected, dtype=pl.Int64).cast(pl.String),
            # Encrypted data is stored as sent; Central says so in this column.
            pl.Series(STATUS, encrypted, dtype=pl.Boolean)
            .replace_strict({True: "not decrypted", False: None}, return_dtype=pl.String)
            .alias(STATUS),
            pl.Series("@ReviewState", review_states, dtype=pl.String),
            pl.Series("@DeviceID", device_ids, dtype=pl.String),
            pl.Series("@Edits", edits, dtype=pl.Int64).cast(pl.String),
            pl.Series("@FormVersion", form_versions, dtype=pl.String),
        ]
    )


class CopiedBatch(TabulatedBatch):
    """A run of submissions from one segment, plus those the segment lacks.

    `tables` are the segment's frames by repeat path (None: the root), as
    exports.analysis.write_segment wrote them. `meta` holds the selected
    submissions' system columns (meta_frame), newest first: a segment row is
    used only if its submission and version are there, so deletions, filters
    and edits are applied by that join. `missing` are the selected submissions
    whose current version the segment does not hold (edited, or written after
    the segment), as records from the row store, each with its submission id.
    """

    def __init__(
        self,
        tables: Mapping[str | None, pl.DataFrame],
        meta: pl.DataFrame,
        missing: Sequence[tuple[int, ExportRecord]] = (),
    ) -> None:
        self._tables = tables
        self._meta = meta
        self._missing = missing

    def __len__(self) -> int:
        return self._meta.height

    def tabulate(self, plan: ExportPlan) -> dict[str, pl.DataFrame]:
        root = self._tables[None].join(self._meta, on=[SUBMISSION, DEF], how="inner")
        fresh = root.get_column(SUBMISSION).implode()
        parts: dict[str, list[pl.DataFrame]] = {}
        for table in plan.tables:
            if table.repeat_path is None:
                frame = root.with_columns(pl.lit(0, dtype=pl.Int64).alias(ORDER))
            else:
                stored = self._tables.get(table.repeat_path)
                if stored is None:
                    raise ValueError(f"the analysis copy has no table for {table.repeat_path}")
                frame = stored.filter(pl.col(SUBMISSION).is_in(fresh))
            parts[table.name] = [_project(frame, table)]
        for submission_id, record in self._missing:
            for name, frame in tabulate_batch(plan, [record]).items():
                parts[name].append(
                    frame.with_columns(
                        pl.lit(submission_id, dtype=pl.Int64).alias(SUBMISSION),
                        pl.int_range(pl.len(), dtype=pl.Int64).alias(ORDER),
                    ).select(SUBMISSION, ORDER, *frame.columns)
                )
        return {
            name: pl.concat(frames)
            .sort([SUBMISSION, ORDER], descending=[True, False], maintain_order=True)
            .drop(SUBMISSION, ORDER)
            for name, frames in parts.items()
        }


def _project(frame: pl.DataFrame, table: TablePlan) -> pl.DataFrame:
    """The table's raw columns in plan order; a column the copy lacks is empty."""
    present = set(frame.columns)
    return frame.select(
        SUBMISSION,
        ORDER,
        *(
            pl.col(source) if source in present else pl.lit(None, dtype=pl.String).alias(source)
            for source in table.sources
        ),
    )
