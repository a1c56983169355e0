"""A check round fed batch by batch finds exactly what it finds on all submissions at once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import pytest

from exports.checks import CheckReport, CheckRound, CheckSettings, checkers
from exports.records import ExportRecord
from forms.schema import FormSchema
from forms.xform import bind_constraints, read_xform
from forms.xlsform import compile_xlsform
from tests.exports.conftest import BASE_DATE, export_record
from tests.exports.test_checks import CONSTRAINTS, SCHEMA, returnee

# A repeat inside a repeat: a member's rows are joined to their household,
# the household's to the submission, within each batch.
NESTED_FORM = """
| survey |
|  | type | name | label | constraint |
|  | begin_repeat | household | Household |  |
|  | integer | size | Size | . <= 20 |
|  | begin_repeat | member | Member |  |
|  | integer | age | Age | . <= 120 |
|  | select_one rel | relation | Relation |  |
|  | text | relation_other | Other relation |  |
|  | end_repeat | member |  |  |
|  | end_repeat | household |  |  |
| choices |
|  | list_name | name | label |
|  | rel | child | Child |
|  | rel | spouse | Spouse |
|  | rel | other | Other |
| settings |
|  | form_id |
|  | nested |
"""
NESTED_COMPILED = compile_xlsform(NESTED_FORM.encode(), file_name="n.md", form_id_fallback="nested")
NESTED = read_xform(NESTED_COMPILED.xml)
NESTED_CONSTRAINTS = bind_constraints(NESTED_COMPILED.xml)


def returnees(rng: random.Random, count: int) -> list[ExportRecord]:
    xmls = []
    for n in range(count):
        age = rng.choice([rng.randint(18, 60)] * 9 + [rng.choice([340, -5, 999, 130])])
        xmls.append(
            returnee(
                n + 100,
                minutes=rng.choice([2, 30, 45, 1]),
                full_name=rng.choice(["Arta Hoxha", "arta hoxa", "Genc Gashi", "genc GASHl", ""]),
                dob=rng.choice(["1953-01-01", "1960-02-02", ""]),
                municipality=rng.choice(["prizren", "peja"]),
                age=str(age),
                household=str(rng.randint(1, 9)),
                occupation=rng.choice(["farmer", "other"]),
                occupation_other=rng.choice(["", "Teachr", "farmer ", "taxi"]),
                phone=rng.choice(["044123456", "12-34"]),
            )
        )
    return [
        export_record(SCHEMA, xml, submitted=BASE_DATE + timedelta(minutes=i))
        for i, xml in enumerate(xmls)
    ]


def households(rng: random.Random, count: int) -> list[ExportRecord]:
    xmls = []
    for n in range(count):
        body = ""
        for _ in range(rng.randint(0, 3)):  # some submissions have no rows at all
            members = "".join(
                f"<member><age>{rng.choice([rng.randint(1, 80)] * 12 + [400, 999])}</age>"
                f"<relation>{rng.choice(['child', 'spouse', 'other'])}</relation>"
                f"<relation_other>{rng.choice(['', 'Spouse ', 'chld'])}</relation_other></member>"
                for _ in range(rng.randint(0, 4))
            )
            body += f"<household><size>{rng.choice([3, 4, 5, 30])}</size>{members}</household>"
        xml = f'<nested id="nested">{body}<meta><instanceID>uuid:h{n}</instanceID></meta></nested>'
        xmls.append(xml.encode())
    return [
        export_record(NESTED, xml, submitted=BASE_DATE + timedelta(minutes=i))
        for i, xml in enumerate(xmls)
    ]


def in_batches(
    schema: FormSchema,
    batches: Sequence[Sequence[ExportRecord]],
    settings: CheckSettings,
    constraints: dict[str, str],
    extremes: int,
) -> CheckReport:
    """Held within bounds when `extremes` is large, else with a second pass for
    outliers and for duplicates (only `extremes` people held)."""
    checks = CheckRound(schema, settings, constraints, extremes=extremes, duplicate_rows=extremes)
    for batch in batches:
        checks.add(batch)
    if checks.needs_second_pass():
        for batch in batches:
            checks.add_again(batch)
    return checks.report()


def split(rng: random.Random, records: list[ExportRecord]) -> list[list[ExportRecord]]:
    cuts = sorted(rng.sample(range(1, len(records)), 5))
    return [records[a:b] for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("extremes", [1, 4, 1000])
def test_batches_find_what_one_batch_finds(
    seed: int, extremes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if extremes < 1000:  # numbers tallied every few rows, not every 100,000
        monkeypatch.setattr(checkers, "_UNTALLIED", 3)
    rng = random.Random(seed)
    settings = [
        CheckSettings(),
        CheckSettings(outlier_fence=0.5, since=BASE_DATE + timedelta(minutes=20)),
        CheckSettings(duplicate_fields=("full_name",), duplicate_ratio=0.7),
    ]
    people = returnees(rng, 80)
    for chosen in settings:
        whole = in_batches(SCHEMA, [people], chosen, CONSTRAINTS, 1000)
        parts = in_batches(SCHEMA, split(rng, people), chosen, CONSTRAINTS, extremes)
        assert parts == whole
    homes = households(rng, 40)
    for chosen in (CheckSettings(), CheckSettings(outlier_fence=0.5)):
        whole = in_batches(NESTED, [homes], chosen, NESTED_CONSTRAINTS, 1000)
        parts = in_batches(NESTED, split(rng, homes), chosen, NESTED_CONSTRAINTS, extremes)
        assert parts == whole


def test_varied_data_gives_every_check_findings_and_deep_rows_their_paths() -> None:
    rng = random.Random(7)
    people = returnees(rng, 80)
    homes = households(rng, 40)

    report = in_batches(SCHEMA, split(rng, people), CheckSettings(), CONSTRAINTS, 1)
    nested = in_batches(
        NESTED, split(rng, homes), CheckSettings(outlier_fence=0.5), NESTED_CONSTRAINTS, 1
    )

    assert set(Counter(s.check for s in report.suggestions)) == {
        "duplicate",
        "outlier",
        "constraint",
        "other",
        "duration",
    }
    assert report.checked == 80
    deep = [s for s in nested.suggestions if s.field and "/member[" in s.field]
    assert {s.check for s in deep} >= {"outlier", "constraint", "other"}
    for found in deep:
        assert found.repeat_key == found.instance_id + found.field.rsplit("/", 1)[0]  # type: ignore[union-attr]
        assert found.field.startswith("/household[")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "settings",
    [
        CheckSettings(checks=("outlier",), outlier_fence=0.5),
        CheckSettings(checks=("duplicate",), duplicate_fields=("full_name",)),
    ],
)
def test_a_second_pass_is_asked_for_only_when_the_rows_held_are_too_few(
    settings: CheckSettings,
) -> None:
    people = returnees(random.Random(3), 80)
    few = CheckRound(SCHEMA, settings, extremes=1, duplicate_rows=10)
    many = CheckRound(SCHEMA, settings)
    for checks in (few, many):
        checks.add(people)

    assert few.needs_second_pass()
    assert not many.needs_second_pass()
