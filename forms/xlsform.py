"""XLSForm -> XForm, through pyxform (the only module allowed to import it).

Besides calling pyxform this module guards it: spreadsheets are zip files and
are checked for zip bombs before openpyxl opens them, the real workbook format
is sniffed from the bytes (researchers rename .xls files to .xlsx), and the
Homeward-only `personal` column is turned into a bind attribute pyxform knows
how to write.
"""

from __future__ import annotations

import functools
import threading
import warnings
import zipfile
from dataclasses import fields as dataclass_fields
from io import BytesIO
from typing import Any

import msgspec

from forms.schema import HOMEWARD_NS
from forms.xlsform_messages import explain

__all__ = ["CompiledXlsForm", "XlsFormError", "compile_xlsform"]

MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
MAX_ZIP_MEMBERS = 2000

_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SPREADSHEET_TYPES = {".xlsx": ".xlsx", ".xlsm": ".xlsm", ".xls": ".xls"}
_PERSONAL_COLUMN = "personal"
_PERSONAL_BIND = "bind::homeward:personal"
_NAMESPACE_DECLARATION = f'homeward="{HOMEWARD_NS}"'
_TRUTHY = frozenset({"yes", "true", "1", "true()"})

# openpyxl reports harmless oddities of real workbooks (unknown extensions,
# missing default styles) as Python warnings. They mean nothing to a
# researcher, so they are silenced around the conversion; the warnings
# filters are process-global, hence the lock (conversions are CPU-bound under
# the GIL anyway, so serialising them costs nothing).
_CONVERSION_LOCK = threading.Lock()


class XlsFormError(ValueError):
    """The XLSForm cannot be converted; the message is meant for its author."""


class CompiledXlsForm(msgspec.Struct, frozen=True):
    xml: bytes
    warnings: list[str]
    # pyxform's CSV of the external_choices sheet, to attach as itemsets.csv.
    itemsets_csv: bytes | None = None


def compile_xlsform(
    data: bytes, *, file_name: str, form_id_fallback: str | None = None
) -> CompiledXlsForm:
    """Convert an XLSForm (.xlsx, .xlsm, .xls, or a markdown table as .md) to an XForm.

    The form id is the settings sheet's form_id, else `form_id_fallback`, else "data".
    Synchronous and CPU-bound: run it in a worker thread.
    """
    # Imported here: pyxform (with openpyxl, xlrd and lark) costs most of a second of
    # start-up, and only form uploads need it, not an export or the ingest path.
    from pyxform.errors import PyXFormError
    from pyxform.xls2json_backends import get_xlsform
    from pyxform.xls2xform import convert

    file_type = _file_type(data, file_name)
    if file_type in (".xlsx", ".xlsm"):
        _check_zip(data)
    with _CONVERSION_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        definition: dict[str, Any] = {}
        try:
            workbook = get_xlsform(BytesIO(data), file_type=file_type)
            definition = {f.name: getattr(workbook, f.name) for f in dataclass_fields(workbook)}
            definition["fallback_form_name"] = form_id_fallback
            _carry_personal_marker(definition)
            found: list[str] = []
            result = convert(definition, warnings=found)
        except PyXFormError as err:
            raise XlsFormError(_explain(str(err), definition)) from err
        except Exception as err:
            # openpyxl, xlrd and pyxform itself fail on odd input with all kinds
            # of exceptions; to the author they all mean the same thing.
            raise XlsFormError(
                f"The spreadsheet is not a valid XLSForm: it could not be read ({err!r})"
            ) from err
    itemsets = result.itemsets
    return CompiledXlsForm(
        xml=result.xform.encode("utf-8"),
        warnings=[explain(str(w), definition, _question_types()) for w in result.warnings],
        itemsets_csv=itemsets.encode("utf-8") if itemsets else None,
    )


