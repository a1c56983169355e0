"""Worksheet rows as SpreadsheetML, rendered a whole batch at a time by Polars.

Building cells one Python call at a time made the XLSX export five times
slower than the CSV zip. The rows of a sheet are plain XML
(`<row r="3"><c s="3"><v>34</v></c><c t="inlineStr">...</c></row>`), so they
are rendered here as column expressions instead, and exports.xlsx_part has
Polars' CSV writer join them and deflate them straight into the sheet's zip
member.

The CSV writer puts a separator between the columns of a row; the separator is
`<` and every column after a row's first is rendered without its leading `<`,
so the writer's output is exactly the row's XML and no string per row is ever
assembled (that copy cost about as much as rendering the cells). An empty cell
is the writer's null value, `c/>` after the separator.

Cells carry no reference (`r="B3"`): OOXML makes it optional, and a cell
without one is the next column of its row, as Excel, LibreOffice and openpyxl
read it. Every column therefore has a cell, `<c/>` where the answer is empty.
That leaves out about a third of the text that would otherwise be written,
rendered and deflated. Rows keep their number.

Text follows the rules OOXML writers apply: XML special characters escaped,
control characters written as `_xHHHH_` (and "_x" as "_x005F_x", so text that
looks like such an escape is shown as typed), a text with whitespace at either
end marked `xml:space="preserve"` (Excel trims it otherwise), and cut at
Excel's 32,767 characters. Text cells are inline strings, never formulas.
Escaping every text cost about half of rendering a sheet, and marking every
text made a sheet a fifth longer (rendered, written and deflated), though
hardly any text needs either: a slice of a sheet's rows checks each column
once (`needs_care`, `needs_cut`) and looks at each value only in the columns
where some value needs it. A cell's XML depends on its value alone, never on
the slice it was rendered in.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

__all__ = [
    "EMPTY_CELL",
    "MAX_CELL_CHARS",
    "ROW_CLOSING",
    "SEPARATOR",
    "column_letters",
    "escaped_text",
    "inline_string",
    "needs_care",
    "needs_cut",
    "number_cell",
    "row_columns",
    "text_row",
]

MAX_CELL_CHARS = 32_767
# Written by the CSV writer between a row's columns: the `<` each column after the first lacks.
SEPARATOR = "<"
# An empty cell (the CSV writer's null value) and the end of a row, after the separator.
EMPTY_CELL = "c/>"
ROW_CLOSING = "/row>"
_TEXT_CLOSING = "</t></is></c>"
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


# Joins a column's texts for one scan; a text holding it at worst gets a needless yes.
_JOINT = "\ue000"
# XML's whitespace that is not escaped (CR is, and is in _CONTROL): at either end of
# a text, Excel trims it unless the text keeps its spaces.
_SPACE = "[ \\t\\n]"
# A text that keeps its spaces: XML's whitespace at either end, CR (escaped) included.
_EDGE_SPACE = "^[ \\t\\n\\r]|[ \\t\\n\\r]$"
# Any of _XML_SPECIAL, or whitespace at either end of a joined text, as one pattern: a
# scan for it costs about a third of replacing them.
_CARE_PATTERN = (
    "_x|["
    + "".join(f"\\x{{{ord(c):X}}}" for c in ["&", "<", ">", *_CONTROL, "\ufffe", "\uffff"])
    + f"]|{_SPACE}(?:{_JOINT}|$)|(?:^|{_JOINT}){_SPACE}"
)


def column_letters(index: int) -> str:
    """Excel's name of a zero-based column index: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def escaped_text(text: pl.Expr) -> pl.Expr:
    """Text as the content of an XML element."""
    return text.str.replace_many(_XML_SPECIAL, _XML_ESCAPED)


def needs_care(text: pl.Expr) -> pl.Expr:
    """Whether any of the texts would change if escaped or needs its spaces kept
    (a boolean scalar); `inline_string(plain=True)` is for texts where it is false.

    The texts are joined into one first: a scan per value cost more.
    """
    return text.str.join(_JOINT).str.contains(_CARE_PATTERN)


def needs_cut(text: pl.Expr) -> pl.Expr:
    """Whether any of the texts is longer than a cell holds (a boolean scalar).

    Bytes are counted (O(1) a value): no text of at most 32,767 bytes has more characters.
    """
    return text.str.len_bytes().max().fill_null(0) > MAX_CELL_CHARS


def number_cell(number: pl.Expr, style: int | None) -> pl.Expr:
    """A cell holding a number given as text, without its leading `<` (null: empty)."""
    opening = f'c s="{style}"><v>' if style is not None else "c><v>"
    return pl.concat_str([pl.lit(opening), number, pl.lit("</v></c>")])


def inline_string(
    text: pl.Expr, style: int | None = None, *, plain: bool = False, cut: bool = True
) -> pl.Expr:
    """A cell holding a text, without its leading `<` (null: empty), cut at Excel's
    longest cell, escaped and marked to keep its spaces where it needs it.

    `plain=True` (no text needs escaping or marking: `needs_care`, and none is
    cut) and `cut=False` (none is longer: `needs_cut`) skip the steps that
    would change nothing.
    """
    styled = f' s="{style}"' if style is not None else ""
    opening = f'c{styled} t="inlineStr"><is><t>'
    if cut:
        text = text.str.slice(0, MAX_CELL_CHARS)
    if plain:
        return pl.concat_str([pl.lit(opening), text, pl.lit(_TEXT_CLOSING)])
    # After the cut: a cut can end a text in a space.
    kept = f'c{styled} t="inlineStr"><is><t xml:space="preserve">'
    marked = pl.when(text.str.contains(_EDGE_SPACE)).then(pl.lit(kept)).otherwise(pl.lit(opening))
    return pl.concat_str([marked, escaped_text(text), pl.lit(_TEXT_CLOSING)])


def row_columns(row_number: pl.Expr, cells: Sequence[pl.Expr]) -> list[pl.Expr]:
    """A row's columns for the CSV writer: `<row r="N">`, the cells, `/row>`."""
    opening = pl.concat_str([pl.lit('<row r="'), row_number, pl.lit('">')])
    closing = pl.lit(ROW_CLOSING)
    return [column.alias(f"c{i}") for i, column in enumerate([opening, *cells, closing])]


def text_row(number: int, texts: Sequence[str | None], style: int | None = None) -> str:
    """One row of text cells (headers, labels), as its XML."""
    frame = pl.DataFrame(
        {f"c{i}": [text or None] for i, text in enumerate(texts)},
        schema={f"c{i}": pl.String for i in range(len(texts))},
    )
    cells = frame.select(
        inline_string(pl.col(name), style).alias(name) for name in frame.columns
    ).row(0)
    inner = "".join(SEPARATOR + (cell or EMPTY_CELL) for cell in cells)
    return f'<row r="{number}">{inner}{SEPARATOR}{ROW_CLOSING}'
