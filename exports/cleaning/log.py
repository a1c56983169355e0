"""The cleaning log: entries, applying them to records, and the log as a table.

An entry says that in submission `instance_id` the answer at `field` was
`old_value` and should be read as `new_value`, why, who said so and when.
`field` is the answer's path in the submission as Central's field list names
it ("/age", "/household/head_name"), with a repeat instance's 1-based index as
in the export's KEY ("/plot[2]/crop"). An entry without a field removes the
whole submission from cleaned exports (a duplicate, a test interview); its
values are then both null.

Applying the log happens at read time, on records on their way to a writer:
entries apply in the order they were made, so a later entry for the same
answer wins, whatever the answer now holds (an edit through Central's API
after the entry does not undo the cleaning). An entry whose repeat instance
no longer exists changes nothing.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import msgspec
import polars as pl

from exports.cleaning.columns import CleanedBatch, columnar_log
from exports.cleaning.paths import CleaningError, field_steps
from exports.options import ExportOptions
from exports.records import ExportRecord, TabulatedBatch
from forms.personal import personal_fields, pseudonym
from forms.schema import REPEAT, STRUCTURE, FormSchema

__all__ = [
    "LOG_COLUMNS",
    "CleaningChange",
    "CleaningError",
    "ProposedChange",
    "apply_cleaning",
    "check_field",
    "cleaning_log_csv",
    "cleaning_log_frame",
    "field_steps",
    "protect_personal",
    "read_cleaning_csv",
    "value_at",
]

_decode = msgspec.json.Decoder(dict[str, object]).decode
# The columns of the exported log (cleaning-log.csv, the XLSX sheet, the Parquet member).
LOG_COLUMNS = (
    "id",
    "instanceId",
    "field",
    "oldValue",
    "newValue",
    "reason",
    "who",
    "when",
    "source",
)
# Headers a CSV upload may use; oldValue, when given, must match the stored answer.
_UPLOAD_REQUIRED = ("instanceId", "field", "newValue", "reason")
_UPLOAD_KNOWN = frozenset({*_UPLOAD_REQUIRED, "oldValue"})


class ProposedChange(msgspec.Struct, frozen=True):
    """An entry as someone asks for it, before the server checks and stores it."""

    instance_id: str
    field: str | None
    new_value: str | None
    reason: str
    # What the asker believes the answer is; checked against the stored one.
    old_value: str | None = None
    # "manual", "check:<kind>" for an accepted suggestion, "edit" for an edit's change.
    source: str = "manual"


class CleaningChange(msgspec.Struct, frozen=True):
    """One stored entry of the log."""

    instance_id: str
    field: str | None
    old_value: str | None
    new_value: str | None
    reason: str
    who: str | None
    when: datetime
    source: str = "manual"
    # None for entries derived from a submission's edits (they are not stored).
    id: int | None = None


def check_field(schema: FormSchema, field: str) -> str:
    """The field path in its normal form ("/plot[2]/crop"), checked against the form.

    It must name a question (not a group), with an index exactly on repeats.
    """
    steps = field_steps(field)
    if steps[0][0] == "meta":
        raise CleaningError(f'"{field}" is the submission\'s metadata, not an answer')
    kinds = {f.path: f.kind for f in schema.fields}
    repeats = set(schema.repeat_paths)
    path = ""
    for name, index in steps:
        path += "/" + name
        if path not in kinds:
            raise CleaningError(f'The form has no field "{path}"')
        if path in repeats and index is None:
            raise CleaningError(f'"{path}" is a repeat: name the instance, as {path}[1]')
        if path not in repeats and index is not None:
            raise CleaningError(f'"{path}" is not a repeat and takes no [index]')
    if kinds[path] in (STRUCTURE, REPEAT):
        raise CleaningError(f'"{path}" is a group or repeat, not a question')
    return "/" + "/".join(name if index is None else f"{name}[{index}]" for name, index in steps)


def value_at(record: Mapping[str, object], field: str) -> str | None:
    """The answer at `field` in a parsed record, None when it is not there."""
    node: object = record
    for name, index in field_steps(field):
        if not isinstance(node, Mapping):
            return None
        node = node.get(name)
        if index is not None:
            node = _instance(node, index)
    return node if isinstance(node, str) else None


def _instance(node: object, index: int) -> object:
    items = node if isinstance(node, list) else [node] if node is not None else []
    return items[index - 1] if index <= len(items) else None


def _set_value(record: dict[str, object], field: str, value: str) -> None:
    node: dict[str, object] = record
    steps = field_steps(field)
    for name, index in steps[:-1]:
        child = node.get(name)
        if index is not None:
            child = _instance(child, index)
            if not isinstance(child, dict):
                return  # the repeat instance is gone: nothing to clean
        elif not isinstance(child, dict):
            child = {}
            node[name] = child
        node = child
    node[steps[-1][0]] = value


def apply_cleaning(
    batches: Iterable[Sequence[ExportRecord]], log: Sequence[CleaningChange]
) -> Iterator[Sequence[ExportRecord]]:
    """Batches with the log applied: answers replaced, removed submissions left out.

    Only records with entries are decoded and copied; the rest pass as they are.
    Batches in columns (the analysis copy) are cleaned as they tabulate
    (exports.cleaning.columns), with the same outcome.
    """
    by_instance: dict[str, list[CleaningChange]] = {}
    for change in log:
        by_instance.setdefault(change.instance_id, []).append(change)
    in_columns = None
    for batch in batches:
        if isinstance(batch, TabulatedBatch):  # the analysis copy: cleaned as frames
            in_columns = in_columns or columnar_log(log)
            yield CleanedBatch(batch, in_columns)
            continue
        cleaned = []
        for item in batch:
            changes = by_instance.get(item.meta.instance_id)
            if not changes:
                cleaned.append(item)
                continue
            if any(change.field is None for change in changes):
                continue  # removed from cleaned data
            if item.meta.status is not None:
                cleaned.append(item)  # unreadable data has no answers to clean
                continue
            record = (
                _decode(item.record)
                if isinstance(item.record, bytes)
                else copy.deepcopy(item.record)
            )
            for change in changes:
                assert change.field is not None
                _set_value(record, change.field, change.new_value or "")
            cleaned.append(msgspec.structs.replace(item, record=record))
        yield cleaned


def protect_personal(
    schema: FormSchema, options: ExportOptions, log: Sequence[CleaningChange]
) -> list[CleaningChange]:
    """The log as an export with these options may show it: the old and new values
    of personal fields pseudonymised or blanked, as their columns are."""
    if options.personal == "keep":
        return list(log)
    # The policy's paths: below personal groups too, and an instanceName computed
    # from personal answers (edits show it).
    personal = personal_fields([schema])
    key = options.pseudonym_key
    result = []
    for change in log:
        path = re.sub(r"\[[0-9]+\]", "", change.field or "")
        if not personal.covers(path):
            result.append(change)
            continue

        def hidden(value: str | None) -> str | None:
            if not value or options.personal == "drop" or key is None:
                return None
            return pseudonym(key, value)

        result.append(
            msgspec.structs.replace(
                change, old_value=hidden(change.old_value), new_value=hidden(change.new_value)
            )
        )
    return result


def _when(moment: datetime) -> str:
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def cleaning_log_frame(log: Sequence[CleaningChange]) -> pl.DataFrame:
    """The log as a table of text columns (LOG_COLUMNS), oldest entry first."""
    rows = [
        (
            None if c.id is None else str(c.id),
            c.instance_id,
            c.field,
            c.old_value,
            c.new_value,
            c.reason,
            c.who,
            _when(c.when),
            c.source,
        )
        for c in log
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(LOG_COLUMNS, pl.String), orient="row")


def cleaning_log_csv(log: Sequence[CleaningChange]) -> bytes:
    """The log as CSV in the export's style (UTF-8, no BOM, \\n line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    writer.writerows(cleaning_log_frame(log).rows())
    return out.getvalue().encode("utf-8")


