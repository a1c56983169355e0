"""Typed cells for the formats that have types (XLSX, Parquet, GeoJSON).

Tabulation keeps every answer as text, as the CSV needs. Formats with types
decide per output column from the field's kind what a cell is: a number, a
date, a moment, a 0/1 flag, a list of choices or text. One table of rules here
keeps XLSX, Parquet and GeoJSON in agreement.

Answers are parsed leniently: a value that does not read as its column's type
(text in an integer field from an older form version, say) becomes null in
the typed value. Writers that can show text instead (XLSX) keep the text.

ODK dateTime answers carry the phone's UTC offset ("2026-08-01T09:20:00.000+01:00").
No typed format may lose it, and neither Parquet's timestamps nor Excel's
cells can hold one, so every dateTime answer gets a text column beside it,
`<name>_offset`, holding the offset as sent ("+01:00"; "Z" is "+00:00"; null
when the value had none). As a moment (Parquet) the answer is in UTC (a value
without an offset is taken as UTC), so `start + start_offset` is the phone's
clock; as a spreadsheet cell (XLSX) it is the phone's clock time as recorded,
because Excel has no time zones and that is what analysts read, and the offset
column says which zone it was. SubmissionDate is the server's, always UTC, and
has no offset column. CSV and GeoJSON keep the answer's text as sent.

Typed formats never formula-escape: their text cells are never run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import polars as pl

from exports.plan import (
    GEOPOINT,
    SELECT_MULTIPLE,
    STATUS,
    SUBMISSION_DATE,
    SYSTEM,
    ExportPlan,
    TablePlan,
)
from exports.tabulate import OutputColumn, output_columns, shape_table

__all__ = [
    "OFFSET_SUFFIX",
    "POLARS_TYPES",
    "CellType",
    "cell_type",
    "choice_list",
    "to_date",
    "to_float",
    "to_int",
    "to_local_datetime",
    "to_offset",
    "to_utc_datetime",
    "typed_columns",
    "typed_schema",
    "typed_table",
    "with_offsets",
]

SelectValues = Mapping[str, Sequence[str]]
CellType = Literal["string", "int", "float", "date", "datetime", "bool", "list", "offset"]
# The name of the column beside a dateTime answer that holds its UTC offset.
OFFSET_SUFFIX = "_offset"

# System columns that hold integers (SubmitterID is the submitter's actor id).
_INTEGER_SYSTEM = frozenset(
    {"@SubmitterID", "@AttachmentsPresent", "@AttachmentsExpected", "@Edits"}
)
_KIND_TYPES: dict[str, CellType] = {
    "int": "int",
    "decimal": "float",
    "date": "date",
    "dateTime": "datetime",
    SELECT_MULTIPLE: "list",
}
_WORD = r"\S+"
# The date and time of an ISO moment, before any offset.
_LOCAL_PART = r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)"


def cell_type(out: OutputColumn) -> CellType:
    """What a cell of this output column is, whatever the format."""
    column = out.column
    if out.value is not None:
        return "bool"  # the 0/1 column of one select multiple value
    if column.pseudonymised:
        return "string"  # a pseudonym is text whatever the answer was
    if column.kind == SYSTEM:
        if column.source == SUBMISSION_DATE:
            return "datetime"
        return "int" if column.source in _INTEGER_SYSTEM else "string"
    if column.kind == GEOPOINT:
        return "float"
    return _KIND_TYPES.get(column.kind, "string")


def to_int(value: pl.Expr) -> pl.Expr:
    return value.str.strip_chars().cast(pl.Int64, strict=False)


def to_float(value: pl.Expr) -> pl.Expr:
    number = value.str.strip_chars().cast(pl.Float64, strict=False)
    # NaN and infinities are not answers ODK produces, and JSON cannot hold them.
    return pl.when(number.is_finite()).then(number).otherwise(pl.lit(None, dtype=pl.Float64))


def to_date(value: pl.Expr) -> pl.Expr:
    # ODK dates are plain ISO dates; a dateTime in a date field keeps its date.
    return value.str.extract(r"^\s*(\d{4}-\d{2}-\d{2})").str.to_date("%Y-%m-%d", strict=False)


def to_utc_datetime(value: pl.Expr) -> pl.Expr:
    """An ISO moment as UTC; "Z", "+0300" and "+03:00" offsets, none meaning UTC."""
    text = value.str.strip_chars().str.replace(r"[zZ]$", "+00:00")
    text = text.str.replace(r"([+-]\d{2})(\d{2})$", "$1:$2")
    with_offset = (
        pl.when(text.str.contains(r"[+-]\d{2}:\d{2}$")).then(text).otherwise(text + "+00:00")
    )
    return with_offset.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="ms", time_zone="UTC"
    )


def to_local_datetime(value: pl.Expr) -> pl.Expr:
    """An ISO moment's date and clock time as recorded, its offset dropped (naive)."""
    local = value.str.strip_chars().str.extract(_LOCAL_PART)
    return local.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="ms")


