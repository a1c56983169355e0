"""Pure tabulation: FormSchema + parsed records -> tables (Polars) -> writers.

    plan_export(schema, options)          which tables and columns (exports.plan)
    tabulate_batch(plan, batch)           raw frames per table (exports.tabulate)
    shape_table(plan, table, raw, values) output columns: geopoints, labels, 0/1 splits
    write_csv_zip / write_root_csv        Central's CSV zip and root CSV (exports.csvzip)

No HTTP, no database, no I/O beyond the outputs and temporary spool files.
"""

from exports.csvzip import ByteSink, MediaFile, write_csv_zip, write_root_csv
from exports.options import ExportError, ExportOptions
from exports.plan import ExportPlan, TablePlan, plan_export
from exports.records import ExportRecord, SubmissionMeta
from exports.tabulate import shape_table, tabulate_batch

__all__ = [
    "ByteSink",
    "ExportError",
    "ExportOptions",
    "ExportPlan",
    "ExportRecord",
    "MediaFile",
    "SubmissionMeta",
    "TablePlan",
    "plan_export",
    "shape_table",
    "tabulate_batch",
    "write_csv_zip",
    "write_root_csv",
]
