"""Worksheet rows as SpreadsheetML, rendered a whole batch at a time by Polars.

xlsxwriter builds every cell through several Python calls, which made the XLSX
export five times slower than the CSV zip. The rows of a sheet are plain XML
(`<row><c r="B3" s="1"><v>34</v></c>...</row>`), so they are rendered here as
column expressions instead, and exports.xlsx hands the text to xlsxwriter's
constant_memory row file; xlsxwriter still writes everything else (styles,
headers, column widths, frozen panes, the package).

Text follows the rules xlsxwriter applies: XML special characters escaped,
control characters written as `_xHHHH_` (and "_x" as "_x005F_x", so text that
looks like such an escape is shown as typed), and cut at Excel's 32,767 characters.
Text cells are inline strings, never formulas.
"""

from __future__ import annotations

import polars as pl

__all__ = ["MAX_CELL_CHARS", "column_letters", "inline_string", "number_cell", "row_xml"]

MAX_CELL_CHARS = 32_767
# Characters XML 1.0 forbids or that parsers would change (CR), as OOXML writes them.
_CONTROL = [chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0D, 0x20)]]
# "_x" itself is written "_x005F_x" (an escaped "_"), so text that looks like an
# escape is shown as typed; one pass of one automaton does every replacement.
_XML_SPECIAL = ["_x", "&", "<", ">", *_CONTROL, "\ufffe", "\uffff"]
_XML_ESCAPED = [
    "_x005F_x",
    "&amp;",
    "&lt;",
    "&gt;",
    *(f"_x{ord(c):04X}_" for c in _CONTROL),
    "_xFFFE_",
    "_xFFFF_",
]


def column_letters(index: int) -> str:
    """Excel's name of a zero-based column index: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def number_cell(reference: pl.Expr, number: pl.Expr, style: int | None) -> pl.Expr:
    """`<c>` of a number given as text (null: no cell)."""
    styled = f'" s="{style}"><v>' if style is not None else '"><v>'
    return pl.concat_str([pl.lit('<c r="'), reference, pl.lit(styled), number, pl.lit("</v></c>")])


def inline_string(reference: pl.Expr, text: pl.Expr) -> pl.Expr:
    """`<c>` of a text (null: no cell)."""
    escaped = text.str.slice(0, MAX_CELL_CHARS).str.replace_many(_XML_SPECIAL, _XML_ESCAPED)
    # xml:space="preserve": Excel would otherwise trim spaces at the ends.
    opening = pl.lit('" t="inlineStr"><is><t xml:space="preserve">')
    return pl.concat_str([pl.lit('<c r="'), reference, opening, escaped, pl.lit("</t></is></c>")])


def row_xml(row_number: pl.Expr, cells: list[pl.Expr]) -> pl.Expr:
    """`<row>` holding the cells that are not null."""
    return pl.concat_str(
        [
            pl.lit('<row r="'),
            row_number,
            pl.lit('">'),
            *(cell.fill_null("") for cell in cells),
            pl.lit("</row>"),
        ]
    )