def to_offset(value: pl.Expr) -> pl.Expr:
    """The UTC offset of an ISO moment as "+HH:MM" ("Z" is "+00:00"); null without one."""
    text = value.str.strip_chars()
    zulu = text.str.contains(r"T.*[zZ]$")
    numeric = text.str.extract(r"T\d{2}:\d{2}.*?([+-]\d{2}:?\d{2})$").str.replace(
        r"^([+-]\d{2}):?(\d{2})$", "$1:$2"
    )
    return pl.when(zulu).then(pl.lit("+00:00")).otherwise(numeric)


def with_offsets(columns: Sequence[OutputColumn]) -> list[tuple[OutputColumn, CellType]]:
    """Columns with their cell types, each dateTime answer followed by its offset column."""
    result: list[tuple[OutputColumn, CellType]] = []
    for out in columns:
        kind = cell_type(out)
        result.append((out, kind))
        if kind == "datetime" and out.column.kind != SYSTEM:
            offset = msgspec.structs.replace(out, name=out.name + OFFSET_SUFFIX)
            result.append((offset, "offset"))
    return result


def choice_list(plan: ExportPlan, out: OutputColumn, raw: pl.Expr) -> pl.Expr:
    """A select multiple's answer as a list of values (or of labels with labels=True)."""
    tokens = raw.str.extract_all(_WORD)
    labels = plan.choice_labels.get(out.column.choice_list or "") if plan.options.labels else None
    if not labels:
        return tokens
    return tokens.list.eval(pl.element().replace(dict(labels)))


POLARS_TYPES: dict[CellType, pl.DataType] = {
    "string": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "date": pl.Date(),
    "datetime": pl.Datetime("ms", "UTC"),
    "bool": pl.Boolean(),
    "list": pl.List(pl.String()),
    "offset": pl.String(),
}


def typed_columns(
    plan: ExportPlan, table: TablePlan, select_values: SelectValues | None = None
) -> list[tuple[str, OutputColumn, CellType]]:
    """The table's output columns with a unique name each and their cell types.

    Header names repeat when group paths are off (two "name" questions in two
    groups); typed formats need unique names, so later ones get " (2)", " (3)".
    """
    taken: set[str] = set()
    result = []
    for out, kind in with_offsets(output_columns(plan, table, select_values)):
        name, count = out.name, 1
        while name in taken:
            count += 1
            name = f"{out.name} ({count})"
        taken.add(name)
        result.append((name, out, kind))
    return result


def typed_schema(columns: Sequence[tuple[str, OutputColumn, CellType]]) -> dict[str, pl.DataType]:
    return {name: POLARS_TYPES[kind] for name, _, kind in columns}


def typed_table(
    plan: ExportPlan,
    table: TablePlan,
    raw: pl.DataFrame,
    columns: Sequence[tuple[str, OutputColumn, CellType]],
    select_values: SelectValues | None = None,
) -> pl.DataFrame:
    """A raw frame as typed output columns (named as in `columns`), moments in UTC.

    A select multiple with nothing chosen is an empty list; it is null only in
    a submission whose data cannot be read.
    """
    shaped = shape_table(plan, table, raw, select_values)
    readable = pl.col(STATUS).is_null() if table.repeat_path is None else pl.lit(True)
    nothing = pl.lit([], dtype=pl.List(pl.String))
    lists = raw.select(
        pl.when(readable)
        .then(choice_list(plan, out, pl.col(out.column.source)).fill_null(nothing))
        .alias(out.key)
        for _, out, kind in columns
        if kind == "list"
    )
    if lists.width:
        shaped = shaped.with_columns(lists)
    expressions = []
    for name, out, kind in columns:
        value = pl.col(out.key)
        if kind in ("string", "list"):
            typed = value
        elif kind == "offset":
            typed = to_offset(value)
        elif kind == "int":
            typed = to_int(value)
        elif kind == "float":
            typed = to_float(value)
        elif kind == "bool":
            typed = value.cast(pl.Int8, strict=False).cast(pl.Boolean)
        elif kind == "date":
            typed = to_date(value)
        else:
            typed = to_utc_datetime(value)
        expressions.append(typed.alias(name))
    return shaped.select(expressions)
