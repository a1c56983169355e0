"""The programme's demo XLSForms (forms/programme/) compile cleanly and mark personal data."""

from __future__ import annotations

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
    assert schema.version == "2026112301"


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


@pytest.mark.parametrize("form_id", ["needs_assessment", "follow_up"])
def test_programme_form_asks_for_case_id(form_id: str) -> None:
    schema = _schema(form_id)
    case_id = next(field for field in schema.fields if field.name == "case_id")
    assert case_id.kind == "string"
    assert not case_id.personal


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
