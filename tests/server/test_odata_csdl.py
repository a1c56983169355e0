"""``$metadata`` against the OASIS CSDL XML schemas and the CSDL rules a schema cannot state.

Power BI and Excel read the EDMX with Microsoft's OData library, which is
stricter than most. Each golden form (between them every question type) is
uploaded and its ``$metadata`` validated with lxml against the OData TC's
``edmx.xsd``/``edm.xsd`` (``tests/server/csdl``), then checked for what the XSD
cannot see: every type reference resolves, keys name primitive properties,
navigation leads to entity types that have an entity set, names are unique.

Central's own names break one CSDL rule, and the golden files (so every
client that works with Central) depend on them: repeat entity types and sets
are called ``Submissions.<path>``, nested groups ``<group>.<child>``, the parent
key ``__Submissions-<path>-id``, and the container takes the raw xmlFormId. A
CSDL simple identifier allows neither dots nor dashes. Those four, and only
those, are the schema errors allowed here (docs/compatibility.md, OData feed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import pytest
from lxml import etree

from tests.server.conftest import World
from tests.server.odata_helpers import EDM, EDMX, replay_golden
from tests.server.test_odata_golden import GOLDEN_FILES

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "csdl" / "edmx.xsd")))

GEO_SHAPES = [
    "",
    "Point",
    "LineString",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "Collection",
]
# OData 4.0 (CSDL section 4.4): the primitive types a 4.0 document may name.
EDM_PRIMITIVES = {
    f"Edm.{name}"
    for name in (
        *("Binary", "Boolean", "Byte", "Date", "DateTimeOffset", "Decimal", "Double"),
        *("Duration", "Guid", "Int16", "Int32", "Int64", "SByte", "Single", "Stream"),
        *("String", "TimeOfDay"),
        *(f"{space}{shape}" for space in ("Geography", "Geometry") for shape in GEO_SHAPES),
    )
}
KEY_TYPES = {"Edm.String", "Edm.Guid", "Edm.Int64", "Edm.Int32"}
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
PATTERN_ERROR = re.compile(
    r"Element '\{[^}]+\}(\w+)', attribute 'Name': \[facet 'pattern'\] "
    r"The value '([^']*)' is not accepted by the pattern"
)
# The names Central gives (see the module docstring), by the element that carries them.
CENTRAL_NAMES = {
    "EntityType": re.compile(rf"Submissions(\.{IDENTIFIER})+"),
    "EntitySet": re.compile(rf"Submissions(\.{IDENTIFIER})+"),
    "ComplexType": re.compile(rf"{IDENTIFIER}(\.{IDENTIFIER})+"),
    "Property": re.compile(rf"__Submissions(-{IDENTIFIER})*-id"),
}


def schema_errors(document: etree._ElementTree, form_id: str) -> list[str]:
    """The XSD's complaints, less the identifiers Central itself emits."""
    SCHEMA.validate(document)
    unexpected = []
    # lxml-stubs do not declare the error log iterable; it is (lxml's _ListErrorLog).
    for error in cast(Iterable[Any], SCHEMA.error_log):
        match = PATTERN_ERROR.match(error.message)
        if match is not None:
            element, value = match.groups()
            allowed = CENTRAL_NAMES.get(element)
            if allowed is not None and allowed.fullmatch(value):
                continue
            if element == "EntityContainer" and value == form_id:
                continue
        unexpected.append(f"line {error.line}: {error.message}")
    return unexpected


def declared_types(root: etree._Element) -> dict[str, etree._Element]:
    """Qualified name -> ComplexType, EntityType or EnumType element.

    Looked up by the whole string, as Microsoft's library does: Central's dotted
    type names cannot be split into namespace and name at the last dot.
    """
    types: dict[str, etree._Element] = {}
    for schema in root.iter(f"{EDM}Schema"):
        namespace = schema.get("Namespace")
        for element in schema:
            if element.tag in (f"{EDM}ComplexType", f"{EDM}EntityType", f"{EDM}EnumType"):
                name = f"{namespace}.{element.get('Name')}"
                assert name not in types, f"{name} declared twice"
                types[name] = element
    return types


def element_type(reference: str) -> str:
    return reference.removeprefix("Collection(").removesuffix(")")


