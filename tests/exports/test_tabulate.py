"""The table plan and the tabulation of records: names, keys, labels, personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from exports.options import ExportError, ExportOptions
from exports.plan import plan_export, sanitize_file_name
from exports.records import ExportRecord
from exports.tabulate import (
    format_submission_date,
    header,
    pseudonym,
    shape_table,
    tabulate_batch,
)
from forms.schema import Field, FormSchema
from tests.exports.conftest import export_record, schema_from_markdown

NESTED = """
| survey |
|        | type         | name      | label     |
|        | begin group  | household | Household |
|        | text         | village   | Village   |
|        | begin repeat | member    | Member    |
|        | text         | name      | Name      |
|        | begin group  | details   | Details   |
|        | integer      | age       | Age       |
|        | end group    |           |           |
|        | begin repeat | job       | Job       |
|        | text         | title     | Title     |
|        | end repeat   |           |           |
|        | end repeat   |           |           |
|        | end group    |           |           |
| settings |
|          | form_id | census | version |
|          | census  |        | 7       |
"""

NESTED_XML = b"""<census id="census" version="7">
<household><village>Fier</village>
<member><name>Ana</name><details><age>34</age></details>
  <job><title>baker</title></job><job><title>driver</title></job></member>
<member><name>Ben</name><details><age>9</age></details></member>
</household>
<meta><instanceID>uuid:one</instanceID></meta></census>"""


def shaped(
    schema: FormSchema, records: list[ExportRecord], options: ExportOptions | None = None
) -> dict[str, tuple[list[str], list[dict[str, str | None]]]]:
    """Table name -> (header, rows as header-keyed dicts; last one wins on duplicates)."""
    plan = plan_export(schema, options or ExportOptions())
    raw = tabulate_batch(plan, records)
    result = {}
    for table in plan.tables:
        frame = shape_table(plan, table, raw[table.name])
        names = header(plan, table)
        rows = [dict(zip(names, row, strict=True)) for row in frame.iter_rows()]
        result[table.name] = (names, rows)
    return result


def test_nested_repeats_get_central_keys_and_flat_tables() -> None:
    schema = schema_from_markdown(NESTED, "census")
    tables = shaped(schema, [export_record(schema, NESTED_XML)])

    assert list(tables) == ["census", "census-member", "census-job"]
    member_header, members = tables["census-member"]
    assert member_header == ["name", "details-age", "PARENT_KEY", "KEY"]
    assert [(m["name"], m["details-age"], m["PARENT_KEY"], m["KEY"]) for m in members] == [
        ("Ana", "34", "uuid:one", "uuid:one/household/member[1]"),
        ("Ben", "9", "uuid:one", "uuid:one/household/member[2]"),
    ]
    job_header, jobs = tables["census-job"]
    assert job_header == ["title", "PARENT_KEY", "KEY"]
    assert [(j["title"], j["PARENT_KEY"], j["KEY"]) for j in jobs] == [
        ("baker", "uuid:one/household/member[1]", "uuid:one/household/member[1]/job[1]"),
        ("driver", "uuid:one/household/member[1]", "uuid:one/household/member[1]/job[2]"),
    ]
    root_header, (root,) = tables["census"]
    assert root_header[:3] == ["SubmissionDate", "household-village", "meta-instanceID"]
    assert root["KEY"] == "uuid:one"
    assert root["FormVersion"] == "7"


def test_group_paths_false_keeps_bare_names() -> None:
    schema = schema_from_markdown(NESTED, "census")
    plan = plan_export(schema, ExportOptions(group_paths=False))
    assert header(plan, plan.tables[1]) == ["name", "age", "PARENT_KEY", "KEY"]
    assert header(plan, plan.root)[:3] == ["SubmissionDate", "village", "instanceID"]


def test_repeats_sharing_a_name_are_numbered_like_central() -> None:
    # pyxform forbids this, but a hand-written XForm may do it.
    schema = FormSchema(
        form_id="twice",
        version=None,
        title="Twice",
        root="data",
        fields=[
            Field(path="/a", name="a", kind="structure"),
            Field(path="/a/item", name="item", kind="repeat"),
            Field(path="/a/item/x", name="x", kind="string", parent_repeat="/a/item"),
            Field(path="/b", name="b", kind="structure"),
            Field(path="/b/item", name="item", kind="repeat"),
            Field(path="/b/item/y", name="y", kind="string", parent_repeat="/b/item"),
        ],
    )
    plan = plan_export(schema, ExportOptions())
    assert [t.file_name for t in plan.tables] == [
        "twice.csv",
        "twice-item~1.csv",
        "twice-item~2.csv",
    ]


def test_file_names_lose_path_and_control_characters() -> None:
    assert sanitize_file_name("../a/b:c*?.csv") == "..abc.csv"
    assert sanitize_file_name("con") == ""
    assert sanitize_file_name("x\x00y. ") == "xy"


def test_empty_repeat_instance_still_gets_a_row_and_missing_answers_are_null() -> None:
    schema = schema_from_markdown(NESTED, "census")
    xml = b"""<census id="census"><household><member/></household>
    <meta><instanceID>uuid:two</instanceID></meta></census>"""
    tables = shaped(schema, [export_record(schema, xml)])
    (member,) = tables["census-member"][1]
    assert member["name"] is None
    assert member["KEY"] == "uuid:two/household/member[1]"
    assert tables["census-job"][1] == []
    assert tables["census"][1][0]["household-village"] is None


def test_unreadable_submission_has_only_system_columns() -> None:
    schema = schema_from_markdown(NESTED, "census")
    record = export_record(schema, NESTED_XML, status="not decrypted")
    tables = shaped(schema, [record])
    (root,) = tables["census"][1]
    assert root["Status"] == "not decrypted"
    assert root["household-village"] is None
    assert root["KEY"] == "uuid:one"
    assert tables["census-member"][1] == []


def test_submission_date_is_central_iso_in_utc() -> None:
    tz = timezone(timedelta(hours=2))
    assert format_submission_date(datetime(2026, 8, 1, 12, 0, 0, 123456, tzinfo=tz)) == (
        "2026-08-01T10:00:00.123Z"
    )
    assert format_submission_date(datetime(2026, 8, 1, 10, 0)) == "2026-08-01T10:00:00.000Z"
    assert format_submission_date(datetime(2026, 8, 1, 10, 0, tzinfo=UTC)) == (
        "2026-08-01T10:00:00.000Z"
    )


SELECTS = """
| survey |
|        | type                  | name   | label::English (en) | label::Shqip (sq) |
|        | select_one yn         | ok     | OK?                 | Mirë?             |
|        | select_multiple fruit | fruits | Fruits              | Fruta             |
|        | geopoint              | spot   | Spot                | Vendi             |
| choices |
|         | list_name | name   | label::English (en) | label::Shqip (sq) |
|         | yn        | yes    | Yes                 | Po                |
|         | yn        | no     | No                  | Jo                |
|         | fruit     | apple  | Green apple         | Mollë             |
|         | fruit     | pear   | Pear                | Dardhë            |
"""


def select_xml(instance: str, ok: str, fruits: str, spot: str = "") -> bytes:
    return (
        f'<data id="selects"><ok>{ok}</ok><fruits>{fruits}</fruits><spot>{spot}</spot>'
        f"<meta><instanceID>{instance}</instanceID></meta></data>"
    ).encode()


def test_labels_in_the_chosen_language() -> None:
    schema = schema_from_markdown(SELECTS, "selects")
    records = [
        export_record(schema, select_xml("uuid:a", "yes", "apple pear")),
        export_record(schema, select_xml("uuid:b", "maybe", "pear  kiwi")),
    ]
    english = shaped(schema, records, ExportOptions(labels=True))["selects"][1]
    assert [(r["ok"], r["fruits"]) for r in english] == [
        ("Yes", "Green apple; Pear"),
        ("maybe", "Pear; kiwi"),  # values without a choice stay as they are
    ]
    albanian = shaped(schema, records, ExportOptions(labels=True, language="Shqip (sq)"))
    assert [(r["ok"], r["fruits"]) for r in albanian["selects"][1]] == [
        ("Po", "Mollë; Dardhë"),
        ("maybe", "Dardhë; kiwi"),
    ]


def test_unknown_language_is_refused_in_plain_words() -> None:
    schema = schema_from_markdown(SELECTS, "selects")
    with pytest.raises(ExportError, match='no language "Deutsch"'):
        plan_export(schema, ExportOptions(labels=True, language="Deutsch"))


def test_split_select_multiples_uses_given_values_and_writes_zero_for_blank() -> None:
    schema = schema_from_markdown(SELECTS, "selects")
    plan = plan_export(schema, ExportOptions(split_select_multiples=True))
    records = [
        export_record(schema, select_xml("uuid:a", "yes", "apple pear")),
        export_record(schema, select_xml("uuid:b", "no", "")),
    ]
    values = {"/fruits": ["apple", "kiwi", "pear"]}
    frame = shape_table(plan, plan.root, tabulate_batch(plan, records)["selects"], values)
    names = header(plan, plan.root, values)
    split = names.index("fruits/apple")
    assert names[split - 1 : split + 3] == ["fruits", "fruits/apple", "fruits/kiwi", "fruits/pear"]
    assert [row[split : split + 3] for row in frame.iter_rows()] == [
        ("1", "0", "1"),
        ("0", "0", "0"),
    ]


def test_geopoint_keeps_raw_strings_and_tolerates_short_values() -> None:
    schema = schema_from_markdown(SELECTS, "selects")
    records = [
        export_record(schema, select_xml("uuid:a", "yes", "", "-1.2860 36.8170 1650.0 5")),
        export_record(schema, select_xml("uuid:b", "yes", "", "41.33 19.82")),
    ]
    rows = shaped(schema, records)["selects"][1]
    assert [
        (r["spot-Latitude"], r["spot-Longitude"], r["spot-Altitude"], r["spot-Accuracy"])
        for r in rows
    ] == [("-1.2860", "36.8170", "1650.0", "5"), ("41.33", "19.82", None, None)]


PERSONAL = """
| survey |
|        | type                  | name      | label     | personal |
|        | text                  | full_name | Full name | yes      |
|        | select_multiple fruit | likes     | Likes     | yes      |
|        | text                  | village   | Village   |          |
|        | begin group           | contact   | Contact   | yes      |
|        | text                  | phone     | Phone     |          |
|        | end group             |           |           |          |
|        | begin repeat          | child     | Child     |          |
|        | text                  | child_name| Name      | yes      |
|        | integer               | age       | Age       |          |
|        | end repeat            |           |           |          |
| choices |
|         | list_name | name  | label |
|         | fruit     | apple | Apple |
|         | fruit     | pear  | Pear  |
"""


def personal_xml(instance: str, name: str, phone: str) -> bytes:
    return (
        f'<data id="intake"><full_name>{name}</full_name><likes>apple</likes>'
        f"<village>Fier</village><contact><phone>{phone}</phone></contact>"
        f"<child><child_name>Kid of {name}</child_name><age>4</age></child>"
        f"<meta><instanceID>{instance}</instanceID></meta></data>"
    ).encode()


def test_personal_fields_are_dropped_with_their_groups() -> None:
    schema = schema_from_markdown(PERSONAL, "intake")
    record = export_record(schema, personal_xml("uuid:p", "Arta Hoxha", "+355 69 000"))
    tables = shaped(schema, [record], ExportOptions(personal="drop", split_select_multiples=True))
    root_header, (root,) = tables["intake"]
    assert "full_name" not in root_header
    assert "contact-phone" not in root_header
    assert not any(name.startswith("likes") for name in root_header)
    assert root["village"] == "Fier"
    child_header, _ = tables["intake-child"]
    assert child_header == ["age", "PARENT_KEY", "KEY"]
    assert "Arta" not in repr(tables)


def test_pseudonyms_are_stable_keyed_and_never_split() -> None:
    schema = schema_from_markdown(PERSONAL, "intake")
    records = [
        export_record(schema, personal_xml("uuid:1", "Arta Hoxha", "")),
        export_record(schema, personal_xml("uuid:2", "Arta Hoxha", "+355 69 000")),
    ]
    options = ExportOptions(
        personal="pseudonymise", pseudonym_key=b"k1" * 16, split_select_multiples=True
    )
    tables = shaped(schema, records, options)
    first, second = tables["intake"][1]
    assert first["full_name"] == second["full_name"] == pseudonym(b"k1" * 16, "Arta Hoxha")
    assert len(first["full_name"] or "") == 16
    assert first["contact-phone"] is None  # nothing to hide stays empty
    assert second["contact-phone"] == pseudonym(b"k1" * 16, "+355 69 000")
    assert not any(name.startswith("likes/") for name in tables["intake"][0])
    (child, _) = tables["intake-child"][1]
    assert child["child_name"] == pseudonym(b"k1" * 16, "Kid of Arta Hoxha")
    assert child["age"] == "4"

    other = shaped(schema, records, ExportOptions(personal="pseudonymise", pseudonym_key=b"k2"))
    assert other["intake"][1][0]["full_name"] != first["full_name"]
    again = shaped(schema, records, options)
    assert again["intake"][1][0]["full_name"] == first["full_name"]


def test_pseudonymising_without_a_key_is_refused() -> None:
    with pytest.raises(ExportError, match="pseudonym key"):
        ExportOptions(personal="pseudonymise")


def test_raw_frames_are_strings_only() -> None:
    schema = schema_from_markdown(NESTED, "census")
    plan = plan_export(schema, ExportOptions())
    frames = tabulate_batch(plan, [export_record(schema, NESTED_XML)])
    for frame in frames.values():
        assert set(frame.schema.values()) == {pl.String}
    assert frames["census-job"].height == 2


def test_split_columns_stay_blank_for_an_unreadable_submission() -> None:
    schema = schema_from_markdown(SELECTS, "selects")
    plan = plan_export(schema, ExportOptions(split_select_multiples=True))
    records = [
        export_record(schema, select_xml("uuid:a", "yes", "apple")),
        export_record(schema, select_xml("uuid:b", "yes", "apple"), status="not decrypted"),
    ]
    values = {"/fruits": ["apple"]}
    frame = shape_table(plan, plan.root, tabulate_batch(plan, records)["selects"], values)
    names = header(plan, plan.root, values)
    assert frame.to_series(names.index("fruits/apple")).to_list() == [
        "1",
        None,
    ]


def test_kept_personal_fields_are_split_and_labelled_like_any_other() -> None:
    schema = schema_from_markdown(PERSONAL, "intake")
    record = export_record(schema, personal_xml("uuid:k", "Arta Hoxha", "+355 69 000"))
    tables = shaped(schema, [record], ExportOptions(labels=True))
    (root,) = tables["intake"][1]
    assert root["full_name"] == "Arta Hoxha"
    assert root["likes"] == "Apple"