def _file_type(data: bytes, file_name: str) -> str:
    extension = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    # The bytes decide over the name: an old .xls saved under an .xlsx name is common.
    if data.startswith(_OLE2_MAGIC):
        return ".xls"
    if data.startswith(_ZIP_MAGIC):
        return ".xlsm" if extension == ".xlsm" else ".xlsx"
    if extension == ".md":
        return ".md"
    if extension in _SPREADSHEET_TYPES:
        raise XlsFormError(
            f"The spreadsheet is not a valid XLSForm: {file_name!r} is not an Excel "
            "workbook (the file may be damaged, or saved in another format)"
        )
    raise XlsFormError(
        f"The spreadsheet is not a valid XLSForm: {file_name!r} is not an .xlsx, .xls "
        "or .xlsm workbook"
    )


def _check_zip(data: bytes) -> None:
    """Refuse workbooks whose contents would unpack to far more than they weigh."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as err:
        raise XlsFormError(
            f"The spreadsheet is not a valid XLSForm: the workbook file is damaged ({err})"
        ) from err
    if len(members) > MAX_ZIP_MEMBERS:
        raise XlsFormError(
            f"The spreadsheet is not a valid XLSForm: it holds {len(members)} files "
            f"(at most {MAX_ZIP_MEMBERS} are accepted)"
        )
    total = sum(member.file_size for member in members)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise XlsFormError(
            "The spreadsheet is not a valid XLSForm: it unpacks to more than "
            f"{MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} MB"
        )
    for member in members:
        if member.file_size and (
            member.compress_size == 0
            or member.file_size / member.compress_size > MAX_COMPRESSION_RATIO
        ):
            raise XlsFormError(
                "The spreadsheet is not a valid XLSForm: its part "
                f"{member.filename!r} is compressed suspiciously well (a zip bomb?)"
            )


def _carry_personal_marker(definition: dict[str, Any]) -> None:
    """Turn the survey sheet's `personal` column into a homeward:personal bind.

    pyxform drops columns it does not know, but writes any `bind::prefix:name`
    column as a bind attribute once the prefix is declared in the settings
    sheet's `namespaces`; an author may also write that column directly.
    """
    survey = definition.get("survey")
    if not survey:
        return
    rows: list[dict[str, Any]] = []
    uses_namespace = False
    for row in survey:
        new_row = {}
        marked = False
        for key, value in row.items():
            if key.strip().lower() == _PERSONAL_COLUMN:
                marked = str(value or "").strip().lower() in _TRUTHY
                continue
            new_row[key] = value
            uses_namespace |= key.strip().lower().startswith("bind::homeward:")
        if marked:
            new_row[_PERSONAL_BIND] = "yes"
            uses_namespace = True
        rows.append(new_row)
    definition["survey"] = rows
    if definition.get("survey_header"):
        definition["survey_header"] = [
            {
                (_PERSONAL_BIND if k.strip().lower() == _PERSONAL_COLUMN else k): v
                for k, v in header.items()
            }
            for header in definition["survey_header"]
        ]
    if uses_namespace:
        _declare_namespace(definition)


def _declare_namespace(definition: dict[str, Any]) -> None:
    settings = [dict(row) for row in definition.get("settings") or []] or [{}]
    first = settings[0]
    key = next((k for k in first if k.strip().lower() == "namespaces"), "namespaces")
    declared = str(first.get(key) or "").strip()
    if "homeward=" not in declared:
        first[key] = f"{declared} {_NAMESPACE_DECLARATION}".strip()
    definition["settings"] = settings
    header = [dict(row) for row in definition.get("settings_header") or []] or [{}]
    header[0].setdefault(key, None)
    definition["settings_header"] = header


def _explain(message: str, definition: dict[str, Any]) -> str:
    if "was not recognized as a supported type" in message:
        return "The spreadsheet is not a valid XLSForm: the file could not be read as a workbook"
    return explain(message, definition, _question_types())


@functools.cache
def _question_types() -> list[str]:
    """Type names worth suggesting for a typo: today's spellings, not pyxform's
    legacy aliases ("add integer prompt", "q int")."""
    from pyxform.question_type_dictionary import QUESTION_TYPE_DICT

    return sorted(
        {name for name in QUESTION_TYPE_DICT if not name.startswith(("add ", "q ", "get "))}
        | {
            "begin group",
            "end group",
            "begin repeat",
            "end repeat",
            "select_one",
            "select_multiple",
            "select_one_from_file",
            "select_multiple_from_file",
        }
    )
