"""The service document and the EDMX ``$metadata`` document of a form's OData feed."""

from __future__ import annotations

from typing import Any, cast

from lxml import etree

from forms.schema import REPEAT, STRUCTURE

from .model import EDM_TYPES, ROOT_TABLE, SYSTEM_PROPERTIES, Node, ODataModel

__all__ = ["render_metadata", "service_document"]

EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"
EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"
SYSTEM_NS = "org.opendatakit.submission"
CAPABILITIES = "Org.OData.Capabilities.V1"


def service_document(model: ODataModel, service_url: str) -> dict[str, Any]:
    """What a client reads first: the entity sets, the root table first."""
    return {
        "@odata.context": f"{service_url}/$metadata",
        "value": [{"name": name, "kind": "EntitySet", "url": name} for name in model.tables],
    }


def _edm(tag: str) -> str:
    return f"{{{EDM_NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, _edm(tag), attributes)


def _system_schema(services: etree._Element) -> None:
    schema = _sub(services, "Schema", Namespace=SYSTEM_NS)
    metadata = _sub(schema, "ComplexType", Name="metadata")
    for name, edm in SYSTEM_PROPERTIES.items():
        _sub(metadata, "Property", Name=name, Type=edm)
    for enum, members in (
        ("Status", ("notDecrypted", "missingEncryptedFormData")),
        ("ReviewState", ("hasIssues", "edited", "rejected", "approved")),
    ):
        element = _sub(schema, "EnumType", Name=enum)
        # Central leaves Value out (CSDL then numbers members from 0); some clients
        # (python-odata) require it, so it is spelled out with the same numbers.
        for value, member in enumerate(members):
            _sub(element, "Member", Name=member, Value=str(value))


def _properties(owner: etree._Element, node: Node, namespace: str) -> None:
    for child in node.children:
        if child.kind == STRUCTURE:
            type_name = f"{namespace}.{'.'.join(child.parts)}"
            _sub(owner, "Property", Name=child.name, Type=type_name)
        elif child.kind == REPEAT:
            type_name = f"Collection({namespace}.{child.table_name})"
            _sub(owner, "NavigationProperty", Name=child.name, Type=type_name)
        else:
            _sub(owner, "Property", Name=child.name, Type=EDM_TYPES.get(child.kind, "Edm.String"))


def _walk(node: Node) -> list[Node]:
    found = [node]
    for child in node.children:
        if child.kind in (STRUCTURE, REPEAT):
            found.extend(_walk(child))
    return found


def _annotate(entity_set: etree._Element) -> None:
    _sub(
        entity_set,
        "Annotation",
        Term=f"{CAPABILITIES}.ConformanceLevel",
        EnumMember=f"{CAPABILITIES}.ConformanceLevelType/Minimal",
    )
    _sub(entity_set, "Annotation", Term=f"{CAPABILITIES}.BatchSupported", Bool="false")
    counting = _sub(entity_set, "Annotation", Term=f"{CAPABILITIES}.CountRestrictions")
    record = _sub(counting, "Record")
    _sub(record, "PropertyValue", Property="Countable", Bool="true")


def render_metadata(model: ODataModel) -> bytes:
    """EDMX 4.0: Central's system schema, then one schema for the form's own types."""
    namespace = model.namespace
    root = etree.Element(f"{{{EDMX_NS}}}Edmx", nsmap={"edmx": EDMX_NS}, Version="4.0")
    services = etree.SubElement(root, f"{{{EDMX_NS}}}DataServices", nsmap=cast(Any, {None: EDM_NS}))
    _system_schema(services)
    schema = _sub(services, "Schema", Namespace=namespace)
    nodes = _walk(model.root)
    for node in nodes:
        if not node.is_table:
            continue
        entity = _sub(schema, "EntityType", Name=node.table_name)
        key = _sub(entity, "Key")
        _sub(key, "PropertyRef", Name="__id")
        _sub(entity, "Property", Name="__id", Type="Edm.String")
        if node.parent is None:
            _sub(entity, "Property", Name="__system", Type=f"{SYSTEM_NS}.metadata")
        else:
            _sub(entity, "Property", Name=node.parent_id_property, Type="Edm.String")
        _properties(entity, node, namespace)
    for node in nodes:
        if node.kind == STRUCTURE and node.parent is not None:
            complex_type = _sub(schema, "ComplexType", Name=".".join(node.parts))
            _properties(complex_type, node, namespace)
    container = _sub(schema, "EntityContainer", Name=model.form_id)
    for name in model.tables:
        entity_set = _sub(container, "EntitySet", Name=name, EntityType=f"{namespace}.{name}")
        if name == ROOT_TABLE:
            _annotate(entity_set)
    body: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return body
