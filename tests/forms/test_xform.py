from __future__ import annotations

from pathlib import Path

import pytest

from forms.schema import FormSchema, decode_schema, encode_schema
from forms.xform import XFormError, read_xform, set_xform_version
from forms.xlsform import compile_xlsform

HOUSEHOLD_FORM = """
| survey |
| | type | name | label::English (en) | label::Shqip (sq) | media::image::English (en) |
| | text | village | Village | Fshati | map.png |
| | begin group | household | Household | Familja | |
| | begin repeat | member | Member | Anëtar | |
| | integer | age | Age | Mosha | |
| | select_one yes_no | returnee | Returnee? | I kthyer? | |
| | select_multiple needs | needs | Needs | Nevojat | |
| | end repeat | | | | |
| | geopoint | location | Location | Vendndodhja | |
| | end group | | | | |
| | image | photo | Photo | Foto | |
| | date | visit | Visit date | Data e vizitës | |
| choices |
| | list_name | name | label::English (en) | label::Shqip (sq) |
| | yes_no | yes | Yes | Po |
| | yes_no | no | No | Jo |
| | needs | housing | Housing | Strehim |
| | needs | work | Work | Punë |
| settings |
| | form_id | version | form_title |
| | household | 3 | Household follow-up |
"""


@pytest.fixture(scope="module")
def household() -> FormSchema:
    return read_xform(compile_xlsform(HOUSEHOLD_FORM.encode(), file_name="household.md").xml)


def test_reads_identity(household: FormSchema) -> None:
    assert (household.form_id, household.version) == ("household", "3")
    assert (household.title, household.root) == ("Household follow-up", "data")
    assert not household.encrypted


def test_fields_in_document_order_with_groups_and_repeats(household: FormSchema) -> None:
    kinds = {f.path: f.kind for f in household.fields}
    assert list(kinds)[:8] == [
        "/village",
        "/household",
        "/household/member",
        "/household/member/age",
        "/household/member/returnee",
        "/household/member/needs",
        "/household/location",
        "/photo",
    ]
    assert kinds["/household"] == "structure"
    assert kinds["/household/member"] == "repeat"
    assert kinds["/household/member/age"] == "int"
    assert kinds["/household/member/returnee"] == "select1"
    assert kinds["/household/member/needs"] == "select"
    assert kinds["/household/location"] == "geopoint"
    assert kinds["/photo"] == "binary"
    assert kinds["/visit"] == "date"
    assert kinds["/meta/instanceID"] == "string"
    assert household.binary_paths == ["/photo"]


def test_repeat_children_know_their_repeat(household: FormSchema) -> None:
    parents = {f.path: f.parent_repeat for f in household.fields}
    assert parents["/household/member/age"] == "/household/member"
    assert parents["/household/member"] is None
    assert parents["/household/location"] is None


def test_labels_in_two_languages(household: FormSchema) -> None:
    assert household.languages == ["English (en)", "Shqip (sq)"]
    labels = {f.path: f.labels for f in household.fields}
    assert labels["/village"] == {"English (en)": "Village", "Shqip (sq)": "Fshati"}
    assert labels["/household/member"] == {"English (en)": "Member", "Shqip (sq)": "Anëtar"}


def test_choices_with_translated_labels(household: FormSchema) -> None:
    returnee = next(f for f in household.fields if f.name == "returnee")
    assert returnee.choice_list == "yes_no"
    yes, no = household.choices["yes_no"]
    assert (yes.name, yes.labels) == ("yes", {"English (en)": "Yes", "Shqip (sq)": "Po"})
    assert no.labels["Shqip (sq)"] == "Jo"
    assert [c.name for c in household.choices["needs"]] == ["housing", "work"]


def test_media_references_are_listed(household: FormSchema) -> None:
    assert [(m.name, m.kind) for m in household.media] == [("map.png", "image")]


def test_schema_round_trips_through_json(household: FormSchema) -> None:
    assert decode_schema(encode_schema(household)) == household
    assert household.repeat_paths == frozenset({"/household/member"})


def test_encrypted_form_is_detected(xlsform_corpus: Path) -> None:
    name = "onadata__encrypted-form.xlsx"
    schema = read_xform(compile_xlsform((xlsform_corpus / name).read_bytes(), file_name=name).xml)
    assert schema.encrypted
    assert schema.public_key is not None
    assert schema.public_key.startswith("MII")


HAND_WRITTEN = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa" xmlns:hw="urn:homeward:xforms">
  <h:head>
    <h:title>Hand made</h:title>
    <model>
      <instance>
        <visit id="hand_made" version="7">
          <who/>
          <answers><colour/><voice/></answers>
          <meta><instanceID/></meta>
        </visit>
      </instance>
      <instance id="fruit" src="jr://file-csv/fruit.csv"/>
      <bind nodeset="/visit/who" type="xsd:string" hw:personal="true()"/>
      <bind nodeset="/visit/answers/voice" type="binary"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/visit/who"><label>Who?</label></input>
    <group ref="/visit/answers">
      <label>Answers</label>
      <select1 ref="colour">
        <label>Colour</label>
        <item><label>Red</label><value>r</value></item>
        <item><label>Blue</label><value>b</value></item>
      </select1>
      <upload ref="voice" mediatype="audio/*"><label>Say it</label></upload>
    </group>
  </h:body>
</h:html>
"""


def test_hand_written_xform_with_relative_refs_and_inline_items() -> None:
    schema = read_xform(HAND_WRITTEN)
    assert (schema.form_id, schema.version, schema.root) == ("hand_made", "7", "visit")
    fields = {f.path: f for f in schema.fields}
    assert fields["/who"].personal
    assert fields["/who"].kind == "string"
    assert fields["/answers/colour"].kind == "select1"
    assert fields["/answers/colour"].labels == {"default": "Colour"}
    assert [c.name for c in schema.choices["/answers/colour"]] == ["r", "b"]
    assert schema.choices["/answers/colour"][1].labels == {"default": "Blue"}
    assert schema.binary_paths == ["/answers/voice"]
    assert [m.name for m in schema.media] == ["fruit.csv"]
    assert schema.entity_lists == ["fruit"]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<h:html", "not well-formed XML (line 1"),
        (b"", "is empty"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', "DOCTYPE not allowed"),
        (b"<data id='x'/>", "root element must be <h:html>"),
        (b"<h:html xmlns:h='http://www.w3.org/1999/xhtml'><h:head/></h:html>", "no <model>"),
        (
            b"<h:html xmlns:h='http://www.w3.org/1999/xhtml'><h:head><model>"
            b"<instance id='a'><x/></instance></model></h:head></h:html>",
            "no primary <instance>",
        ),
        (
            b"<h:html xmlns:h='http://www.w3.org/1999/xhtml'><h:head><model>"
            b"<instance><data/></instance></model></h:head></h:html>",
            "root <data> has no id attribute",
        ),
    ],
)
def test_unusable_xform_is_explained(xml: bytes, message: str) -> None:
    with pytest.raises(XFormError, match="The XForm") as caught:
        read_xform(xml)
    assert message in str(caught.value)


def test_set_xform_version_changes_only_the_version() -> None:
    updated = set_xform_version(HAND_WRITTEN, "2026-01")
    before, after = read_xform(HAND_WRITTEN), read_xform(updated)
    assert after.version == "2026-01"
    assert after.fields == before.fields
    assert after.form_id == before.form_id
