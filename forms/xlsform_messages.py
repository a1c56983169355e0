"""pyxform's conversion errors, told where they are and what was probably meant.

pyxform says ``[row : 3] List name not in choices sheet: gendr`` or
``Unknown question type 'integr'.`` (no row at all). A researcher fixing the
spreadsheet needs the sheet, the row and the column, and, when a name is a
typo, the name that was meant. pyxform's own sentence is kept (people search
for it), led by the place and followed by a did-you-mean when one is close.
Nothing here imports pyxform: ``forms/xlsform.py`` passes what it knows.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Sheets = Mapping[str, Any]

_ROW = re.compile(r"^\[row\s*:\s*(\d+)\]\s*")
_SHEET_AND_COLUMN = re.compile(r"^On the '([^']+)' sheet, the '([^']+)' value\b")
_UNKNOWN_TYPE = re.compile(r"^Unknown question type '([^']*)'\.?")
_UNKNOWN_LIST = re.compile(r"^List name not in choices sheet: (.+)$")
_UNKNOWN_NAME = re.compile(r"Could not find the name '([^']+)'")
_MISSING_HEADER = re.compile(
    r"headers provided for sheet: '([^']+)'.*column headers were not found: '([^']+)'", re.S
)
# The row numbers pyxform reports count the header as row 1, as a spreadsheet does.
_FIRST_DATA_ROW = 2
_CLOSE_ENOUGH = 0.6


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest candidate, or "" when none is close."""
    names = sorted({c for c in candidates if c and c != word})
    by_folded = {name.casefold(): name for name in names}
    if word.casefold() in by_folded:  # the same name in other letter case
        return f" Did you mean '{by_folded[word.casefold()]}'?"
    close = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=_CLOSE_ENOUGH)
    return f" Did you mean '{by_folded[close[0]]}'?" if close else ""


def place(sheet: str, row: int | None = None, column: str | None = None) -> str:
    """Where, in a researcher's words: ``Sheet 'survey', row 3, column 'type'``."""
    parts = [f"Sheet '{sheet}'"]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column '{column}'")
    return ", ".join(parts)


def explain(message: str, sheets: Sheets, known_types: Sequence[str]) -> str:
    """pyxform's ``message`` led by its place, with a did-you-mean when a name is close."""
    message = message.strip()
    row_match = _ROW.match(message)
    row = int(row_match[1]) if row_match else None
    body = message[row_match.end() :] if row_match else message

    if listed := _UNKNOWN_LIST.match(body):
        name = listed[1].strip()
        lists = _column_values(sheets, "choices", "list_name")
        lists |= _column_values(sheets, "external_choices", "list_name")
        return (
            f"{place('survey', row, 'type')}: the list '{name}' is not on the choices sheet "
            f"(no row there has it as its list_name).{did_you_mean(name, lists)}"
        )
    if unknown := _UNKNOWN_TYPE.match(body):
        name = unknown[1]
        row = row or _row_where(sheets, "survey", "type", name)
        return (
            f"{place('survey', row, 'type')}: {body.rstrip('.')}.{did_you_mean(name, known_types)}"
        )
    if located := _SHEET_AND_COLUMN.match(body):
        sheet, column = located[1], located[2]
        rest = body[located.end() :].lstrip(" ,")
        text = f"{place(sheet, row, column)}: the value {rest}"
        if missing := _UNKNOWN_NAME.search(body):
            text += did_you_mean(missing[1], _column_values(sheets, "survey", "name"))
        return text
    if row is not None:
        return f"{place('survey', row)}: {body}"
    if header := _MISSING_HEADER.search(body):
        sheet, column = header[1], header[2]
        headers = {str(key).strip() for row in _rows(sheets, f"{sheet}_header") for key in row}
        renamed = did_you_mean(column, headers).removeprefix(" Did you mean ").rstrip("?")
        hint = f" Should the column {renamed} be '{column}'?" if renamed else ""
        return f"{place(sheet, 1)}: {body}{hint}"
    return body


def _rows(sheets: Sheets, sheet: str) -> list[Mapping[str, Any]]:
    rows = sheets.get(sheet) or []
    return [row for row in rows if isinstance(row, Mapping)]


def _cell(row: Mapping[str, Any], column: str) -> str:
    for key, value in row.items():
        if str(key).strip().lower() == column and value is not None:
            return str(value).strip()
    return ""


def _column_values(sheets: Sheets, sheet: str, column: str) -> set[str]:
    return {value for row in _rows(sheets, sheet) if (value := _cell(row, column))}


def _row_where(sheets: Sheets, sheet: str, column: str, value: str) -> int | None:
    for index, row in enumerate(sheets.get(sheet) or []):
        if isinstance(row, Mapping) and _cell(row, column) == value.strip():
            return index + _FIRST_DATA_ROW
    return None
