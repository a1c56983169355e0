"""Stored OData rows brought up to date with their forms' current shapes.

Ingest writes each version's OData row for the shape of the form version it was
submitted to (``exports.odata.rendered``). A page sends stored rows only while
they match the shape of the version it is read with; other rows are written
from their records on every read, correct but slower. That happens to versions
stored before migration 0006, after a form version that adds, removes or
retypes fields is published, and after ``RENDER_VERSION`` changes.
``homeward render-rows`` writes those rows again for the current shape: what
a page would have written from the record, written once. Publishing a version
does the same for its form, after the answer is sent.

It works through one batch of versions per transaction, so it can run while the
server serves; an edit that lands meanwhile writes its own row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import msgspec
from sqlalchemy import Connection, bindparam, or_, select, update

from exports.odata import ROOT_TABLE, build_model, render_fields, shape_key
from forms.schema import FormSchema
from server.db.models import Form, FormDef, Submission, SubmissionDef
from server.runtime import Runtime
from server.services.forms import schema_of

__all__ = ["Rendered", "render_form_rows_after_publish", "render_stored_rows"]

log = logging.getLogger(__name__)

BATCH = 2000

_decode_record = msgspec.json.Decoder(dict[str, object]).decode

_STORE = (
    update(SubmissionDef)
    .where(SubmissionDef.id == bindparam("def_id"))
    .values(odata_shape=bindparam("shape"), odata_row=bindparam("row"))
)


@dataclass(frozen=True, slots=True)
class Rendered:
    forms: int  # forms with at least one row written
    rows: int


async def render_stored_rows(
    rt: Runtime, *, form_id: int | None = None, batch: int = BATCH
) -> Rendered:
    """Write the stored row of every current, readable version whose shape is not its form's.

    All forms, or the one `form_id` names (what publishing a version starts).
    """
    forms_wanted = select(Form.id, Form.current_def_id, Form.draft_def_id).where(
        Form.deleted_at.is_(None)
    )
    if form_id is not None:
        forms_wanted = forms_wanted.where(Form.id == form_id)
    async with rt.read() as db:
        feeds = (await db.execute(forms_wanted)).all()
        schemas: dict[int, FormSchema] = {}
        for def_id in {d for _, current, draft in feeds for d in (current, draft) if d}:
            form_def = await db.get(FormDef, def_id)
            assert form_def is not None
            schemas[def_id] = schema_of(form_def)
    forms = rows = 0
    for feed_form_id, current_def_id, draft_def_id in feeds:
        written = 0
        for draft, def_id in ((False, current_def_id), (True, draft_def_id)):
            if def_id is not None:
                written += await _render_feed(rt, feed_form_id, draft, schemas[def_id], batch)
        forms += written > 0
        rows += written
    return Rendered(forms, rows)


async def _render_feed(
    rt: Runtime, form_id: int, draft: bool, schema: FormSchema, batch: int
) -> int:
    key = shape_key(build_model(schema).tables[ROOT_TABLE])
    after = 0
    written = 0
    while True:
        found = await rt.query(partial(_stale, form_id, draft, key, after, batch))
        if not found:
            return written
        values = []
        for def_id, instance_id, record in found:
            shape, row = render_fields(schema, instance_id, _decode_record(record))
            values.append({"def_id": def_id, "shape": shape, "row": row})
        await rt.write(partial(_store, values))
        written += len(values)
        after = found[-1][0]


def _store(values: list[dict[str, object]], connection: Connection) -> None:
    connection.execute(_STORE, values)


def _stale(
    form_id: int, draft: bool, key: str, after: int, batch: int, connection: Connection
) -> list[tuple[int, str, bytes]]:
    """The next batch of current versions (by id) whose stored row is missing or stale."""
    statement = (
        select(SubmissionDef.id, Submission.instance_id, SubmissionDef.record)
        .join(Submission, Submission.id == SubmissionDef.submission_id)
        .where(
            Submission.form_id == form_id,
            Submission.draft.is_(draft),
            SubmissionDef.current.is_(True),
            SubmissionDef.encrypted.is_(False),
            SubmissionDef.id > after,
            or_(SubmissionDef.odata_shape.is_(None), SubmissionDef.odata_shape != key),
        )
        .order_by(SubmissionDef.id)
        .limit(batch)
    )
    return [(row[0], row[1], row[2]) for row in connection.execute(statement)]


async def render_form_rows_after_publish(rt: Runtime, form_id: int) -> None:
    """The background task of a publish: small batches, so requests keep their turn."""
    try:
        rendered = await render_stored_rows(rt, form_id=form_id, batch=500)
    except Exception:  # a failure leaves rows on the slower path, never wrong
        log.exception("Writing the OData rows of form %s after publishing failed", form_id)
    else:
        log.info("Wrote %s OData rows of form %s for its new version", rendered.rows, form_id)
