"""Records -> tables: one Polars frame (all strings) per table and batch.

Two steps, so every writer can reuse them:

1. `tabulate_batch` walks each parsed record once and returns *raw* frames:
   one column per question (by path) plus the system columns, one row per
   submission or repeat instance, with Central's KEY/PARENT_KEY.
2. `shape_table` turns a raw frame into the output columns of the plan:
   geopoints split in four, choice labels, pseudonyms, and the 0/1 columns of
   split select multiples. Those 0/1 columns depend on every value in the
   export, so writers either receive the values up front or collect them with
   `collect_select_values` while spooling raw frames, and shape afterwards.

Empty and missing answers are both null; writers decide how to show them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import msgspec
import polars as pl

from exports.columnar import tabulate_columns
from exports.plan import (
    KEY,
    PARENT_KEY,
    SELECT_MULTIPLE,
    SELECT_ONE,
    STATUS,
    SUBMISSION_DATE,
    Column,
    ExportPlan,
    TablePlan,
)
from exports.records import ExportRecord, SubmissionMeta, TabulatedBatch
from forms.personal import pseudonym

__all__ = [
    "LABEL_SEPARATOR",
    "OutputColumn",
    "collect_select_values",
    "format_submission_date",
    "header",
    "meta_columns",
    "output_columns",
    "pseudonym",
    "shape_table",
    "sorted_select_values",
    "tabulate_batch",
]

# Between the labels of a select multiple's choices (labels may contain spaces).
LABEL_SEPARATOR = "; "
# Central splits answers on runs of whitespace.
_WORD = r"\S+"
_WHITESPACE = r"\s+"

SelectValues = Mapping[str, Sequence[str]]

_decode_record = msgspec.json.Decoder(dict[str, object]).decode


class OutputColumn(msgspec.Struct, frozen=True):
    key: str
    name: str
    column: Column
    # For the 0/1 column of one select multiple value.
    value: str | None = None


def tabulate_batch(plan: ExportPlan, batch: Sequence[ExportRecord]) -> dict[str, pl.DataFrame]:
    """Raw frames, by table name, for one batch of records (rows in batch order).

    Columns are read a batch at a time (exports.columnar); a batch with a
    record of another shape is walked record by record here instead. A batch
    from the analysis copy (exports.analysis) is already in columns.
    """
    if isinstance(batch, TabulatedBatch):
        return batch.tabulate(plan)
    records = [
        _decode_record(item.record) if isinstance(item.record, bytes) else item.record
        for item in batch
    ]
    frames = tabulate_columns(plan, records, meta_columns(batch))
    if frames is not None:
        return frames
    walker = _Walker(plan)
    for item, record in zip(batch, records, strict=True):
        walker.add(item.meta, record)
    return {
        table.name: pl.from_dicts(
            walker.rows[table.repeat_path],
            schema={source: pl.String for source in table.sources},
        )
        for table in plan.tables
    }


def format_submission_date(value: datetime) -> str:
    """Central's ISO form, in UTC with milliseconds; naive datetimes are taken as UTC."""
    moment = value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def meta_columns(batch: Sequence[ExportRecord]) -> dict[str, list[str | None]]:
    """The root table's system columns for a batch, as raw (string) columns."""
    metas = [item.meta for item in batch]
    return {
        SUBMISSION_DATE: [format_submission_date(m.submission_date) for m in metas],
        KEY: [m.instance_id for m in metas],
        "@SubmitterID": [None if m.submitter_id is None else str(m.submitter_id) for m in metas],
        "@SubmitterName": [m.submitter_name for m in metas],
        "@AttachmentsPresent": [str(m.attachments_present) for m in metas],
        "@AttachmentsExpected": [str(m.attachments_expected) for m in metas],
        STATUS: [m.status for m in metas],
        "@ReviewState": [m.review_state for m in metas],
        "@DeviceID": [m.device_id for m in metas],
        "@Edits": [str(m.edits) for m in metas],
        "@FormVersion": [m.form_version for m in metas],
    }


class _Walker:
    """Flattens parsed records into row dicts keyed by field path (or "@KEY" ...)."""

    def __init__(self, plan: ExportPlan) -> None:
        self.repeat_paths = plan.repeat_paths
        self.rows: dict[str | None, list[dict[str, str | None]]] = {
            table.repeat_path: [] for table in plan.tables
        }

    def add(self, meta: SubmissionMeta, record: Mapping[str, object]) -> None:
        root: dict[str, str | None] = {
            SUBMISSION_DATE: format_submission_date(meta.submission_date),
            KEY: meta.instance_id,
            "@SubmitterID": None if meta.submitter_id is None else str(meta.submitter_id),
            "@SubmitterName": meta.submitter_name,
            "@AttachmentsPresent": str(meta.attachments_present),
            "@AttachmentsExpected": str(meta.attachments_expected),
            STATUS: meta.status,
            "@ReviewState": meta.review_state,
            "@DeviceID": meta.device_id,
            "@Edits": str(meta.edits),
            "@FormVersion": meta.form_version,
        }
        if meta.status is None:
            self._group(record, "", meta.instance_id, meta.instance_id, root)
        self.rows[None].append(root)

    def _group(
        self,
        node: Mapping[str, object],
        path: str,
        key_path: str,
        row_key: str,
        row: dict[str, str | None],
    ) -> None:
        repeat_paths = self.repeat_paths
        for name, value in node.items():
            child = path + "/" + name
            if child in repeat_paths:
                self._repeat(value, child, key_path + "/" + name, row_key)
            elif isinstance(value, str):
                # Inlined: this is the hot path of every export.
                if value:
                    previous = row.get(child)
                    row[child] = value if previous is None else previous + value
            else:
                self._node(value, child, key_path + "/" + name, row_key, row)

    def _node(
        self, value: object, path: str, key_path: str, row_key: str, row: dict[str, str | None]
    ) -> None:
        if isinstance(value, str):
            if not value:
                return  # empty and missing answers look the same: null
            # An element that occurs twice outside a repeat: Central concatenates its texts.
            previous = row.get(path)
            row[path] = value if previous is None else previous + value
        elif isinstance(value, dict):
            self._group(value, path, key_path, row_key, row)
        elif isinstance(value, list):
            for item in value:
                self._node(item, path, key_path, row_key, row)

    def _repeat(self, value: object, path: str, key_path: str, parent_key: str) -> None:
        target = self.rows.get(path)
        if target is None:
            return  # a repeat this export leaves out (root-only CSV)
        instances = value if isinstance(value, list) else [value]
        for index, instance in enumerate(instances, start=1):
            key = f"{key_path}[{index}]"
            row: dict[str, str | None] = {PARENT_KEY: parent_key, KEY: key}
            if isinstance(instance, dict):
                self._group(instance, path, key, key, row)
            target.append(row)


