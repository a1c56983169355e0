"""The table plan: which tables and columns an export of a form has.

Built once per export from the FormSchema and the options, it fixes Central's
layout so every writer (CSV zip, XLSX, Parquet, GeoJSON) shows the same tables:
a root table named after the form id, then one table per repeat in document
order (depth first), flat even when repeats nest, each keyed by Central's
KEY/PARENT_KEY. Columns that depend on the data (one 0/1 column per select
multiple value) are added when a table is shaped; see exports.tabulate.
"""

from __future__ import annotations

import re

import msgspec

from exports.options import ExportError, ExportOptions
from forms.personal import personal_fields
from forms.schema import REPEAT, STRUCTURE, Field, FormSchema

__all__ = [
    "GEOPOINT_PARTS",
    "KEY",
    "PARENT_KEY",
    "Column",
    "ExportPlan",
    "TablePlan",
    "file_name_for",
    "label_language",
    "pick_label",
    "plan_export",
    "sanitize_file_name",
]

GEOPOINT_PARTS = ("Latitude", "Longitude", "Altitude", "Accuracy")
# Keys of the system columns in raw frames; field paths always start with "/".
SUBMISSION_DATE = "@SubmissionDate"
KEY = "@KEY"
PARENT_KEY = "@PARENT_KEY"
STATUS = "@Status"
ROOT_TAIL = (
    "KEY",
    "SubmitterID",
    "SubmitterName",
    "AttachmentsPresent",
    "AttachmentsExpected",
    "Status",
    "ReviewState",
    "DeviceID",
    "Edits",
    "FormVersion",
)
SYSTEM = "system"
SELECT_MULTIPLE = "select"
SELECT_ONE = "select1"
GEOPOINT = "geopoint"


class Column(msgspec.Struct, frozen=True):
    """One output column (before select multiple values are split out)."""

    # Unique within its table (header names need not be: groupPaths=false).
    key: str
    # The header Central writes.
    name: str
    # The raw frame column it is read from: a field path, or "@KEY" and the like.
    source: str
    # The field's kind, or "system".
    kind: str
    # Index into GEOPOINT_PARTS for the four columns of a geopoint.
    part: int | None = None
    # A personal field's column whose values are replaced by pseudonyms.
    pseudonymised: bool = False
    choice_list: str | None = None


