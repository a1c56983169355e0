"""The pure OData pieces: $filter/$orderby parsing, $select, rows and $metadata names."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exports.odata import (
    ODataError,
    RowOptions,
    RowWriter,
    build_model,
    parse_filter,
    parse_orderby,
    parse_select,
    render_metadata,
    sanitize,
)
from exports.odata.filter import BoolOp, Call, Comparison, Literal, Member, Not, OrderKey
from tests.exports.conftest import schema_from_markdown

FORM = """
| survey |
| | type | name | label |
| | text | name | Name |
| | integer | age | Age |
| | decimal | weight | Weight |
| | geopoint | where | Where |
| | dateTime | seen | Seen |
| | begin group | the-place | Place |
| | text | town | Town |
| | begin repeat | member | Member |
| | text | member_name | Name |
| | begin repeat | visit | Visit |
| | date | on | On |
| | end repeat | | |
| | end repeat | | |
| | end group | | |
"""


def test_parses_comparisons_booleans_and_functions() -> None:
    expr = parse_filter(
        "not (__system/reviewState eq 'it''s' or __id ne null) and "
        "year(__system/submissionDate) ge 2026 and __system/submissionDate lt now()"
    )

    assert expr == BoolOp(
        "and",
        BoolOp(
            "and",
            Not(
                BoolOp(
                    "or",
                    Comparison("eq", Member("__system/reviewState"), Literal("it's")),
                    Comparison("ne", Member("__id"), Literal(None)),
                )
            ),
            Comparison("ge", Call("year", (Member("__system/submissionDate"),)), Literal(2026)),
        ),
        Comparison("lt", Member("__system/submissionDate"), Call("now", ())),
    )


def test_literals() -> None:
    assert parse_filter("__system/submissionDate gt 2026-08-01") == Comparison(
        "gt", Member("__system/submissionDate"), Literal(date(2026, 8, 1))
    )
    assert parse_filter("__system/updatedAt le 2026-08-01T10:00:00.5+02:00") == Comparison(
        "le",
        Member("__system/updatedAt"),
        Literal(datetime.fromisoformat("2026-08-01T10:00:00.5+02:00")),
    )
    assert parse_filter("__system/deletedAt ge 2026-08-01T10:00Z") == Comparison(
        "ge", Member("__system/deletedAt"), Literal(datetime(2026, 8, 1, 10, tzinfo=UTC))
    )
    assert parse_filter("__system/submitterId eq -5.5") == Comparison(
        "eq", Member("__system/submitterId"), Literal(-5.5)
    )


def test_or_binds_looser_than_and() -> None:
    expr = parse_filter("__id eq 'a' or __id eq 'b' and __id eq 'c'")

    assert isinstance(expr, BoolOp)
    assert expr.op == "or"
    assert isinstance(expr.right, BoolOp)
    assert expr.right.op == "and"


def test_repeat_tables_filter_through_root() -> None:
    assert parse_filter("$root/Submissions/__id eq 'x'", root_only=True) == Comparison(
        "eq", Member("__id"), Literal("x")
    )
    with pytest.raises(ODataError) as refused:
        parse_filter("__id eq 'x'", root_only=True)
    assert refused.value.code == 501.5


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("age eq 5", 501.5),
        ("__system/submitterName eq 'x'", 501.5),
        ("$root/Other/__id eq 'x'", 501.5),
        ("contains(__id, 'x')", 501.4),
        ("tolower(__id) eq 'x'", 501.4),
        ("__id has 'x'", 501.4),
        ("__id", 501.4),
        ("__id eq 'x' and", 400.18),
        ("(__id eq 'x'", 400.18),
        ("__id eq 'unterminated", 400.18),
        ("__id eq 'x' __id", 400.18),
        ("year() eq 1", 400.18),
        ("now(__id) eq 1", 400.18),
        ("__system/submissionDate gt 2026-02-30", 400.18),
        ("__id eq 1 + 2", 400.18),
    ],
)
def test_refusals_carry_centrals_codes(text: str, code: float) -> None:
    with pytest.raises(ODataError) as refused:
        parse_filter(text)

    assert refused.value.code == code


@given(st.text(max_size=60))
def test_hostile_filters_raise_only_odata_errors(text: str) -> None:
    with contextlib.suppress(ODataError):
        parse_filter(text)


def test_orderby() -> None:
    assert parse_orderby(None) is None
    assert parse_orderby("__system/submissionDate") == OrderKey("__system/submissionDate", False)
    assert parse_orderby("__id DESC") == OrderKey("__id", True)
    assert parse_orderby("$root/Submissions/__id desc", root_only=True) == OrderKey("__id", True)
    for text, code in (("age", 501.5), ("__id up", 501.5), ("__id, __id", 501.1)):
        with pytest.raises(ODataError) as refused:
            parse_orderby(text)
        assert refused.value.code == code


def test_sanitize_like_central() -> None:
    assert sanitize("1-place") == "_1_place"
    assert sanitize("a.b c") == "a_b_c"
    assert sanitize("ok_name") == "ok_name"


def test_metadata_and_rows_of_a_nested_form() -> None:
    model = build_model(schema_from_markdown(FORM, "nested"))
    assert list(model.tables) == [
        "Submissions",
        "Submissions.the_place.member",
        "Submissions.the_place.member.visit",
    ]
    edmx = render_metadata(model).decode()
    assert '<ComplexType Name="the_place">' in edmx
    assert 'Name="__Submissions-the_place-member-id"' in edmx
    assert '<Property Name="weight" Type="Edm.Decimal"/>' in edmx
    assert '<Member Name="approved" Value="3"/>' in edmx  # python-odata needs Value

    record: dict[str, object] = {
        "name": "Arta",
        "age": "31",
        "weight": "70.0",
        "where": "42.1 21.2",
        "seen": "2026-08-01T10:00:00.000+02",
        "the-place": {
            "town": "",
            "member": [{"member_name": "A", "visit": [{"on": "2026-08-01"}]}, {"member_name": "B"}],
        },
    }
    root = RowWriter(model, model.root, RowOptions()).rows("uuid:1", record, None)
    assert root == [
        {
            "name": "Arta",
            "age": 31,
            "weight": 70,
            "where": {"type": "Point", "coordinates": [21.2, 42.1]},
            "seen": "2026-08-01T10:00:00.000+02:00",
            "the_place": {
                "town": None,
                "member@odata.navigationLink": "Submissions('uuid%3A1')/the_place/member",
            },
            "meta": {"instanceID": None},
            "__id": "uuid:1",
        }
    ]
    members = RowWriter(model, model.tables["Submissions.the_place.member"], RowOptions())
    rows = members.rows("uuid:1", record)
    assert [row["member_name"] for row in rows] == ["A", "B"]
    assert rows[0]["__Submissions-id"] == "uuid:1"
    assert "visit@odata.navigationLink" in rows[0]
    assert "visit@odata.navigationLink" not in rows[1]
    visits = RowWriter(model, model.tables["Submissions.the_place.member.visit"], RowOptions())
    (visit,) = visits.rows("uuid:1", record)
    assert visit["__Submissions-the_place-member-id"] == rows[0]["__id"]
    assert visits.rows("uuid:1", None) == []


def test_rows_of_irregular_records() -> None:
    """What the compiled row functions do with records that are not tidy."""
    model = build_model(schema_from_markdown(FORM, "nested"))
    record: dict[str, object] = {
        "name": ["first", "second"],  # a leaf sent twice: the last answer counts
        "age": ["7", "8"],
        "weight": [],
        "where": "",
        "seen": 5,  # not text: left out
        "the-place": "not a group",
    }

    (row,) = RowWriter(model, model.root, RowOptions()).rows("uuid:2", record, None)

    assert row["name"] == "second"
    assert row["age"] == 8
    assert (row["weight"], row["where"], row["seen"]) == (None, None, None)
    assert row["the_place"] == {"town": None}

    # One repeat instance stored as a bare dict, expanded with its nested repeat.
    single = {"the-place": {"member": {"member_name": "Z", "visit": [{"on": "2026-08-02"}]}}}
    (expanded,) = RowWriter(model, model.root, RowOptions(expand=True)).rows("uuid:3", single)
    (member,) = expanded["the_place"]["member"]
    members = RowWriter(model, model.tables["Submissions.the_place.member"], RowOptions())
    assert member["__id"] == members.rows("uuid:3", single)[0]["__id"]
    assert member["member_name"] == "Z"
    assert member["visit"][0]["on"] == "2026-08-02"
    assert member["visit@odata.navigationLink"].startswith(
        f"Submissions('uuid%3A3')/the_place/member('{member['__id']}')/visit"
    )


def test_compiled_rows_are_reused_across_requests() -> None:
    first = build_model(schema_from_markdown(FORM, "nested"))
    again = build_model(schema_from_markdown(FORM, "nested"))
    writer_a = RowWriter(first, first.root, RowOptions())
    writer_b = RowWriter(again, again.root, RowOptions())
    assert writer_a._fill is writer_b._fill
    assert RowWriter(first, first.root, RowOptions(wkt=True))._fill is not writer_a._fill


def test_select_prunes_fields_and_system() -> None:
    model = build_model(schema_from_markdown(FORM, "nested"))
    selection = parse_select(model.root, "age,the_place/town,__system/edits")
    assert selection is not None
    writer = RowWriter(model, model.root, RowOptions(select=selection))
    system = {"edits": 0, "reviewState": None}

    (row,) = writer.rows("uuid:1", {"age": "3", "the-place": {"town": "T"}}, system)

    assert row == {"age": 3, "the_place": {"town": "T"}, "__system": {"edits": 0}}
    assert parse_select(model.root, "*") is None
    for text, code in (("nope", 400.23), ("the_place/member/member_name", 400.24)):
        with pytest.raises(ODataError) as refused:
            parse_select(model.root, text)
        assert refused.value.code == code


def test_numbers_are_read_as_javascript_reads_them() -> None:
    """Central's parseInt/parseFloat: leading ASCII digits; other digits are not numbers."""
    model = build_model(schema_from_markdown(FORM, "nested"))
    writer = RowWriter(model, model.root, RowOptions())
    cases = [
        ({"age": "²", "weight": "٣.5", "where": "١ 2"}, (None, None, None)),
        ({"age": " 42 years", "weight": "1_000", "where": "1 2 3 4"}, (42, 1, [2, 1, 3])),
        ({"age": "-7", "weight": "nan", "where": "x y"}, (-7, None, None)),
    ]
    for record, (age, weight, coordinates) in cases:
        (row,) = writer.rows("uuid:n", record)
        assert (row["age"], row["weight"]) == (age, weight), record
        where = row["where"]
        assert (where and where["coordinates"]) == coordinates, record
