"""Options every export writer honours.

The defaults reproduce Central's `submissions.csv.zip` except for one security
rule: cells that a spreadsheet would run as a formula are escaped (see
exports.formulas). Filters that select submissions (date range, review state)
are the database's business and live with the server, not here.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["ExportError", "ExportOptions", "PersonalMode"]

PersonalMode = Literal["keep", "drop", "pseudonymise"]


class ExportError(ValueError):
    """The export cannot be made as asked; the message says why in plain words."""


class ExportOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Central's groupPaths: "group-question" column names, or bare question names.
    group_paths: bool = True
    # Central's splitSelectMultiples: one 0/1 column per value seen in the data.
    split_select_multiples: bool = False
    # Choice labels instead of choice values (Central only offers values).
    labels: bool = False
    # Language of the labels, as the form names it ("English (en)"); None picks
    # the form's first language, or its only untranslated labels.
    language: str | None = None
    # Fields marked personal in the XLSForm: keep them, drop their columns, or
    # replace each value by a keyed pseudonym (first 16 hex digits of
    # HMAC-SHA256(pseudonym_key, value)), stable across exports with one key.
    personal: PersonalMode = "keep"
    pseudonym_key: bytes | None = None
    # Prefix cells starting with = + - @ (or tab, carriage return) with a single
    # quote so spreadsheets show them as text. Plain numbers such as -5 and
    # coordinates such as -1.28 36.8 are left alone. Central does not escape.
    escape_formulas: bool = True

    def __post_init__(self) -> None:
        if self.personal == "pseudonymise" and not self.pseudonym_key:
            raise ExportError(
                "Pseudonymising personal fields needs a pseudonym key; none was given"
            )
