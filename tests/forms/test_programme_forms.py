"""The programme's demo XLSForms (forms/programme/) compile cleanly and mark personal data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forms.schema import REPEAT, FormSchema
from forms.xform import read_xform
from forms.xlsform import compile_xlsform

PROGRAMME_DIR = Path(__file__).resolve().parents[2] / "forms" / "programme"
LANGUAGES = {"English (en)", "Shqip (sq)", "Srpski (sr)"}

# Fields holding direct identifiers: exactly these, and nothing else, are personal.
PERSONAL_FIELDS = {
    "intake": {
        "consent_photo",
        "first_name",
        "last_name",
        "date_of_birth",
        "phone",
        "address",
        "residence_gps",
    },
    "needs_assessment": set(),
    "follow_up": {"residence_gps"},
}

FORM_IDS = sorted(PERSONAL_FIELDS)


def _schema(form_id: str) -> FormSchema:
    path = PROGRAMME_DIR / f"{form_id}.xlsx"
    compiled = compile_xlsform(path.read_bytes(), file_name=path.name)
    assert compiled.warnings == []
    return read_xform(compiled.xml)


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_programme_form_compiles_without_warnings(form_id: str) -> None:
    path = PROGRAMME_DIR / f"{form_id}.xlsx"
    compiled = compile_xlsform(path.read_bytes(), file_name=path.name)
    assert compiled.warnings == []
    marked = b'homeward:personal="yes"' in compiled.xml
    assert marked == bool(PERSONAL_FIELDS[form_id])


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_programme_form_identity_and_languages(form_id: str) -> None:
    schema = _schema(form_id)
    assert schema.form_id == form_id
    assert set(schema.languages) >= LANGUAGES
    assert schema.version == "2026120401"


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_programme_form_personal_fields(form_id: str) -> None:
    schema = _schema(form_id)
    personal = {field.name for field in schema.fields if field.personal}
    assert personal == PERSONAL_FIELDS[form_id]


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_programme_form_labels_in_every_language(form_id: str) -> None:
    schema = _schema(form_id)
    labelled = [field for field in schema.fields if field.labels]
    assert labelled
    for field in labelled:
        assert set(field.labels) >= LANGUAGES, field.path
    for list_name, choices in schema.choices.items():
        for choice in choices:
            assert set(choice.labels) >= LANGUAGES, (list_name, choice.name)


def test_intake_registers_a_returnee_without_the_surname() -> None:
    schema = _schema("intake")
    entity = schema.entity
    assert entity is not None
    assert (entity.dataset, entity.creates, entity.updates) == ("returnees", True, False)
    assert entity.properties == {
        "case_id": "/case_id",
        "counsellor": "/counsellor",
        "status": "/status",
        "last_contact": "/last_contact",
        "municipality": "/registration/return_info/municipality",
        "return_date": "/registration/return_info/date_return",
    }
    path = PROGRAMME_DIR / "intake.xlsx"
    xml = compile_xlsform(path.read_bytes(), file_name=path.name).xml.decode()
    [label] = re.findall(r'<bind nodeset="/data/meta/entity/label"[^>]*calculate="([^"]*)"', xml)
    assert "first_name" in label
    assert "case_id" in label
    assert "last_name" not in label
    # No identifying answer is copied into the list's properties.
    personal = {f.path for f in schema.fields if f.personal}
    assert not personal & set(entity.properties.values())


@pytest.mark.parametrize("form_id", ["needs_assessment", "follow_up"])
def test_programme_form_selects_the_returnee_from_the_list(form_id: str) -> None:
    schema = _schema(form_id)
    assert schema.entity_lists == ["returnees"]
    entity = schema.entity
    assert entity is not None
    assert (entity.dataset, entity.creates, entity.updates) == ("returnees", False, True)
    assert {"status", "last_contact"} <= set(entity.properties)
    names = {field.name: field for field in schema.fields}
    assert names["returnee"].kind == "select1"
    assert set(names["returnee"].labels) >= LANGUAGES
    # The hand-typed case ID is gone; the case ID comes from the chosen entity.
    case_id = names["case_id"]
    assert case_id.kind == "string"
    assert not case_id.labels
    assert not case_id.personal
    path = PROGRAMME_DIR / f"{form_id}.xlsx"
    xml = compile_xlsform(path.read_bytes(), file_name=path.name).xml.decode()
    assert "regex(" not in xml
    assert '<bind nodeset="/data/meta/entity/@id" readonly="true()" type="string"' in xml
    assert 'calculate=" /data/returnee "' in xml


def test_follow_up_records_the_wave_and_refuses_a_repeated_one() -> None:
    schema = _schema("follow_up")
    assert schema.entity is not None
    assert schema.entity.properties["last_wave"] == "/wave"
    path = PROGRAMME_DIR / "follow_up.xlsx"
    xml = compile_xlsform(path.read_bytes(), file_name=path.name).xml.decode()
    [constraint] = re.findall(r'<bind nodeset="/data/wave"[^>]*constraint="([^"]*)"', xml)
    assert "returnee_last_wave" in constraint


def test_intake_has_household_repeat() -> None:
    schema = _schema("intake")
    repeats = [field for field in schema.fields if field.kind == REPEAT]
    assert [field.name for field in repeats] == ["household_member"]
    members = [field.name for field in schema.fields if field.parent_repeat == repeats[0].path]
    assert {"member_relationship", "member_sex", "member_age", "member_activity"} <= set(members)
    age = next(field for field in schema.fields if field.name == "member_age")
    assert age.kind == "int"
    gps = next(field for field in schema.fields if field.name == "residence_gps")
    assert gps.kind == "geopoint"
    photo = next(field for field in schema.fields if field.name == "consent_photo")
    assert photo.kind == "binary"
    assert photo.path in schema.binary_paths
