"""Data checks: duplicates, outliers, constraints, "other, specify" and short interviews."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exports.checks import CheckInput, CheckSettings, run_checks
from exports.checks.constraint import NotEvaluable, compile_constraint
from forms.xform import bind_constraints, read_xform
from forms.xlsform import compile_xlsform
from tests.exports.conftest import BASE_DATE, export_record

FORM = """
| survey |
|  | type | name | label | personal | constraint |
|  | start | start |  |  |  |
|  | end | end |  |  |  |
|  | text | full_name | Name | yes |  |
|  | date | dob | Born | yes |  |
|  | select_one town | municipality | Municipality | yes |  |
|  | integer | age | Age |  | . >= 0 and . <= 120 |
|  | integer | household | Household |  |  |
|  | select_one job | occupation | Occupation |  |  |
|  | text | occupation_other | Other job |  |  |
|  | text | phone | Phone |  | regex(., '^[0-9]{9}$') |
|  | integer | children | Children |  | . <= ${household} |
| choices |
|  | list_name | name | label |
|  | town | prizren | Prizren |
|  | town | peja | Peja |
|  | job | farmer | Farmer |
|  | job | teacher | Teacher |
|  | job | other | Other |
| settings |
|  | form_id |
|  | returns |
"""
COMPILED = compile_xlsform(FORM.encode(), file_name="returns.md", form_id_fallback="returns")
SCHEMA = read_xform(COMPILED.xml)
CONSTRAINTS = bind_constraints(COMPILED.xml)


NAMES = [
    "Arta Hoxha",
    "Besnik Krasniqi",
    "Dua Berisha",
    "Genc Gashi",
    "Ilir Morina",
    "Jeta Shala",
    "Liridon Rama",
    "Mimoza Kelmendi",
    "Qendrim Bytyqi",
    "Vjosa Thaci",
]


def returnee(n: int, minutes: int = 30, **answers: str) -> bytes:
    values = {
        "start": "2026-08-01T09:00:00.000+01:00",
        "end": f"2026-08-01T09:{minutes:02d}:00.000+01:00" if minutes < 60 else "",
        "full_name": NAMES[n % 10],
        "dob": f"19{50 + n}-01-01",
        "municipality": "prizren",
        "age": str(20 + n),
        "household": str(3 + n % 3),
        "occupation": "farmer",
        "occupation_other": "",
        "phone": "044123456",
        "children": "1",
    }
    values.update(answers)
    body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return (
        f'<returns id="returns">{body}<meta><instanceID>uuid:{n}</instanceID></meta></returns>'
    ).encode()


def records(*extra: bytes) -> list:  # type: ignore[type-arg]
    base = [returnee(n) for n in range(10)]
    return [
        export_record(SCHEMA, xml, submitted=BASE_DATE + timedelta(minutes=i))
        for i, xml in enumerate([*base, *extra])
    ]


def by_check(report: object, check: str) -> list:  # type: ignore[type-arg]
    return [s for s in report.suggestions if s.check == check]  # type: ignore[attr-defined]


def test_a_returnee_registered_twice_is_found_despite_typos_and_case() -> None:
    again = returnee(50, full_name="genc  GASHl", dob="1953-01-01")
    other_town = returnee(51, full_name="Genc Gashi", dob="1953-01-01", municipality="peja")

    report = run_checks(SCHEMA, [records(again, other_town)], CheckSettings(checks=("duplicate",)))

    [found] = by_check(report, "duplicate")
    assert found.instance_id == "uuid:50"  # the later registration
    assert found.related == ["uuid:3"]
    assert found.field is None
    assert "full_name, dob, municipality" in found.reason


def test_duplicate_fields_can_be_named_and_unknown_ones_are_refused() -> None:
    again = returnee(60, full_name="Ilir Morina", dob="2000-01-01")
    named = CheckSettings(checks=("duplicate",), duplicate_fields=("full_name",))

    report = run_checks(SCHEMA, [records(again)], named)

    found = by_check(report, "duplicate")
    assert [(s.instance_id, s.related) for s in found] == [("uuid:60", ["uuid:4"])]
    with pytest.raises(ValueError, match='no question "nope"'):
        run_checks(SCHEMA, [records()], CheckSettings(duplicate_fields=("nope",)))


def test_numeric_outliers_are_outside_tukeys_far_fences() -> None:
    report = run_checks(
        SCHEMA, [records(returnee(70, age="340"))], CheckSettings(checks=("outlier",))
    )

    [found] = by_check(report, "outlier")
    assert (found.instance_id, found.field, found.value) == ("uuid:70", "/age", "340")
    assert "interquartile" in found.reason
    # household has 3 distinct values in 11 answers: enough spread, nothing far out.
    assert not [s for s in report.suggestions if s.field == "/household"]


def test_answers_breaking_the_current_constraints_are_found_or_said_not_evaluable() -> None:
    extra = [returnee(80, age="130"), returnee(81, phone="12-34")]

    report = run_checks(
        SCHEMA, [records(*extra)], CheckSettings(checks=("constraint",)), CONSTRAINTS
    )

    found = {(s.instance_id, s.field) for s in by_check(report, "constraint")}
    assert found == {("uuid:80", "/age"), ("uuid:81", "/phone")}
    assert [(n.field, n.check) for n in report.not_evaluated] == [("/children", "constraint")]


def test_other_specify_answers_that_match_a_listed_choice() -> None:
    extra = [
        returnee(90, occupation="other", occupation_other="  farmer "),
        returnee(91, occupation="other", occupation_other="Teachr"),
        returnee(92, occupation="other", occupation_other="taxi driver"),
    ]

    report = run_checks(SCHEMA, [records(*extra)], CheckSettings(checks=("other",)))

    found = [(s.instance_id, s.field, s.value, s.suggested_value) for s in report.suggestions]
    assert found == [
        ("uuid:90", "/occupation", "other", "farmer"),
        ("uuid:91", "/occupation", "other", "teacher"),
    ]


def test_interviews_too_short_or_ending_before_they_start() -> None:
    extra = [returnee(95, minutes=2), returnee(96, start="2026-08-01T10:00:00.000+01:00")]

    report = run_checks(SCHEMA, [records(*extra)], CheckSettings(checks=("duration",)))

    found = {s.instance_id: s.reason for s in by_check(report, "duration")}
    assert set(found) == {"uuid:95", "uuid:96"}
    assert "2.0 minutes" in found["uuid:95"]
    assert "ended before it started" in found["uuid:96"]


def test_since_reports_only_new_submissions_but_compares_with_all() -> None:
    again = returnee(50, full_name="Genc Gashi", dob="1953-01-01")
    settings = CheckSettings(since=BASE_DATE + timedelta(minutes=10))

    report = run_checks(SCHEMA, [records(again, returnee(71, age="999"))], settings, CONSTRAINTS)

    assert {s.instance_id for s in report.suggestions} == {"uuid:50", "uuid:71"}
    assert report.checked == 12
    naive = CheckSettings(since=settings.since.replace(tzinfo=None))  # type: ignore[union-attr]
    naive_report = run_checks(SCHEMA, [records(again, returnee(71, age="999"))], naive, CONSTRAINTS)
    assert naive_report.suggestions == report.suggestions


@pytest.mark.parametrize(
    ("expression", "holds", "fails"),
    [
        (". >= 0 and . <= 120", ["0", "120", ""], ["-1", "121"]),
        ("not(. = 'x') or . = 'y'", ["a", "y"], ["x"]),
        ("string-length(.) <= 3", ["abc"], ["abcd"]),
        ("(. > 1 or . < -1) and number(.) != 5", ["2", "-3"], ["0", "5"]),
    ],
)
def test_simple_constraints_evaluate_like_odk(
    expression: str, holds: list[str], fails: list[str]
) -> None:
    predicate = compile_constraint(expression)
    assert [predicate(v) for v in holds] == [True] * len(holds)
    assert [predicate(v) for v in fails] == [False] * len(fails)


@pytest.mark.parametrize("expression", [". <= today()", "${a} > 1", ". >", "selected(., 'a')"])
def test_other_constraints_are_not_evaluable(expression: str) -> None:
    with pytest.raises(NotEvaluable):
        compile_constraint(expression)


REPEAT_FORM = """
| survey |
|  | type | name | label | constraint |
|  | text | head | Head |  |
|  | begin_repeat | household | Household |  |
|  | integer | age | Age | . <= 120 |
|  | select_one rel | relation | Relation |  |
|  | text | relation_other | Other relation |  |
|  | end_repeat | household |  |  |
| choices |
|  | list_name | name | label |
|  | rel | child | Child |
|  | rel | spouse | Spouse |
|  | rel | other | Other |
| settings |
|  | form_id |
|  | families |
"""
REPEAT_COMPILED = compile_xlsform(
    REPEAT_FORM.encode(), file_name="families.md", form_id_fallback="families"
)
REPEAT_SCHEMA = read_xform(REPEAT_COMPILED.xml)


def family(n: int, *members: tuple[str, str, str]) -> bytes:
    rows = "".join(
        f"<household><age>{age}</age><relation>{rel}</relation>"
        f"<relation_other>{other}</relation_other></household>"
        for age, rel, other in members
    )
    return (
        f'<families id="families"><head>H{n}</head>{rows}'
        f"<meta><instanceID>uuid:f{n}</instanceID></meta></families>"
    ).encode()


def families(*extra: bytes) -> list:  # type: ignore[type-arg]
    usual = [family(n, (str(30 + n), "spouse", ""), (str(5 + n), "child", "")) for n in range(6)]
    return [
        export_record(REPEAT_SCHEMA, xml, submitted=BASE_DATE + timedelta(minutes=i))
        for i, xml in enumerate([*usual, *extra])
    ]


def test_answers_in_repeats_are_checked_per_repeat_instance_and_name_their_row() -> None:
    odd = family(9, ("31", "spouse", ""), ("4", "child", ""), ("400", "other", "Spouse "))

    report = run_checks(
        REPEAT_SCHEMA,
        [families(odd)],
        CheckSettings(checks=("outlier", "constraint", "other")),
        bind_constraints(REPEAT_COMPILED.xml),
    )

    found = {
        (s.check, s.instance_id, s.field, s.repeat_key, s.value, s.suggested_value)
        for s in report.suggestions
    }
    assert found == {
        ("outlier", "uuid:f9", "/household[3]/age", "uuid:f9/household[3]", "400", None),
        ("constraint", "uuid:f9", "/household[3]/age", "uuid:f9/household[3]", "400", None),
        ("other", "uuid:f9", "/household[3]/relation", "uuid:f9/household[3]", "other", "spouse"),
    }
    assert not report.not_evaluated


@pytest.mark.parametrize(
    "settings",
    [
        CheckSettings(),
        CheckSettings(checks=("duplicate",), duplicate_fields=("full_name",)),
        CheckSettings(checks=("outlier", "other")),
        CheckSettings(checks=("constraint", "duration")),
    ],
)
def test_checks_on_the_columns_they_read_find_what_they_find_on_all(
    settings: CheckSettings,
) -> None:
    odd = [
        returnee(90, age="340", phone="12-34", minutes=2),
        returnee(91, full_name="genc  GASHl", dob="1953-01-01"),
        returnee(92, occupation="other", occupation_other="Teacher"),
    ]
    whole = CheckInput(SCHEMA)
    narrow = CheckInput(SCHEMA, settings, CONSTRAINTS)
    for collected in (whole, narrow):
        collected.add(records(*odd))

    kept = set(narrow.parts["returns"][0].columns)
    every = set(whole.parts["returns"][0].columns)
    expected = run_checks(SCHEMA, whole, settings, CONSTRAINTS)

    assert run_checks(SCHEMA, narrow, settings, CONSTRAINTS) == expected
    assert expected.suggestions
    assert kept < every
    assert "/phone" not in kept or "constraint" in settings.checks
