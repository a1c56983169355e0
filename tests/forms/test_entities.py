"""Entity declarations in XForms and entity blocks in submissions (ODK Entities spec)."""

from __future__ import annotations

import pytest

from forms.entities import (
    EntityAction,
    EntityDeclaration,
    EntityProblem,
    entity_action,
    valid_property_name,
)
from forms.schema import decode_schema, encode_schema
from forms.submission import parse_submission
from forms.xform import read_xform
from forms.xlsform import compile_xlsform

INTAKE = """
| survey |
| | type | name | label | save_to |
| | text | first_name | First name | first_name |
| | text | town | Town | municipality |
| | date | returned | Return date | return_date |
| | text | note | Note | |
| entities |
| | list_name | label |
| | returnees | concat(${first_name}, ' ', ${town}) |
| settings |
| | form_id | version |
| | intake | 1 |
"""

FOLLOW_UP = """
| survey |
| | type | name | label | save_to |
| | select_one_from_file returnees.csv | who | Who | |
| | text | status | Status | status |
| entities |
| | list_name | entity_id | update_if |
| | returnees | ${who} | ${status} != '' |
| settings |
| | form_id |
| | follow_up |
"""

UUID = "0f4c5d1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"


def _schema(markdown: str) -> EntityDeclaration:
    schema = read_xform(compile_xlsform(markdown.encode(), file_name="f.md").xml)
    assert schema.entity is not None
    return schema.entity


def test_an_entities_sheet_declares_the_dataset_and_its_saveto_properties() -> None:
    declaration = _schema(INTAKE)
    assert declaration.dataset == "returnees"
    assert declaration.spec_version == "2024.1.0"
    assert declaration.properties == {
        "first_name": "/first_name",
        "municipality": "/town",
        "return_date": "/returned",
    }
    assert declaration.creates
    assert not declaration.updates


def test_an_update_form_is_offline_capable_under_2024_1() -> None:
    declaration = _schema(FOLLOW_UP)
    assert declaration.updates
    assert not declaration.creates
    assert declaration.offline
    assert declaration.properties == {"status": "/status"}


def test_the_declaration_survives_the_stored_schema() -> None:
    schema = read_xform(compile_xlsform(INTAKE.encode(), file_name="f.md").xml)
    assert decode_schema(encode_schema(schema)).entity == schema.entity


def test_a_form_without_entities_declares_none() -> None:
    form = "| survey |\n| | type | name | label |\n| | text | a | A |\n"
    assert read_xform(compile_xlsform(form.encode(), file_name="f.md").xml).entity is None


# A 2022.1.0 form as Central's first entity release took it: create only.
XFORM_2022 = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
  xmlns:entities="http://www.opendatakit.org/xforms/entities">
 <h:head><h:title>Old</h:title>
  <model entities:entities-version="2022.1.0">
   <instance><data id="old"><name/><meta><instanceID/>
     <entity dataset="people" id="" create="1"><label/></entity></meta></data></instance>
   <bind nodeset="/data/name" type="string" entities:saveto="full_name"/>
  </model></h:head>
 <h:body><input ref="/data/name"><label>Name</label></input></h:body></h:html>"""


def test_a_2022_1_form_declares_a_create_only_list() -> None:
    declaration = read_xform(XFORM_2022).entity
    assert declaration == EntityDeclaration(
        dataset="people",
        spec_version="2022.1.0",
        properties={"full_name": "/name"},
        creates=True,
    )


def _submission(
    entity: str, body: str = "<first_name>Ana</first_name><town>Tirana</town>"
) -> bytes:
    return (
        f'<data id="intake" version="1">{body}<meta><instanceID>uuid:1</instanceID>'
        f"{entity}</meta></data>"
    ).encode()


def test_a_submission_creating_an_entity_gives_its_id_label_and_properties() -> None:
    parsed = parse_submission(
        _submission(
            f'<entity dataset="returnees" create="1" id="uuid:{UUID}"><label>Ana T</label></entity>'
        )
    )
    action = entity_action(_schema(INTAKE), parsed.entity, parsed.record)
    assert action == EntityAction(
        kind="create",
        dataset="returnees",
        uuid=UUID,
        label="Ana T",
        data={"first_name": "Ana", "municipality": "Tirana"},
    )


def test_an_offline_update_carries_its_versions_and_branch() -> None:
    parsed = parse_submission(
        _submission(
            f'<entity dataset="returnees" update="true" id="{UUID}" baseVersion="3"'
            ' trunkVersion="2" branchId="b-1"/>',
            "<who>x</who><status>working</status>",
        )
    )
    action = entity_action(_schema(FOLLOW_UP), parsed.entity, parsed.record)
    assert isinstance(action, EntityAction)
    assert (action.kind, action.label, action.data) == ("update", None, {"status": "working"})
    assert (action.base_version, action.trunk_version, action.branch_id) == (3, 2, "b-1")


def test_create_and_update_both_set_is_an_upsert() -> None:
    parsed = parse_submission(
        _submission(
            f'<entity dataset="returnees" create="1" update="1" id="{UUID}">'
            "<label>A</label></entity>"
        )
    )
    action = entity_action(_schema(INTAKE), parsed.entity, parsed.record)
    assert isinstance(action, EntityAction)
    assert action.kind == "upsert"


@pytest.mark.parametrize(
    ("entity", "code", "words"),
    [
        (f'<entity dataset="returnees" create="1" id="{UUID}"><label/></entity>', 400.2, "label"),
        (
            '<entity dataset="returnees" create="1" id="nope"><label>A</label></entity>',
            400.11,
            "nope",
        ),
        ('<entity dataset="returnees" create="1" id=""><label>A</label></entity>', 400.2, "uuid"),
        (
            f'<entity dataset="other" create="1" id="{UUID}"><label>A</label></entity>',
            400.8,
            "other",
        ),
    ],
)
def test_unusable_entity_blocks_say_why(entity: str, code: float, words: str) -> None:
    parsed = parse_submission(_submission(entity))
    problem = entity_action(_schema(INTAKE), parsed.entity, parsed.record)
    assert isinstance(problem, EntityProblem)
    assert problem.code == code
    assert words in problem.message


def test_an_entity_block_with_create_false_asks_for_nothing() -> None:
    parsed = parse_submission(
        _submission(f'<entity dataset="returnees" create="0" id="{UUID}"><label>A</label></entity>')
    )
    assert entity_action(_schema(INTAKE), parsed.entity, parsed.record) is None


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("status", True),
        ("return_date", True),
        ("qëndrimi", True),
        ("uuid:0f4c-5d1e", True),
        ("name", False),
        ("Label", False),
        ("__version", False),
        ("1st", False),
        ("a b", False),
    ],
)
def test_property_names_follow_centrals_rule(name: str, valid: bool) -> None:
    assert valid_property_name(name) is valid
