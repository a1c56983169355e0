"""Writing a segment: a run of submissions' raw frames as one Parquet file per table."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import polars as pl

from exports.analysis.layout import DEF, ENCRYPTED, FORM_DEF, ORDER, SUBMISSION, stored_columns
from exports.plan import KEY, PARENT_KEY, ExportPlan
from exports.records import ExportRecord, SubmissionMeta
from exports.tabulate import tabulate_batch

__all__ = ["CopiedRow", "write_segment"]

_NO_DATE = datetime(1970, 1, 1, tzinfo=UTC)  # system columns are not stored


class CopiedRow(msgspec.Struct, frozen=True):
    """A submission's current version, as the row store holds it."""

    submission_id: int
    def_id: int
    instance_id: str
    encrypted: bool
    record: dict[str, object] | bytes
    form_def_id: int | None = None


# Records tabulated at a time: bounds the memory of writing a large segment.
_CHUNK = 5_000


def write_segment(plan: ExportPlan, rows: Sequence[CopiedRow]) -> dict[str, bytes]:
    """Parquet bytes by table name for `rows`, which must be newest first.

    Rows keep the order an export writes them in; the root table carries each
    row's submission and version ids, repeat tables their submission id and
    their place (`__order`) so rows can be merged with others and put back in
    order.
    """
    parts = [_frames(plan, rows[start : start + _CHUNK]) for start in range(0, len(rows), _CHUNK)]
    if not parts:
        parts = [_frames(plan, rows)]
    offsets = dict.fromkeys(parts[0], 0)
    merged: dict[str, list[pl.DataFrame]] = {name: [] for name in offsets}
    for part in parts:
        for name, frame in part.items():
            if ORDER in frame.columns:  # places stay unique across chunks
                frame = frame.with_columns(pl.col(ORDER) + offsets[name])
                offsets[name] += frame.height
            merged[name].append(frame)
    return {name: _parquet(pl.concat(frames)) for name, frames in merged.items()}


def _frames(plan: ExportPlan, rows: Sequence[CopiedRow]) -> dict[str, pl.DataFrame]:
    batch = [
        ExportRecord(
            meta=SubmissionMeta(
                instance_id=row.instance_id,
                submission_date=_NO_DATE,
                submitter_id=None,
                submitter_name=None,
                attachments_present=0,
                attachments_expected=0,
                # The walker leaves an encrypted submission's answers empty.
                status="not decrypted" if row.encrypted else None,
                review_state=None,
                device_id=None,
                edits=0,
                form_version="",
            ),
            record=row.record,
        )
        for row in rows
    ]
    raw = tabulate_batch(plan, batch)
    root = plan.root
    frames: dict[str, pl.DataFrame] = {}
    ids = pl.DataFrame(
        {
            SUBMISSION: [row.submission_id for row in rows],
            DEF: [row.def_id for row in rows],
            FORM_DEF: [row.form_def_id for row in rows],
            ENCRYPTED: [row.encrypted for row in rows],
        },
        schema={SUBMISSION: pl.Int64, DEF: pl.Int64, FORM_DEF: pl.Int64, ENCRYPTED: pl.Boolean},
    )
    frames[root.name] = pl.concat(
        [ids, raw[root.name].select(stored_columns(root))], how="horizontal"
    )
    # Which submission each row of a table belongs to, by the row's KEY.
    owners = {root.repeat_path: raw[root.name].select(KEY, ids.get_column(SUBMISSION))}
    for table in plan.tables[1:]:
        parent = owners[table.parent_repeat]
        frame = (
            raw[table.name]
            .with_row_index(ORDER)
            .join(parent.rename({KEY: PARENT_KEY}), on=PARENT_KEY, how="left")
            .sort(ORDER)
        )
        owners[table.repeat_path] = frame.select(KEY, SUBMISSION)
        frames[table.name] = frame.select(
            SUBMISSION, pl.col(ORDER).cast(pl.Int64), *stored_columns(table)
        )
    return frames


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=1, statistics=True)
    return buffer.getvalue()
