"""Which form ids are accepted, as ODK Central decides, and a little stricter.

Central takes any non-blank id except one ending in ``.xls``, ``.xlsx`` or
``.xml`` (its URLs ``{id}.xml`` and ``{id}.xlsx`` serve the definition, so such
an id would be read as another one). Homeward also refuses what no client can
type or carry safely: control characters (they break XML, logs and headers),
ids that are only dots (``.`` and ``..`` are path steps: clients and proxies
resolve them away before the request arrives), and surrounding spaces (Collect
and spreadsheets trim them, so the id would stop matching).
Everything else — ``/``, ``%``, quotes, non-ASCII — is a valid id and every
route addresses it percent-encoded.
"""

from __future__ import annotations

import re
import unicodedata

MAX_FORM_ID_LENGTH = 512
_DEFINITION_SUFFIX = re.compile(r"\.(xlsx?|xml)$")


CONTROL_CHARACTER_REASON = (
    "the form id contains a control character (a tab, line break or similar)."
)


def has_control_character(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def form_id_problem(form_id: str) -> str | None:
    """Why ``form_id`` cannot be used, as the end of a sentence; None when it can."""
    if form_id.strip() == "":
        return "a form needs an id (the settings sheet's form_id, or the id attribute)."
    if form_id != form_id.strip():
        return "the form id starts or ends with a space; remove it."
    if has_control_character(form_id):
        return CONTROL_CHARACTER_REASON
    if set(form_id) == {"."}:
        return "the form id cannot be only dots: '.' and '..' are read as steps in a path."
    if _DEFINITION_SUFFIX.search(form_id):
        return (
            "the form id cannot end in .xls, .xlsx or .xml; set another id in the form "
            "(or rename the file, e.g. form.xls.xls to form.xls)."
        )
    if len(form_id) > MAX_FORM_ID_LENGTH:
        return f"the form id is longer than {MAX_FORM_ID_LENGTH} characters."
    return None