def csdl_problems(root: etree._Element) -> list[str]:
    """Breaches of CSDL rules that an XML schema cannot express."""
    problems: list[str] = []
    types = declared_types(root)

    def kind_of(reference: str) -> str:
        name = element_type(reference)
        if name in EDM_PRIMITIVES:
            return "primitive"
        element = types.get(name)
        return "unresolved" if element is None else etree.QName(element).localname

    entity_sets: dict[str, str] = {}
    for entity_set in root.iter(f"{EDM}EntitySet"):
        set_type = entity_set.get("EntityType", "")
        if kind_of(set_type) != "EntityType":
            problems.append(f"entity set {entity_set.get('Name')} has type {set_type}")
        entity_sets[set_type] = entity_set.get("Name", "")

    for name, element in types.items():
        kind = etree.QName(element).localname
        members = [child.get("Name") for child in element if child.get("Name")]
        if len(members) != len(set(members)):
            problems.append(f"{name} repeats a member name: {members}")
        if kind == "EnumType":
            values = [child.get("Value") for child in element]
            if None in values or len({int(v) for v in values if v}) != len(values):
                problems.append(f"enum {name} needs distinct explicit values: {values}")
            continue
        properties = {p.get("Name"): p.get("Type", "") for p in element.iter(f"{EDM}Property")}
        for prop_name, prop_type in properties.items():
            if kind_of(prop_type) not in ("primitive", "ComplexType", "EnumType"):
                problems.append(f"{name}/{prop_name} has type {prop_type}")
        for nav in element.iter(f"{EDM}NavigationProperty"):
            target = nav.get("Type", "")
            if kind_of(target) != "EntityType" or not target.startswith("Collection("):
                problems.append(f"{name}/{nav.get('Name')} navigates to {target}")
            elif element_type(target) not in entity_sets:
                problems.append(f"{name}/{nav.get('Name')}: no entity set holds {target}")
        if kind == "EntityType":
            keys = [ref.get("Name") for ref in element.iter(f"{EDM}PropertyRef")]
            if not keys or any(properties.get(key) not in KEY_TYPES for key in keys):
                problems.append(f"{name} has key {keys}")
            if name not in entity_sets:
                problems.append(f"{name} has no entity set")
    return problems


@pytest.mark.parametrize("stem", GOLDEN_FILES)
async def test_metadata_is_valid_csdl_but_for_centrals_names(
    world: World, shared_dir: Path, stem: str
) -> None:
    golden = await replay_golden(world, shared_dir, stem)
    form_id = golden["xmlFormId"]
    response = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/{form_id}.svc/$metadata",
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text
    document = etree.ElementTree(etree.fromstring(response.content))
    root = document.getroot()

    assert root.tag == f"{EDMX}Edmx"
    assert root.get("Version") == "4.0"
    assert [etree.QName(child).localname for child in root] == ["DataServices"]
    assert {child.tag for child in root[0]} == {f"{EDM}Schema"}
    assert schema_errors(document, form_id) == []
    assert csdl_problems(root) == []
    containers = list(root.iter(f"{EDM}EntityContainer"))
    assert len(containers) == 1
    namespace = f"org.opendatakit.user.{form_id.replace('-', '_')}"
    parent = containers[0].getparent()
    assert parent is not None
    assert parent.get("Namespace") == namespace


def test_the_checks_catch_what_they_look_for() -> None:
    """The two checkers above fail on broken documents (so an empty list means something)."""
    broken = f"""<edmx:Edmx xmlns:edmx="{EDMX[1:-1]}" Version="4.0"><edmx:DataServices>
      <Schema xmlns="{EDM[1:-1]}" Namespace="n">
        <EnumType Name="E"><Member Name="a"/><Member Name="b"/></EnumType>
        <EntityType Name="T"><Key><PropertyRef Name="x"/></Key>
          <Property Name="x" Type="Edm.Float"/>
          <Property Name="bad-name" Type="Edm.String"/>
          <NavigationProperty Name="up" Type="n.C"/></EntityType>
        <ComplexType Name="C"><Property Name="p" Type="n.Missing"/></ComplexType>
        <EntityContainer Name="c"><EntitySet Name="Ts" EntityType="n.T"/>
          <Unexpected/></EntityContainer>
      </Schema></edmx:DataServices></edmx:Edmx>"""
    document = etree.ElementTree(etree.fromstring(broken))

    errors = schema_errors(document, "c")
    assert any("bad-name" in error for error in errors)
    assert any("Unexpected" in error for error in errors)
    assert sorted(csdl_problems(document.getroot())) == [
        "enum n.E needs distinct explicit values: [None, None]",
        "n.C/p has type n.Missing",
        "n.T has key ['x']",
        "n.T/up navigates to n.C",
        "n.T/x has type Edm.Float",
    ]
