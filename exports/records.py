"""What the server hands the export pipeline: one parsed submission and its metadata.

Records are parsed once at ingest (forms.submission), so an export never reads
XML again. The server streams them from the database in batches, newest first
as Central orders them, and the pipeline never needs more than one batch.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn, overload

import msgspec

if TYPE_CHECKING:
    import polars as pl

    from exports.plan import ExportPlan

__all__ = ["ExportRecord", "SubmissionMeta", "TabulatedBatch"]


class SubmissionMeta(msgspec.Struct, frozen=True):
    """The system columns of Central's export, for one submission."""

    instance_id: str
    # Time zone aware; written as UTC with milliseconds, e.g. 2026-08-01T10:00:00.000Z.
    submission_date: datetime
    submitter_id: int | None
    submitter_name: str | None
    attachments_present: int
    attachments_expected: int
    # Set only when the submission's data cannot be read (Central writes
    # "not decrypted" or "missing encrypted form data"); its data columns are
    # then left empty and its repeats have no rows.
    status: str | None
    review_state: str | None
    device_id: str | None
    edits: int
    form_version: str


class ExportRecord(msgspec.Struct, frozen=True):
    meta: SubmissionMeta
    # ParsedSubmission.record: element name -> str | dict | list[dict], decoded
    # or still the JSON bytes stored at ingest (which Polars reads fastest).
    record: dict[str, object] | bytes


class TabulatedBatch(Sequence[ExportRecord]):
    """A batch that arrives already in columns (the analysis copy, exports.analysis).

    Writers treat it as any batch: they only test it for emptiness and hand it
    to `exports.tabulate.tabulate_batch`, which asks it for its raw frames
    instead of walking records. Its length is its number of submissions; it
    has no records to index.
    """

    @abstractmethod
    def tabulate(self, plan: ExportPlan) -> dict[str, pl.DataFrame]:
        """Raw frames by table name, as `tabulate_batch` gives for records."""

    @overload
    def __getitem__(self, index: int) -> ExportRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ExportRecord]: ...

    def __getitem__(self, index: int | slice) -> NoReturn:
        raise TypeError("a tabulated batch has columns, not records")
