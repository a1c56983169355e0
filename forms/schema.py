"""The compiled shape of a form, as stored beside each form version.

A FormSchema is read once from the XForm (see forms.xform) and then drives
everything that must know the form without parsing it again: which answers are
files, which are personal, how exports lay out columns and repeat tables, and
which attachments the phone will ask for. It is plain msgspec data so it can
be stored as JSON and decoded cheaply on every export.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "HOMEWARD_NS",
    "Choice",
    "Field",
    "FormSchema",
    "MediaRef",
    "decode_schema",
    "encode_schema",
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
