"""Escaping cells that spreadsheets would run as formulas (CSV injection).

Excel and LibreOffice evaluate a cell that starts with = + - or @ (and, via
some import paths, tab or carriage return), so `=cmd|' /C calc'!A0` typed into
a phone becomes a command on the analyst's machine. Such cells get a leading
single quote, which spreadsheets read as "this is text".

Central does not escape, so Homeward's default CSV differs from Central's for
exactly these cells; `ExportOptions(escape_formulas=False)` gives Central's
bytes. Plain numbers (-5, -12.5, +3e2) and coordinate lists (-1.28 36.8 0 0;...)
are not escaped, so numeric columns and southern/western geodata survive.
"""

from __future__ import annotations

import polars as pl

__all__ = ["escape_formulas", "escaped_text", "formula_escaped"]

_RISKY = r"^[=+\-@\t\r]"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_POINT = rf"{_NUMBER}(?:[ \t]+{_NUMBER})*"
# A number, or geo values: points of numbers separated by spaces, joined by ";".
_HARMLESS = rf"^{_POINT}(?:[ \t]*;[ \t]*{_POINT})*[ \t;]*$"


def formula_escaped(column: str) -> pl.Expr:
    """The column with risky cells prefixed by a single quote."""
    return escaped_text(pl.col(column)).alias(column)


def escaped_text(value: pl.Expr) -> pl.Expr:
    """Any text expression (list elements too) with risky values prefixed by a single quote."""
    risky = value.str.contains(_RISKY) & ~value.str.contains(_HARMLESS)
    return pl.when(risky).then(pl.lit("'") + value).otherwise(value)


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(formula_escaped(name) for name in frame.columns)
