"""A form's OData shape: the tree of its fields with OData names, types and tables.

Central names things the same way everywhere: a field's OData name is its XML
name made into an identifier (``sanitize``), a group becomes a complex type
named by its path (``household.member``), and a repeat an entity set
``Submissions.<path with dots>`` whose rows carry the parent's id in
``__Submissions-<parent path with dashes>-id``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from forms.schema import REPEAT, STRUCTURE, FormSchema

from .errors import ODataError

__all__ = [
    "EDM_TYPES",
    "ROOT_TABLE",
    "SYSTEM_PROPERTIES",
    "Node",
    "ODataModel",
    "build_model",
    "sanitize",
]

ROOT_TABLE = "Submissions"

# Bind types with an Edm type of their own; every other type is Edm.String.
EDM_TYPES = {
    "int": "Edm.Int64",
    "decimal": "Edm.Decimal",
    "boolean": "Edm.Boolean",
    "geopoint": "Edm.GeographyPoint",
    "geotrace": "Edm.GeographyLineString",
    "geoshape": "Edm.GeographyPolygon",
    "date": "Edm.Date",
    "dateTime": "Edm.DateTimeOffset",
}

# The __system block of a Submissions row, in Central's order, with Edm types.
SYSTEM_PROPERTIES = {
    "submissionDate": "Edm.DateTimeOffset",
    "updatedAt": "Edm.DateTimeOffset",
    "deletedAt": "Edm.DateTimeOffset",
    "submitterId": "Edm.String",
    "submitterName": "Edm.String",
    "attachmentsPresent": "Edm.Int64",
    "attachmentsExpected": "Edm.Int64",
    "status": "org.opendatakit.submission.Status",
    "reviewState": "org.opendatakit.submission.ReviewState",
    "deviceId": "Edm.String",
    "edits": "Edm.Int64",
    "formVersion": "Edm.String",
}

_LEADING = re.compile(r"^([^a-z_])", re.IGNORECASE)
_INVALID = re.compile(r"[^a-z0-9_]+", re.IGNORECASE)


def sanitize(name: str) -> str:
    """An XML name as an OData identifier, the way Central makes one."""
    return _INVALID.sub("_", _LEADING.sub(r"_\1", name))


@dataclass(eq=False, slots=True)
class Node:
    """A field of the form; the root node stands for the Submissions table."""

    name: str  # OData name (sanitised)
    key: str  # element name in the stored record
    path: str  # schema path, "" for the root
    kind: str
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None

    @property
    def is_table(self) -> bool:
        return self.kind == REPEAT or self.parent is None

    @property
    def parts(self) -> list[str]:
        """OData names from the root down to this node."""
        return [sanitize(step) for step in self.path.split("/") if step]

    @property
    def table_name(self) -> str:
        return ".".join([ROOT_TABLE, *self.parts])

    @property
    def enclosing_table(self) -> Node:
        node = self.parent
        while node is not None and not node.is_table:
            node = node.parent
        assert node is not None, "the root has no enclosing table"
        return node

    @property
    def parent_id_property(self) -> str:
        """For a repeat: the name of the property holding its parent row's id."""
        return "__" + "-".join([ROOT_TABLE, *self.enclosing_table.parts]) + "-id"


@dataclass(slots=True)
class ODataModel:
    form_id: str
    root: Node
    tables: dict[str, Node]  # entity set name -> root or repeat node

    @property
    def namespace(self) -> str:
        return f"org.opendatakit.user.{sanitize(self.form_id)}"

    def table(self, name: str) -> Node:
        node = self.tables.get(name)
        if node is None:
            raise ODataError(404.1, f"This form has no table named {name!r}.")
        return node


def build_model(schema: FormSchema) -> ODataModel:
    root = Node(name=ROOT_TABLE, key="", path="", kind=STRUCTURE)
    by_path: dict[str, Node] = {"": root}
    tables = {ROOT_TABLE: root}
    for item in schema.fields:
        parent_path = item.path.rsplit("/", 1)[0]
        parent = by_path.get(parent_path)
        if parent is None:
            continue  # a field below something the schema does not list
        node = Node(
            name=sanitize(item.name), key=item.name, path=item.path, kind=item.kind, parent=parent
        )
        parent.children.append(node)
        by_path[item.path] = node
        if item.kind == REPEAT:
            tables[node.table_name] = node
    return ODataModel(schema.form_id, root, tables)
