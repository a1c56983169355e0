"""The analysis copy: each form's records as columnar Parquet segments.

An export of a million submissions cannot afford to decode and walk every
stored record in Python (about 40 µs each). The analysis copy keeps, per form,
the *raw frames* that `exports.tabulate` would build (one string column per
question, Central's KEY/PARENT_KEY for repeats), written once in batches after
ingest. An export then reads those columns and joins the few values that
change after ingest (review state, edits, attachments, deletion) from the
database, so the writers receive finished raw frames (`CopiedBatch`) instead
of records to walk.

    copy_plan(schema)                 the tables and columns a copy stores
    layout_key(plan)                  changes whenever those do (the copy is then rebuilt)
    write_segment(plan, rows)         Parquet bytes per table for a run of submissions
    CopiedBatch                       a batch the writers tabulate by joining, not walking

Pure: no database, no storage; the server (services.analysis) moves the bytes.
"""

from exports.analysis.batch import META_SOURCES, CopiedBatch, meta_frame
from exports.analysis.layout import (
    DEF,
    ENCRYPTED,
    FORM_DEF,
    ORDER,
    SUBMISSION,
    copy_plan,
    layout_key,
    stored_columns,
    table_folder,
)
from exports.analysis.segment import CopiedRow, write_segment

__all__ = [
    "DEF",
    "ENCRYPTED",
    "FORM_DEF",
    "META_SOURCES",
    "ORDER",
    "SUBMISSION",
    "CopiedBatch",
    "CopiedRow",
    "copy_plan",
    "layout_key",
    "meta_frame",
    "stored_columns",
    "table_folder",
    "write_segment",
]
