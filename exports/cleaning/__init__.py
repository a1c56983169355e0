"""Cleaned data: the cleaning log applied at read time, and the log as a table.

    CleaningChange                 one entry: submission, field, old, new, reason, who, when
    field_steps / check_field      "/plot[2]/crop" read and checked against the form
    value_at                       the answer a record holds at a field path
    apply_cleaning                 batches of records with the log applied (never stored)
    cleaning_log_frame / _csv      the log as a table, to export beside the data
    read_cleaning_csv              a CSV upload of entries, checked row by row
    protect_personal               personal fields' values hidden as the export hides them

Pure: no database, no HTTP. The stored submission is never rewritten; an
export that asks for cleaned data passes its batches through apply_cleaning.
"""

from exports.cleaning.log import (
    LOG_COLUMNS,
    CleaningChange,
    CleaningError,
    ProposedChange,
    apply_cleaning,
    check_field,
    cleaning_log_csv,
    cleaning_log_frame,
    field_steps,
    protect_personal,
    read_cleaning_csv,
    value_at,
)

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
