"""Helpers for export tests: the shared folder, and records as the server builds them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exports.records import ExportRecord, SubmissionMeta
from forms.schema import FormSchema
from forms.submission import binary_values, parse_submission
from forms.xform import read_xform
from forms.xlsform import compile_xlsform

BASE_DATE = datetime(2026, 8, 1, 10, 0, tzinfo=UTC)


def schema_from_markdown(markdown: str, form_id: str = "test_form") -> FormSchema:
    compiled = compile_xlsform(
        markdown.encode(), file_name=f"{form_id}.md", form_id_fallback=form_id
    )
    return read_xform(compiled.xml)


def schema_from_xlsform(path: Path) -> FormSchema:
    compiled = compile_xlsform(path.read_bytes(), file_name=path.name, form_id_fallback=path.stem)
    return read_xform(compiled.xml)


def export_record(
    schema: FormSchema,
    xml: bytes,
    *,
    attachments: Iterable[str] = (),
    submitted: datetime = BASE_DATE,
    submitter_id: int | None = 5,
    submitter_name: str | None = "Field Worker",
    status: str | None = None,
    review_state: str | None = None,
    device_id: str | None = None,
    edits: int = 0,
) -> ExportRecord:
    parsed = parse_submission(xml, repeat_paths=schema.repeat_paths)
    return ExportRecord(
        meta=SubmissionMeta(
            instance_id=parsed.instance_id,
            submission_date=submitted,
            submitter_id=submitter_id,
            submitter_name=submitter_name,
            attachments_present=len(list(attachments)),
            attachments_expected=len(binary_values(parsed.record, schema.binary_paths)),
            status=status,
            review_state=review_state,
            device_id=device_id,
            edits=edits,
            form_version=schema.version or "",
        ),
        record=parsed.record,
    )


def minutes_ago(minutes: int) -> datetime:
    return BASE_DATE - timedelta(minutes=minutes)
