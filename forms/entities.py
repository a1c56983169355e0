"""ODK Entities in forms and submissions (ODK XForms Entities spec 2022.1.0 -> 2024.1.0).

A form declares one entity list (a *dataset*) in its primary instance's
`meta/entity` element and maps questions to the list's properties with
`entities:saveto` binds; a submission carries the same element filled in
(`dataset`, `id`, `create`/`update`, `baseVersion`, and since 2024.1.0
`trunkVersion`/`branchId` for offline entities) plus a `label` child.

Everything here is pure: the server decides what to do with an `EntityAction`.
"""

from __future__ import annotations

import re
import uuid as uuid_module

import msgspec
from lxml import etree

from forms.xml import first_child, local_name

__all__ = [
    "ENTITIES_NS",
    "EntityAction",
    "EntityDeclaration",
    "EntityProblem",
    "SubmittedEntity",
    "entity_action",
    "read_declaration",
    "read_submitted_entity",
    "valid_property_name",
]

ENTITIES_NS = "http://www.opendatakit.org/xforms/entities"
_SAVETO = f"{{{ENTITIES_NS}}}saveto"
_VERSION = f"{{{ENTITIES_NS}}}entities-version"
_TRUTHY = frozenset({"1", "true"})
# Central's rule for property names: what may be an XML element name, minus the
# names the CSV and OData reserve.
_PROPERTY_NAME = re.compile(r"^(?:[^\W\d]|:)[\w.:-]*$")
_RESERVED = frozenset({"name", "label"})
# Names are stored in columns of this width (server/db/models.py).
MAX_NAME_LENGTH = 255


class EntityDeclaration(msgspec.Struct, frozen=True):
    """What a form version says about the entity list it fills."""

    dataset: str
    # entities:entities-version on the model ("2022.1.0", "2023.1.0", "2024.1.0").
    spec_version: str
    # Property name -> field path below the instance root ("/first_name").
    properties: dict[str, str] = msgspec.field(default_factory=dict)
    # Whether the form may create / update entities (an attribute is present,
    # whatever value or calculation decides it per submission).
    creates: bool = False
    updates: bool = False
    # 2024.1.0 forms carry trunkVersion and branchId: entities edited offline.
    offline: bool = False


class SubmittedEntity(msgspec.Struct, frozen=True):
    """The `meta/entity` block of one submission, as sent."""

    dataset: str
    id: str
    create: bool
    update: bool
    label: str | None
    base_version: str = ""
    trunk_version: str = ""
    branch_id: str = ""


class EntityProblem(msgspec.Struct, frozen=True):
    """Why a submission's entity block could not be used (Central's problem codes)."""

    code: float
    message: str


class EntityAction(msgspec.Struct, frozen=True):
    """What a submission asks of its entity list."""

    kind: str  # "create" | "update" | "upsert" (create and update both set)
    dataset: str
    uuid: str
    label: str | None
    data: dict[str, str]
    base_version: int | None = None
    trunk_version: int | None = None
    branch_id: str | None = None


def read_declaration(model: etree._Element, root: etree._Element) -> EntityDeclaration | None:
    """The entity list an XForm's model and primary instance root declare, if any."""
    meta = first_child(root, "meta")
    entity = first_child(meta, "entity") if meta is not None else None
    if entity is None or not entity.get("dataset"):
        return None
    root_prefix = f"/{local_name(root)}"
    properties: dict[str, str] = {}
    for bind in model.iter("{*}bind"):
        name = bind.get(_SAVETO)
        nodeset = bind.get("nodeset", "").strip()
        if name and nodeset.startswith(root_prefix + "/"):
            properties.setdefault(name.strip(), nodeset[len(root_prefix) :])
    return EntityDeclaration(
        dataset=entity.get("dataset", ""),
        spec_version=model.get(_VERSION, ""),
        properties=properties,
        creates=entity.get("create") is not None,
        updates=entity.get("update") is not None,
        offline=entity.get("branchId") is not None and entity.get("trunkVersion") is not None,
    )


def valid_property_name(name: str) -> bool:
    """Central's rule: a valid XML name, not `name` or `label`, not starting with `__`."""
    return (
        len(name) <= MAX_NAME_LENGTH
        and bool(_PROPERTY_NAME.match(name))
        and name.lower() not in _RESERVED
        and not name.startswith("__")
    )


def read_submitted_entity(root: etree._Element) -> SubmittedEntity | None:
    """The `meta/entity` block of a parsed submission root, if it has one."""
    meta = first_child(root, "meta")
    entity = first_child(meta, "entity") if meta is not None else None
    if entity is None:
        return None
    label = first_child(entity, "label")
    return SubmittedEntity(
        dataset=entity.get("dataset", "").strip(),
        id=entity.get("id", "").strip(),
        create=entity.get("create", "").strip().lower() in _TRUTHY,
        update=entity.get("update", "").strip().lower() in _TRUTHY,
        label=(label.text or "").strip() if label is not None else None,
        base_version=entity.get("baseVersion", "").strip(),
        trunk_version=entity.get("trunkVersion", "").strip(),
        branch_id=entity.get("branchId", "").strip(),
    )


def entity_action(
    declaration: EntityDeclaration,
    submitted: SubmittedEntity | None,
    record: dict[str, object],
) -> EntityAction | EntityProblem | None:
    """What the submission asks for: None (nothing), an action, or why it cannot be done.

    Answers of the properties come from the parsed record at the saveto paths; an
    update only changes the properties the form saves to.
    """
    if submitted is None or not (submitted.create or submitted.update):
        return None
    if submitted.dataset and submitted.dataset != declaration.dataset:
        return EntityProblem(
            400.8,
            f"The submission names the entity list '{submitted.dataset}' but its form "
            f"saves to '{declaration.dataset}'.",
        )
    entity_id = submitted.id.removeprefix("uuid:")
    if not entity_id:
        return EntityProblem(400.2, "Required parameter uuid missing.")
    try:
        parsed_id = uuid_module.UUID(entity_id)
    except ValueError:
        return EntityProblem(
            400.11,
            f"Invalid input data type: expected (uuid) to be (valid UUID), got '{entity_id}'.",
        )
    kind = "upsert" if submitted.create and submitted.update else "create"
    if not submitted.create:
        kind = "update"
    label = submitted.label or None
    if kind == "create" and not label:
        return EntityProblem(400.2, "Required parameter label missing.")
    base_version = _version(submitted.base_version)
    if kind == "update" and submitted.base_version and base_version is None:
        return EntityProblem(
            400.11,
            "Invalid input data type: expected (baseVersion) to be (an integer), "
            f"got '{submitted.base_version}'.",
        )
    data = {
        name: _leaf(record, path)
        for name, path in declaration.properties.items()
        if _present(record, path)
    }
    return EntityAction(
        kind=kind,
        dataset=declaration.dataset,
        uuid=str(parsed_id),
        label=label,
        data=data,
        base_version=base_version,
        trunk_version=_version(submitted.trunk_version),
        branch_id=submitted.branch_id or None,
    )


def _version(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _steps(path: str) -> list[str]:
    return [step for step in path.split("/") if step]


def _present(record: dict[str, object], path: str) -> bool:
    node: object = record
    for step in _steps(path):
        if not isinstance(node, dict) or step not in node:
            return False
        node = node[step]
    return not isinstance(node, (dict, list))


def _leaf(record: dict[str, object], path: str) -> str:
    node: object = record
    for step in _steps(path):
        assert isinstance(node, dict)
        node = node[step]
    return str(node)
