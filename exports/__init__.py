"""Pure tabulation: FormSchema + parsed records -> tables (Polars) -> writers.

    plan_export(schema, options)          which tables and columns (exports.plan)
    tabulate_batch(plan, batch)           raw frames per table (exports.tabulate)
    shape_table(plan, table, raw, values) output columns: geopoints, labels, 0/1 splits
    write_csv_zip / write_root_csv        Central's CSV zip and root CSV (exports.csvzip)
    write_xlsx                            the same tables as Excel sheets, typed (exports.xlsx)
    write_parquet_zip                     the same tables as typed Parquet files (exports.parquet)
    write_geojson                         one table's locations as GeoJSON (exports.geojson)

The writers share one signature (schema, batches, out, options, *, select_values,
spool_dir) so the server can offer them as a registry keyed by extension, and
one set of typing rules (exports.typed) so the typed formats agree.

No HTTP, no database, no I/O beyond the outputs and temporary spool files.
"""

from exports.csvzip import ByteSink, MediaFile, write_csv_zip, write_root_csv
from exports.geojson import GeoJsonSummary, check_geojson, write_geojson
from exports.options import ExportError, ExportOptions
from exports.parquet import write_parquet_zip
from exports.plan import ExportPlan, TablePlan, plan_export
from exports.records import ExportRecord, SubmissionMeta
from exports.tabulate import shape_table, tabulate_batch
from exports.xlsx import write_xlsx

__all__ = [
    "ByteSink",
    "ExportError",
    "ExportOptions",
    "ExportPlan",
    "ExportRecord",
    "GeoJsonSummary",
    "MediaFile",
    "SubmissionMeta",
    "TablePlan",
    "check_geojson",
    "plan_export",
    "shape_table",
    "tabulate_batch",
    "write_csv_zip",
    "write_geojson",
    "write_parquet_zip",
    "write_root_csv",
    "write_xlsx",
]
