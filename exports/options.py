"""Options every export writer honours.

The defaults reproduce Central's `submissions.csv.zip` byte for byte: values
are written as collected. The CSV's formula guard (exports.formulas) is an
option. Filters that select submissions (date range, review state) are the
database's business and live with the server, not here.
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
    # CSV only: prefix cells a spreadsheet would run (= @, or + - followed by
    # more than a number) with a single quote (OWASP's advice against CSV
    # injection). Off by default, as in Central, because it changes data.
    escape_formulas: bool = False
    # XLSX only: a second header row with the questions' labels. Off by
    # default so pandas.read_excel and other readers see one header row and
    # read numbers and dates as such.
    label_row: bool = False

    def __post_init__(self) -> None:
        if self.personal == "pseudonymise" and not self.pseudonym_key:
            raise ExportError(
                "Pseudonymising personal fields needs a pseudonym key; none was given"
            )
