"""Rows rendered at ingest: the shape key, and splicing a page's row together."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from exports.odata import RowOptions, RowWriter, build_model, render_fields, shape_key, splice_row
from tests.exports.conftest import schema_from_markdown

FORM = """
| survey |
| | type | name | label |
| | text | name | Name |
| | integer | age | Age |
| | geopoint | where | Where |
| | begin group | the-place | Place |
| | text | town | Town |
| | begin repeat | member | Member |
| | text | member_name | Name |
| | end repeat | | |
| | end group | | |
"""

SYSTEM = {"submissionDate": "2026-11-23T10:00:00.000Z", "reviewState": None, "edits": 0}
RECORD = {
    "name": "Arta",
    "age": "34",
    "where": "42.66 21.16 500 4",
    "the-place": {"town": "Prizren", "member": [{"member_name": "Ilir"}, {"member_name": "Ema"}]},
}


def test_rendered_fields_spliced_are_the_row_a_page_writes() -> None:
    schema = schema_from_markdown(FORM)
    model = build_model(schema)
    writer = RowWriter(model, model.tables["Submissions"], RowOptions())

    key, fields = render_fields(schema, "uuid:a b", RECORD)
    spliced = splice_row(fields, "uuid:a b", SYSTEM)
    written = writer.rows("uuid:a b", RECORD, SYSTEM)[0]

    assert key == shape_key(model.tables["Submissions"])
    assert isinstance(spliced, msgspec.Raw)
    assert bytes(spliced) == msgspec.json.encode(written)
    assert json.loads(bytes(spliced))["the_place"]["member@odata.navigationLink"] == (
        "Submissions('uuid%3Aa%20b')/the_place/member"
    )


def test_shape_key_follows_names_kinds_and_fields() -> None:
    def key_of(form: str) -> str:
        return shape_key(build_model(schema_from_markdown(form)).tables["Submissions"])

    base = key_of(FORM)

    assert key_of(FORM) == base
    assert key_of(FORM.replace("| integer | age |", "| decimal | age |")) != base
    assert key_of(FORM.replace("| text | town |", "| text | city |")) != base
    assert key_of(FORM.replace("| | text | town | Town |\n", "")) != base
    assert key_of(FORM.replace("| Name |", "| Full name |")) == base  # labels are not rows


@given(st.text(), st.dictionaries(st.sampled_from(["a", "b", "é"]), st.none() | st.text()))
def test_splicing_an_empty_row_or_any_id_gives_valid_json(
    instance_id: str, system: dict[str, str | None]
) -> None:
    for fields in (b"{}", b'{"x":1}'):
        row = json.loads(bytes(splice_row(fields, instance_id, system)))

        assert row["__id"] == instance_id
        assert row["__system"] == system
        assert list(row)[-2:] == ["__id", "__system"]