def read_cleaning_csv(data: bytes) -> list[ProposedChange]:
    """Entries from an uploaded CSV (header: instanceId, field, oldValue?, newValue, reason).

    Every row is read before anything is stored; the first bad row raises
    CleaningError naming its line. An empty field removes the submission.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CleaningError("The upload is not UTF-8 text") from error
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [name for name in _UPLOAD_REQUIRED if name not in header]
    if missing:
        raise CleaningError(f"The CSV's header lacks {', '.join(missing)}")
    unknown = [name for name in header if name not in _UPLOAD_KNOWN]
    if unknown:
        raise CleaningError(f"The CSV's header has unknown columns: {', '.join(unknown)}")
    proposed = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise CleaningError(f"Line {line} has more cells than the header")
        instance_id = (row["instanceId"] or "").strip()
        reason = (row["reason"] or "").strip()
        if not instance_id:
            raise CleaningError(f"Line {line} has no instanceId")
        if not reason:
            raise CleaningError(f"Line {line} has no reason")
        field = (row["field"] or "").strip() or None
        if field is not None:
            try:
                field_steps(field)
            except CleaningError as error:
                raise CleaningError(f"Line {line}: {error}") from error
        old = row.get("oldValue")
        proposed.append(
            ProposedChange(
                instance_id=instance_id,
                field=field,
                new_value=row["newValue"] if field is not None else None,
                reason=reason,
                old_value=old if old else None,
            )
        )
    if not proposed:
        raise CleaningError("The CSV has no entries")
    return proposed
