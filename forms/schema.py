"""The compiled shape of a form, as stored beside each form version.

A FormSchema is read once from the XForm (see forms.xform) and then drives
everything that must know the form without parsing it again: which answers are
files, which are personal, how exports lay out columns and repeat tables, and
which attachments the phone will ask for. It is plain msgspec data so it can
be stored as JSON and decoded cheaply on every export.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from forms.entities import EntityDeclaration

__all__ = [
    "HOMEWARD_NS",
    "Choice",
    "Field",
    "FormSchema",
    "MediaRef",
    "decode_schema",
    "encode_schema",
    "merge_schemas",
]

# Our own XForm namespace, for bind attributes that ODK tools ignore but
# Homeward acts on (e.g. homeward:personal="yes" marks personal data).
HOMEWARD_NS = "urn:homeward:xforms"

# Kinds of Field: "structure" (group), "repeat", or a normalised bind type:
# string, int, decimal, date, time, dateTime, geopoint, geotrace, geoshape,
# select1, select, binary, barcode, boolean, rank (and any other bind type,
# namespace prefix removed).
STRUCTURE = "structure"
REPEAT = "repeat"


class Field(msgspec.Struct, frozen=True):
    """One node of the primary instance (question, group or repeat)."""

    # Path below the instance root, without the root's name: "/household/member/age".
    path: str
    name: str
    kind: str
    # Path of the closest enclosing repeat, None at the top level.
    parent_repeat: str | None = None
    personal: bool = False
    # Language -> label text; "default" when the form is not translated.
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    # Key into FormSchema.choices (a secondary instance id, or the field's
    # path for inline <item>s), when the field is a select.
    choice_list: str | None = None


class Choice(msgspec.Struct, frozen=True):
    name: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)


class MediaRef(msgspec.Struct, frozen=True):
    """A file the form expects as an attachment."""

    name: str
    # "image", "audio", "video" or "file" (CSV, GeoJSON, XML ...).
    kind: str


class FormSchema(msgspec.Struct):
    form_id: str
    version: str | None
    title: str
    # Name of the primary instance's root element (also the submission root).
    root: str
    # Document order; groups and repeats have their own entries before their children.
    fields: list[Field] = msgspec.field(default_factory=list)
    languages: list[str] = msgspec.field(default_factory=list)
    choices: dict[str, list[Choice]] = msgspec.field(default_factory=dict)
    binary_paths: list[str] = msgspec.field(default_factory=list)
    encrypted: bool = False
    public_key: str | None = None
    media: list[MediaRef] = msgspec.field(default_factory=list)
    # Stems of CSV secondary instances (jr://file-csv/NAME.csv) other than
    # pyxform's itemsets.csv: each may be served from an entity list called
    # NAME if the project has one, otherwise it is an ordinary attachment.
    entity_lists: list[str] = msgspec.field(default_factory=list)
    # Entity list this form creates or updates entities in (meta/entity@dataset).
    entity_dataset: str | None = None
    # Whether meta/instanceName is calculated from personal answers; None for
    # schemas stored before this was recorded, taken as yes (forms.personal).
    instance_name_personal: bool | None = None
    # The whole declaration: spec version, saveto properties, create/update/offline.
    entity: EntityDeclaration | None = None

    @property
    def repeat_paths(self) -> frozenset[str]:
        return frozenset(f.path for f in self.fields if f.kind == REPEAT)

    @property
    def personal_paths(self) -> frozenset[str]:
        return frozenset(f.path for f in self.fields if f.personal)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(FormSchema)


def encode_schema(schema: FormSchema) -> bytes:
    return _encoder.encode(schema)


def decode_schema(data: bytes) -> FormSchema:
    return _decoder.decode(data)


def merge_schemas(current: FormSchema, older: Sequence[FormSchema]) -> FormSchema:
    """The current version's fields plus those only older versions had.

    What Central's exports show with `deletedFields=true`, so answers to
    questions removed from the form stay exportable. `older` is oldest first.
    As Central does, versions are folded from the oldest to the current one:
    each newer version keeps its fields in its order, and a field only the
    older side has comes back, with everything below it, right after the last
    field of its parent's subtree in the newer one (at the end of the form for
    a top-level field). A path present in both keeps the newer field (kind,
    labels, choice list). Fields keep their labels and personal marks; choice
    lists keep the current choices followed by those only older versions had,
    so old answers still find their labels. Identity, media and encryption are
    the current version's.
    """
    fields = older[0].fields if older else current.fields
    for version in [*older[1:], current] if older else []:
        fields = _revive(fields, version.fields)
    # A revived field may now sit in a repeat that was a group when it existed, or the reverse.
    repeats = [f.path for f in fields if f.kind == REPEAT]
    fields = [_in_closest_repeat(f, repeats) for f in fields]
    languages = list(current.languages)
    choices = {name: list(items) for name, items in current.choices.items()}
    for version in reversed(older):
        languages.extend(lang for lang in version.languages if lang not in languages)
        for name, items in version.choices.items():
            merged = choices.setdefault(name, [])
            known = {choice.name for choice in merged}
            merged.extend(choice for choice in items if choice.name not in known)
    return msgspec.structs.replace(
        current,
        fields=fields,
        languages=languages,
        choices=choices,
        binary_paths=[f.path for f in fields if f.kind == "binary"],
    )


def _revive(old: list[Field], new: list[Field]) -> list[Field]:
    """`new` with the subtrees only `old` has put back where Central puts them."""
    result = list(new)
    present = {f.path for f in new}
    index = 0
    while index < len(old):
        field = old[index]
        if field.path in present:
            index += 1
            continue
        end = index + 1
        while end < len(old) and old[end].path.startswith(field.path + "/"):
            end += 1
        parent = field.path.rpartition("/")[0]
        at = _end_of_subtree(result, parent)
        result[at:at] = old[index:end]
        index = end
    return result


def _end_of_subtree(fields: list[Field], parent: str) -> int:
    """Index just after the last field at or below `parent` ("" is the whole form)."""
    for index in range(len(fields) - 1, -1, -1):
        path = fields[index].path
        if path == parent or path.startswith(parent + "/"):
            return index + 1
    return len(fields)


def _in_closest_repeat(field: Field, repeats: list[str]) -> Field:
    enclosing = [path for path in repeats if field.path.startswith(path + "/")]
    parent = max(enclosing, key=len) if enclosing else None
    if parent == field.parent_repeat:
        return field
    return msgspec.structs.replace(field, parent_repeat=parent)
