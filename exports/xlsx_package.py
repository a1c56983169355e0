"""The parts of an .xlsx package around its sheets, built with an XML library.

A workbook is a zip (Office Open XML, ECMA-376 part 2) of a few small parts:
`[Content_Types].xml` names each part's type, `_rels/.rels` points at the
workbook, `xl/workbook.xml` lists the sheets, `xl/_rels/workbook.xml.rels`
points at each sheet part and the styles, and `xl/styles.xml` holds the few
cell formats an export uses (`Style`). Sheet parts (`xl/worksheets/sheetN.xml`)
are streamed by exports.xlsx_part between the opening and closing text that
`sheet_frame` gives.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from enum import IntEnum

import msgspec

from exports.sheetxml import column_letters

__all__ = [
    "CONTENT_TYPES",
    "ROOT_RELS",
    "STYLES",
    "WORKBOOK",
    "WORKBOOK_RELS",
    "SheetLayout",
    "Style",
    "content_types_xml",
    "root_rels_xml",
    "sheet_frame",
    "sheet_part",
    "styles_xml",
    "workbook_rels_xml",
    "workbook_xml",
]

CONTENT_TYPES = "[Content_Types].xml"
ROOT_RELS = "_rels/.rels"
WORKBOOK = "xl/workbook.xml"
WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
STYLES = "xl/styles.xml"

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CONTENT = "http://schemas.openxmlformats.org/package/2006/content-types"
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Where the rows go in a sheet's XML: the element is split there.
_ROWS_MARK = "@rows@"


class Style(IntEnum):
    """Indexes into styles.xml's cellXfs: the cell formats an export uses."""

    PLAIN = 0
    HEADER = 1  # bold
    LABEL = 2  # italic
    DATE = 3  # yyyy-mm-dd
    DATETIME = 4  # yyyy-mm-dd hh:mm:ss


class SheetLayout(msgspec.Struct, frozen=True):
    """What a sheet part says about itself besides its rows."""

    widths: Sequence[float]
    header_rows: int
    rows: int  # all rows, header rows included
    selected: bool = False  # the sheet shown when the workbook opens


def sheet_part(number: int) -> str:
    return f"xl/worksheets/sheet{number}.xml"


def _xml(root: ET.Element) -> bytes:
    return _DECLARATION + bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False))


def content_types_xml(sheets: int) -> bytes:
    root = ET.Element("Types", xmlns=_CONTENT)
    ET.SubElement(root, "Default", Extension="rels", ContentType=_package("relationships+xml"))
    ET.SubElement(root, "Default", Extension="xml", ContentType="application/xml")
    parts = [(WORKBOOK, f"{_SML}.sheet.main+xml"), (STYLES, f"{_SML}.styles+xml")]
    parts += [(sheet_part(n), f"{_SML}.worksheet+xml") for n in range(1, sheets + 1)]
    for name, kind in parts:
        ET.SubElement(root, "Override", PartName="/" + name, ContentType=kind)
    return _xml(root)


def _package(kind: str) -> str:
    return f"application/vnd.openxmlformats-package.{kind}"


def root_rels_xml() -> bytes:
    root = ET.Element("Relationships", xmlns=_PACKAGE_REL)
    ET.SubElement(root, "Relationship", Id="rId1", Type=f"{_REL}/officeDocument", Target=WORKBOOK)
    return _xml(root)


def workbook_xml(names: Sequence[str]) -> bytes:
    root = ET.Element("workbook", {"xmlns": _MAIN, "xmlns:r": _REL})
    views = ET.SubElement(root, "bookViews")
    ET.SubElement(views, "workbookView", activeTab="0")
    sheets = ET.SubElement(root, "sheets")
    for number, name in enumerate(names, start=1):
        ET.SubElement(
            sheets, "sheet", {"name": name, "sheetId": str(number), "r:id": f"rId{number}"}
        )
    return _xml(root)


def workbook_rels_xml(sheets: int) -> bytes:
    root = ET.Element("Relationships", xmlns=_PACKAGE_REL)
    for number in range(1, sheets + 1):
        target = sheet_part(number).removeprefix("xl/")
        ET.SubElement(
            root, "Relationship", Id=f"rId{number}", Type=f"{_REL}/worksheet", Target=target
        )
    ET.SubElement(
        root, "Relationship", Id=f"rId{sheets + 1}", Type=f"{_REL}/styles", Target="styles.xml"
    )
    return _xml(root)


