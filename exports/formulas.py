"""The optional formula guard of the CSV (CSV injection, OWASP's advice).

Excel and LibreOffice evaluate a CSV cell that starts with = + - or @ (and,
via some import paths, tab or carriage return), so `=cmd|' /C calc'!A0` typed
into a phone could become a command on the analyst's machine. With the guard
on, such cells get a leading single quote, which spreadsheets read as "this is
text".

The guard changes data, so it is off by default and only ever applies to the
CSV: Central writes every value as is, and scripts reading Homeward's CSV zip
in its place (pyODK, ruODK, R, Stata) must get the same bytes. XLSX never
needs it (its text cells are typed strings, never run) and neither do Parquet
or GeoJSON (no spreadsheet runs them). See README "Exporting".

Only what a spreadsheet would run is escaped: plain numbers (-5, -12.5, +3e2),
coordinate lists (-1.28 36.8 0 0;...) and a lone "-" or "+" (a "none" answer,
which Excel shows as text) are left alone.
"""

from __future__ import annotations

import polars as pl

__all__ = ["escape_formulas", "escaped_text", "formula_escaped"]

# = and @ start a formula at once; + and - only when something follows them.
_RISKY = r"^(?:[=@\t\r]|[+\-].)"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_POINT = rf"{_NUMBER}(?:[ \t]+{_NUMBER})*"
# A number, or geo values: points of numbers separated by spaces, joined by ";".
_HARMLESS = rf"^{_POINT}(?:[ \t]*;[ \t]*{_POINT})*[ \t;]*$"


def formula_escaped(column: str) -> pl.Expr:
    """The column with risky cells prefixed by a single quote."""
    return escaped_text(pl.col(column)).alias(column)


def escaped_text(value: pl.Expr) -> pl.Expr:
    """Any text expression (list elements too) with risky values prefixed by a single quote."""
    risky = value.str.contains(r"(?s)" + _RISKY) & ~value.str.contains(_HARMLESS)
    return pl.when(risky).then(pl.lit("'") + value).otherwise(value)


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(formula_escaped(name) for name in frame.columns)