def collect_select_values(table: TablePlan, raw: pl.DataFrame, into: dict[str, set[str]]) -> None:
    """Add the values of the table's splittable select multiples found in `raw`."""
    for column in _splittable(table):
        found = raw.get_column(column.source).str.extract_all(_WORD).explode().drop_nulls()
        into.setdefault(column.source, set()).update(found.unique().to_list())


def sorted_select_values(found: Mapping[str, set[str]]) -> dict[str, list[str]]:
    # Central sorts in the database (ORDER BY value); code point order here.
    return {path: sorted(values) for path, values in found.items()}


def output_columns(
    plan: ExportPlan, table: TablePlan, select_values: SelectValues | None = None
) -> list[OutputColumn]:
    """The table's columns in output order, with a 0/1 column per select multiple value."""
    split = plan.options.split_select_multiples
    splittable = {c.key for c in _splittable(table)} if split else set()
    result = []
    for column in table.columns:
        result.append(OutputColumn(key=column.key, name=column.name, column=column))
        if column.key in splittable:
            result.extend(
                OutputColumn(
                    key=f"{column.key}={value}",
                    name=f"{column.name}/{value}",
                    column=column,
                    value=value,
                )
                for value in (select_values or {}).get(column.source, ())
            )
    return result


def header(
    plan: ExportPlan, table: TablePlan, select_values: SelectValues | None = None
) -> list[str]:
    return [c.name for c in output_columns(plan, table, select_values)]


def shape_table(
    plan: ExportPlan,
    table: TablePlan,
    raw: pl.DataFrame,
    select_values: SelectValues | None = None,
) -> pl.DataFrame:
    """The output frame of a raw frame; columns are named by OutputColumn.key."""
    options = plan.options
    columns = output_columns(plan, table, select_values)
    unreadable = pl.col(STATUS).is_not_null() if table.repeat_path is None else pl.lit(False)
    expressions = []
    for out in columns:
        column = out.column
        if out.value is not None:
            chosen = pl.col(column.source).str.extract_all(_WORD).list.contains(out.value)
            # Central writes 0 for every row that has data, 1 where the value was chosen.
            expression = (
                pl.when(unreadable)
                .then(pl.lit(None, dtype=pl.String))
                .when(chosen)
                .then(pl.lit("1"))
                .otherwise(pl.lit("0"))
            )
        elif column.part is not None:
            expression = _geopoint_part(column)
        elif options.labels and not column.pseudonymised:
            expression = _labelled(column, plan.choice_labels)
        else:
            expression = pl.col(column.source)
        expressions.append(expression.alias(out.key))
    frame = raw.select(expressions)
    if options.pseudonym_key and any(out.column.pseudonymised for out in columns):
        frame = _pseudonymise(frame, columns, options.pseudonym_key)
    return frame


def _splittable(table: TablePlan) -> list[Column]:
    # Pseudonymised select multiples are never split: their values would leak into the header.
    return [c for c in table.columns if c.kind == SELECT_MULTIPLE and not c.pseudonymised]


def _geopoint_part(column: Column) -> pl.Expr:
    assert column.part is not None
    parts = pl.col(column.source).str.replace_all(_WHITESPACE, " ").str.split(" ")
    return parts.list.get(column.part, null_on_oob=True)


def _labelled(column: Column, choice_labels: Mapping[str, Mapping[str, str]]) -> pl.Expr:
    value = pl.col(column.source)
    labels = choice_labels.get(column.choice_list or "")
    if not labels:
        return value
    mapping = dict(labels)
    if column.kind == SELECT_ONE:
        return value.replace(mapping)
    if column.kind == SELECT_MULTIPLE:
        tokens = value.str.extract_all(_WORD)
        return tokens.list.eval(pl.element().replace(mapping)).list.join(LABEL_SEPARATOR)
    return value


def _pseudonymise(frame: pl.DataFrame, columns: list[OutputColumn], key: bytes) -> pl.DataFrame:
    replacements = []
    for out in columns:
        if not out.column.pseudonymised:
            continue
        values = frame.get_column(out.key).drop_nulls().unique().to_list()
        mapping = {value: pseudonym(key, value) for value in values if value != ""}
        if mapping:
            replacements.append(pl.col(out.key).replace(mapping))
    return frame.with_columns(replacements) if replacements else frame
