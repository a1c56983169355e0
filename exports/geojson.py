"""GeoJSON (RFC 7946) of one table's locations, for QGIS, ArcGIS and web maps.

Field teams collect points, traces and shapes; analysts want them on a map
without converting a CSV's "lat lon alt acc" strings by hand. The output is one
FeatureCollection: one Feature per row (submission or repeat instance) of the
chosen table that has a value in the chosen geo question.

Choices made:
- The table is the root when it has a geopoint, geotrace or geoshape, else the
  first repeat table (in the CSV zip's order) that has one; the geo question is
  the table's first. Both may be named (table as in the CSV zip, question by
  name or path); unknown names raise ExportError.
- ODK writes "lat lon alt acc" per point and separates points with ";".
  geopoint -> Point, geotrace -> LineString, geoshape -> Polygon whose ring is
  closed if the phone did not close it and turned counterclockwise (RFC 7946's
  right-hand rule); a ring whose corners are all on one line is not a shape.
  Positions are [lon, lat], with the altitude as a third number only when
  every point of the value has one. A geopoint's altitude and accuracy are
  also properties (`<name>-Altitude`, `<name>-Accuracy`, numbers as in the
  CSV), since RFC 7946 positions have no place for accuracy.
- A value that cannot be read (not numbers, latitude beyond ±90, longitude
  beyond ±180, too few points for its kind) skips the feature and is counted
  in the returned summary; the export goes on.
- `id` is the row's KEY. Properties are the table's other output columns, as
  in the CSV (KEY, PARENT_KEY for repeats, labels and split select multiples
  per the options), with int and decimal answers, geopoint parts, system counts
  and split 0/1 columns as JSON numbers (null when the answer is not a number)
  and everything else as strings exactly as collected (dateTime answers keep
  the phone's offset; no formula guard: GeoJSON is not run by spreadsheets).
- Personal data: a personal geo question that the options drop or pseudonymise
  cannot give a geometry (coordinates cannot be pseudonymised); choosing it is
  an ExportError, and the default choice skips it.

The output is streamed: a batch's features are rendered by Polars
(exports.geojson_features) and written by a worker thread while the next batch
is read (exports.geojson_worker), so about three batches are in memory at a
time (the table's rows are spooled first only when split select multiple
columns must be found in the data).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import msgspec
import polars as pl

from exports.csvzip import ByteSink
from exports.geojson_features import render_features
from exports.geojson_geometry import geometry_of
from exports.geojson_worker import write_overlapped
from exports.options import ExportError, ExportOptions
from exports.plan import KEY, ExportPlan, TablePlan, plan_export
from exports.records import ExportRecord
from exports.spool import FrameSpool
from exports.tabulate import (
    OutputColumn,
    collect_select_values,
    shape_table,
    sorted_select_values,
    tabulate_batch,
)
from exports.typed import CellType, to_float, to_int, typed_columns
from forms.schema import Field, FormSchema

__all__ = ["GEO_KINDS", "GeoJsonSummary", "check_geojson", "geometry_of", "write_geojson"]

Batches = Iterable[Sequence[ExportRecord]]
SelectValues = Mapping[str, Sequence[str]]

GEO_KINDS = ("geopoint", "geotrace", "geoshape")
# The geopoint parts (indexes into GEOPOINT_PARTS) that a position cannot hold in full.
_PART_PROPERTIES = frozenset({2, 3})
_DEFAULT_OPTIONS = ExportOptions()
_OPEN = b'{"type":"FeatureCollection","features":[\n'
_CLOSE = b"\n]}\n"


class GeoJsonSummary(msgspec.Struct, frozen=True):
    table: str
    geo_field: str
    features: int
    # Rows whose geo value was present but could not be read.
    skipped: int


def check_geojson(
    schema: FormSchema,
    options: ExportOptions = _DEFAULT_OPTIONS,
    *,
    table: str | None = None,
    geo_field: str | None = None,
) -> tuple[str, str]:
    """The table and geo question an export would use; ExportError as write_geojson.

    For servers, to refuse a request before a response starts.
    """
    chosen, field = _choose(schema, plan_export(schema, options), table, geo_field)
    return chosen.name, field.path


def write_geojson(
    schema: FormSchema,
    batches: Batches,
    out: ByteSink,
    options: ExportOptions = _DEFAULT_OPTIONS,
    *,
    table: str | None = None,
    geo_field: str | None = None,
    select_values: SelectValues | None = None,
    spool_dir: str | Path | None = None,
) -> GeoJsonSummary:
    """Write a FeatureCollection of one table's geo question to `out`; say what was written.

    Raises ExportError before writing anything when the form has no geo
    question, or `table` / `geo_field` name none.
    """
    plan = plan_export(schema, options)
    chosen, field = _choose(schema, plan, table, geo_field)
    writer = _FeatureWriter(plan, chosen, field, out)
    out.write(_OPEN)
    if select_values is not None or not options.split_select_multiples:
        frames = _raw_frames(plan, chosen, batches)
        write_overlapped(frames, lambda raw: writer.write(raw, select_values))
    else:
        with FrameSpool(spool_dir) as spool:
            found: dict[str, set[str]] = {}
            for raw in _raw_frames(plan, chosen, batches):
                collect_select_values(chosen, raw, found)
                spool.append(raw)
            values = sorted_select_values(found)
            write_overlapped(spool.frames(), lambda raw: writer.write(raw, values))
    out.write(_CLOSE)
    out.flush()
    return GeoJsonSummary(
        table=chosen.name, geo_field=field.path, features=writer.features, skipped=writer.skipped
    )


def _raw_frames(plan: ExportPlan, table: TablePlan, batches: Batches) -> Iterator[pl.DataFrame]:
    for batch in batches:
        if batch:
            yield tabulate_batch(plan, batch)[table.name]


class _FeatureWriter:
    def __init__(self, plan: ExportPlan, table: TablePlan, field: Field, out: ByteSink) -> None:
        self.plan = plan
        self.table = table
        self.field = field
        self.out = out
        self.features = 0
        self.skipped = 0

    def write(self, raw: pl.DataFrame, select_values: SelectValues | None) -> None:
        if raw.height == 0:
            return
        columns = [
            (name, out, kind)
            for name, out, kind in typed_columns(self.plan, self.table, select_values)
            if kind != "offset"
            and (out.column.source != self.field.path or out.column.part in _PART_PROPERTIES)
        ]
        shaped = shape_table(self.plan, self.table, raw, select_values)
        properties = shaped.select(
            self._property(out, kind).alias(name) for name, out, kind in columns
        )
        batch = render_features(
            self.field.kind,
            raw.get_column(self.field.path),
            raw.get_column(KEY),
            properties,
            [name for name, _, kind in columns if kind == "float"],
        )
        self.skipped += batch.skipped
        if batch.features:
            if self.features:
                self.out.write(b",\n")
            self.out.write(batch.text)
            self.features += batch.features

    def _property(self, out: OutputColumn, kind: CellType) -> pl.Expr:
        value = pl.col(out.key)
        if kind in ("int", "bool"):
            return to_int(value)
        if kind == "float":
            return to_float(value)
        return value


def _choose(
    schema: FormSchema, plan: ExportPlan, table_name: str | None, geo_name: str | None
) -> tuple[TablePlan, Field]:
    geo_fields = [f for f in schema.fields if f.kind in GEO_KINDS]
    if not geo_fields:
        raise ExportError("The form has no geopoint, geotrace or geoshape question to map")
    if table_name is not None:
        table = next((t for t in plan.tables if t.name == table_name), None)
        if table is None:
            known = ", ".join(t.name for t in plan.tables)
            raise ExportError(f'The form has no table "{table_name}"; its tables are: {known}')
        candidates = [table]
    else:
        with_geo = {f.parent_repeat for f in geo_fields}
        candidates = [t for t in plan.tables if t.repeat_path in with_geo]
    in_tables = [
        (table, field)
        for table in candidates
        for field in geo_fields
        if field.parent_repeat == table.repeat_path
    ]
    if geo_name is not None:
        named = [(t, f) for t, f in in_tables if geo_name in (f.name, f.path)]
        if not named:
            where = f'table "{table_name}"' if table_name is not None else "form"
            known = ", ".join(f.path for _, f in in_tables) or "none"
            raise ExportError(
                f'The {where} has no geo question "{geo_name}"; its geo questions are: {known}'
            )
        table, field = named[0]
        if not _exported(table, field):
            raise ExportError(_personal_message(field, plan.options))
        return table, field
    if not in_tables:
        raise ExportError(
            f'The table "{table_name}" has no geopoint, geotrace or geoshape question'
        )
    usable = [(t, f) for t, f in in_tables if _exported(t, f)]
    if not usable:
        raise ExportError(_personal_message(in_tables[0][1], plan.options))
    return usable[0]


def _exported(table: TablePlan, field: Field) -> bool:
    """Whether the field's real values are in the export (not dropped or pseudonymised)."""
    return any(c.source == field.path and not c.pseudonymised for c in table.columns)


def _personal_message(field: Field, options: ExportOptions) -> str:
    action = "drops" if options.personal == "drop" else "pseudonymises"
    return (
        f'The geo question "{field.path}" is personal data and this export {action} '
        "personal data, so it has no locations to map"
    )