def styles_xml() -> bytes:
    """Fonts plain, bold and italic; dates and moments with their number formats."""
    root = ET.Element("styleSheet", xmlns=_MAIN)
    formats = ET.SubElement(root, "numFmts", count="2")
    ET.SubElement(formats, "numFmt", numFmtId="164", formatCode="yyyy-mm-dd")
    ET.SubElement(formats, "numFmt", numFmtId="165", formatCode="yyyy-mm-dd hh:mm:ss")
    fonts = ET.SubElement(root, "fonts", count="3")
    for emphasis in ("", "b", "i"):
        font = ET.SubElement(fonts, "font")
        if emphasis:
            ET.SubElement(font, emphasis)
        ET.SubElement(font, "sz", val="11")
        ET.SubElement(font, "name", val="Calibri")
        ET.SubElement(font, "family", val="2")
    fills = ET.SubElement(root, "fills", count="2")  # the two fills Excel requires first
    for pattern in ("none", "gray125"):
        ET.SubElement(ET.SubElement(fills, "fill"), "patternFill", patternType=pattern)
    borders = ET.SubElement(root, "borders", count="1")
    border = ET.SubElement(borders, "border")
    for side in ("left", "right", "top", "bottom", "diagonal"):
        ET.SubElement(border, side)
    base = ET.SubElement(root, "cellStyleXfs", count="1")
    ET.SubElement(base, "xf", numFmtId="0", fontId="0", fillId="0", borderId="0")
    cells = ET.SubElement(root, "cellXfs", count=str(len(Style)))
    xfs = {
        Style.PLAIN: ("0", "0"),
        Style.HEADER: ("0", "1"),
        Style.LABEL: ("0", "2"),
        Style.DATE: ("164", "0"),
        Style.DATETIME: ("165", "0"),
    }
    for style in Style:
        format_id, font_id = xfs[style]
        attributes = {"numFmtId": format_id, "fontId": font_id, "fillId": "0", "borderId": "0"}
        attributes["xfId"] = "0"
        if format_id != "0":
            attributes["applyNumberFormat"] = "1"
        if font_id != "0":
            attributes["applyFont"] = "1"
        ET.SubElement(cells, "xf", attributes)
    named = ET.SubElement(root, "cellStyles", count="1")
    ET.SubElement(named, "cellStyle", name="Normal", xfId="0", builtinId="0")
    return _xml(root)


def sheet_frame(layout: SheetLayout) -> tuple[bytes, bytes]:
    """A sheet part's XML before and after its rows (`<sheetData>` holds them)."""
    root = ET.Element("worksheet", {"xmlns": _MAIN, "xmlns:r": _REL})
    last = column_letters(max(len(layout.widths), 1) - 1)
    ET.SubElement(root, "dimension", ref=f"A1:{last}{max(layout.rows, 1)}")
    views = ET.SubElement(root, "sheetViews")
    view = ET.SubElement(views, "sheetView", workbookViewId="0")
    if layout.selected:
        view.set("tabSelected", "1")
    if layout.header_rows:
        # The header rows stay in view while the rows scroll.
        below = f"A{layout.header_rows + 1}"
        ET.SubElement(
            view,
            "pane",
            ySplit=str(layout.header_rows),
            topLeftCell=below,
            activePane="bottomLeft",
            state="frozen",
        )
        ET.SubElement(view, "selection", pane="bottomLeft", activeCell=below, sqref=below)
    ET.SubElement(root, "sheetFormatPr", defaultRowHeight="15")
    if layout.widths:
        columns = ET.SubElement(root, "cols")
        for number, width in enumerate(layout.widths, start=1):
            ET.SubElement(
                columns,
                "col",
                min=str(number),
                max=str(number),
                width=f"{width:g}",
                customWidth="1",
            )
    ET.SubElement(root, "sheetData").text = _ROWS_MARK
    before, after = _xml(root).split(_ROWS_MARK.encode())
    return before, after