class TablePlan(msgspec.Struct, frozen=True):
    # "<formId>" for the root, "<formId>-<repeat name>" (with "~n" when two
    # repeats share a name) for repeats.
    name: str
    file_name: str
    repeat_path: str | None
    # Path of the enclosing repeat; None when the parent is the root table.
    parent_repeat: str | None
    columns: tuple[Column, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        """Raw frame columns, each once, in column order."""
        return tuple(dict.fromkeys(column.source for column in self.columns))


class ExportPlan(msgspec.Struct, frozen=True):
    form_id: str
    # The root table first, then the repeats depth first.
    tables: tuple[TablePlan, ...]
    # Every repeat of the form, planned or not (root-only exports skip them).
    repeat_paths: frozenset[str]
    # Choice list -> value -> label, for the lists of exported selects (labels=True).
    choice_labels: dict[str, dict[str, str]]
    options: ExportOptions

    @property
    def root(self) -> TablePlan:
        return self.tables[0]

    def table_for(self, repeat_path: str | None) -> TablePlan | None:
        return next((t for t in self.tables if t.repeat_path == repeat_path), None)


def plan_export(
    schema: FormSchema, options: ExportOptions, *, root_only: bool = False
) -> ExportPlan:
    personal = personal_fields([schema])
    columns: dict[str | None, list[Column]] = {None: [_system(SUBMISSION_DATE, "SubmissionDate")]}
    repeats: list[Field] = []
    for field in schema.fields:
        if field.parent_repeat not in columns:
            continue  # inside a repeat that is not exported (root_only)
        if field.kind == REPEAT:
            if not root_only:
                repeats.append(field)
                columns[field.path] = []
            continue
        if field.kind == STRUCTURE:
            continue
        is_personal = personal.covers(field.path)
        if is_personal and options.personal == "drop":
            continue
        pseudonymised = is_personal and options.personal == "pseudonymise"
        columns[field.parent_repeat].extend(_field_columns(field, pseudonymised, options))
    columns[None].extend(_system(f"@{name}", name) for name in ROOT_TAIL)
    for field in repeats:
        columns[field.path].extend((_system(PARENT_KEY, "PARENT_KEY"), _system(KEY, "KEY")))

    tables = [
        TablePlan(
            name=schema.form_id,
            # Central cleans the root's form id, then adds ".csv" (a repeat's whole name).
            file_name=sanitize_file_name(schema.form_id) + ".csv",
            repeat_path=None,
            parent_repeat=None,
            columns=tuple(columns[None]),
        )
    ]
    for field, name in zip(repeats, _repeat_table_names(schema.form_id, repeats), strict=True):
        tables.append(
            TablePlan(
                name=name,
                file_name=file_name_for(name),
                repeat_path=field.path,
                parent_repeat=field.parent_repeat,
                columns=tuple(columns[field.path]),
            )
        )
    return ExportPlan(
        form_id=schema.form_id,
        tables=tuple(tables),
        repeat_paths=schema.repeat_paths,
        choice_labels=_choice_labels(schema, tables, options) if options.labels else {},
        options=options,
    )


def _system(key: str, name: str) -> Column:
    return Column(key=key, name=name, source=key, kind=SYSTEM)


def _field_columns(field: Field, pseudonymised: bool, options: ExportOptions) -> list[Column]:
    if options.group_paths:
        relative = field.path[len(field.parent_repeat or "") + 1 :]
        name = relative.replace("/", "-")
    else:
        name = field.name
    if field.kind == GEOPOINT:
        return [
            Column(
                key=f"{field.path}#{part}",
                name=f"{name}-{part}",
                source=field.path,
                kind=field.kind,
                part=index,
                pseudonymised=pseudonymised,
            )
            for index, part in enumerate(GEOPOINT_PARTS)
        ]
    return [
        Column(
            key=field.path,
            name=name,
            source=field.path,
            kind=field.kind,
            pseudonymised=pseudonymised,
            choice_list=field.choice_list,
        )
    ]


def _repeat_table_names(form_id: str, repeats: list[Field]) -> list[str]:
    # Central numbers repeats that share a name in document order: form-name~1, form-name~2.
    totals: dict[str, int] = {}
    for field in repeats:
        totals[field.name] = totals.get(field.name, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for field in repeats:
        if totals[field.name] > 1:
            seen[field.name] = seen.get(field.name, 0) + 1
            names.append(f"{form_id}-{field.name}~{seen[field.name]}")
        else:
            names.append(f"{form_id}-{field.name}")
    return names


def _choice_labels(
    schema: FormSchema, tables: list[TablePlan], options: ExportOptions
) -> dict[str, dict[str, str]]:
    language = label_language(schema, options.language)
    labels: dict[str, dict[str, str]] = {}
    for table in tables:
        for column in table.columns:
            name = column.choice_list
            if name is None or name in labels or name not in schema.choices:
                continue
            labels[name] = {
                choice.name: pick_label(choice.labels, language) or choice.name
                for choice in schema.choices[name]
            }
    return labels


def label_language(schema: FormSchema, language: str | None) -> str | None:
    """The language to show labels in: the one asked for, or the form's first.

    A form declares languages as "Shqip (sq)"; the full name, the code in
    parentheses ("sq") or the name alone ("Shqip") each pick it, in any case.
    """
    if language is None:
        return schema.languages[0] if schema.languages else None
    if language == "default" and not schema.languages:
        return language
    wanted = language.strip().casefold()
    for declared in schema.languages:
        if wanted in _language_names(declared):
            return declared
    known = ", ".join(schema.languages) or "none (the form is not translated)"
    raise ExportError(f'The form has no language "{language}"; its languages are: {known}')


def _language_names(declared: str) -> set[str]:
    names = {declared.strip().casefold()}
    match = re.fullmatch(r"\s*(.*?)\s*\(([^()]*)\)\s*", declared)
    if match:
        names.update(part.strip().casefold() for part in match.groups() if part.strip())
    return names


def pick_label(labels: dict[str, str], language: str | None) -> str | None:
    """The label in `language`, else the untranslated one, else any."""
    if language is not None and labels.get(language):
        return labels[language]
    return labels.get("default") or next(iter(labels.values()), None)


# What sanitize-filename (used by Central) removes from zip member names.
_ILLEGAL = re.compile(r'[/?<>\\:*|"\x00-\x1f\x80-\x9f]')
_RESERVED = re.compile(r"^\.+$")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_WINDOWS_TRAILING = re.compile(r"[. ]+$")


def file_name_for(table_name: str) -> str:
    """The zip member name Central writes for a repeat table."""
    return sanitize_file_name(table_name + ".csv")


def sanitize_file_name(name: str) -> str:
    """What Central's sanitize-filename makes of a name: no path or control characters."""
    cleaned = _ILLEGAL.sub("", name)
    cleaned = _RESERVED.sub("", cleaned)
    cleaned = _WINDOWS_RESERVED.sub("", cleaned)
    cleaned = _WINDOWS_TRAILING.sub("", cleaned)
    encoded = cleaned.encode("utf-8")[:255]
    return encoded.decode("utf-8", errors="ignore")
