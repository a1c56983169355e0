"""The column-by-column fast path gives exactly the walker's raw frames, or declines."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from polars.testing import assert_frame_equal

from exports.columnar import tabulate_columns
from exports.options import ExportOptions
from exports.plan import ExportPlan, plan_export
from exports.records import ExportRecord
from exports.tabulate import _Walker, meta_columns, tabulate_batch
from forms.schema import FormSchema
from tests.exports.conftest import export_record, schema_from_markdown
from tests.exports.test_golden_csv import GOLDEN_FILES, as_stored, golden_case

NESTED = """
| survey |
|        | type         | name      | label     |
|        | text         | village   | Village   |
|        | begin group  | household | Household |
|        | begin repeat | member    | Member    |
|        | text         | name      | Name      |
|        | begin group  | work      | Work      |
|        | begin repeat | job       | Job       |
|        | text         | title     | Title     |
|        | end repeat   |           |           |
|        | end group    |           |           |
|        | end repeat   |           |           |
|        | end group    |           |           |
"""


def walked(plan: ExportPlan, records: list[ExportRecord]) -> dict[str, object]:
    """The walker's frames alone, for comparison."""
    import polars as pl

    walker = _Walker(plan)
    for item in records:
        assert isinstance(item.record, dict)
        walker.add(item.meta, item.record)
    return {
        table.name: pl.from_dicts(
            walker.rows[table.repeat_path],
            schema={source: pl.String for source in table.sources},
        )
        for table in plan.tables
    }


def assert_same_as_walker(
    schema: FormSchema, records: list[ExportRecord], options: ExportOptions | None = None
) -> None:
    plan = plan_export(schema, options or ExportOptions())
    fast = tabulate_columns(plan, [r.record for r in records], meta_columns(records))  # type: ignore[misc]
    assert fast is not None, "the fast path declined a regular batch"
    slow = walked(plan, records)
    assert fast.keys() == slow.keys()
    for name, frame in slow.items():
        assert_frame_equal(fast[name], frame)  # type: ignore[arg-type]


@pytest.mark.parametrize("stem", GOLDEN_FILES)
def test_golden_forms_match_the_walker(shared_dir: Path, stem: str) -> None:
    _, schema, records = golden_case(shared_dir, stem)
    assert_same_as_walker(schema, records)
    assert_same_as_walker(schema, records, ExportOptions(group_paths=False))


def nested_record(schema: FormSchema, instance: str, members: str) -> ExportRecord:
    xml = (
        f'<data id="test_form"><village>Ura</village><household>{members}</household>'
        f"<meta><instanceID>{instance}</instanceID></meta></data>"
    ).encode()
    return export_record(schema, xml)


def test_nested_repeats_empty_groups_and_unreadable_rows_match() -> None:
    schema = schema_from_markdown(NESTED)
    records = [
        nested_record(
            schema,
            "uuid:a",
            "<member><name>Arta</name><work><job><title>cook</title></job>"
            "<job><title></title></job></work></member><member/>",
        ),
        nested_record(schema, "uuid:b", ""),
        nested_record(schema, "uuid:c", "<member><name>Besa</name></member>"),
    ]
    unreadable = msgspec.structs.replace(
        records[2], meta=msgspec.structs.replace(records[2].meta, status="not decrypted")
    )
    assert_same_as_walker(schema, [*records, unreadable])
    jobs = tabulate_batch(plan_export(schema, ExportOptions()), records)["test_form-job"]
    assert jobs.get_column("@KEY").to_list() == [
        "uuid:a/household/member[1]/work/job[1]",
        "uuid:a/household/member[1]/work/job[2]",
    ]
    assert jobs.get_column("/household/member/work/job/title").to_list() == ["cook", None]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"village": ["Ura", "Lumi"]}, "an element repeated outside a repeat"),
        ({"village": {"street": "Rr. 1"}}, "an object where an answer belongs"),
        ({"household": "text where a group belongs"}, "text in place of a group"),
        ({"household": [{"member": []}, {"member": []}]}, "a group repeated"),
        ({"household": {"member": {"name": "not a list"}}}, "an object in place of a repeat"),
        ({"household": {"member": ["text instance"]}}, "text in place of an instance"),
    ],
)
def test_irregular_records_are_walked_and_give_the_walkers_answer(
    change: dict[str, object], reason: str
) -> None:
    schema = schema_from_markdown(NESTED)
    base = nested_record(schema, "uuid:z", "<member><name>Arta</name></member>")
    assert isinstance(base.record, dict)
    odd = msgspec.structs.replace(base, record={**base.record, **change})
    plan = plan_export(schema, ExportOptions())
    batch = [base, odd]

    assert tabulate_columns(plan, [r.record for r in batch], meta_columns(batch)) is None, reason  # type: ignore[misc]
    for stored in (False, True):
        got = tabulate_batch(plan, as_stored(batch) if stored else batch)
        for name, frame in walked(plan, batch).items():
            assert_frame_equal(got[name], frame)  # type: ignore[arg-type]


def test_text_of_an_element_repeated_outside_a_repeat_is_concatenated() -> None:
    schema = schema_from_markdown(NESTED)
    base = nested_record(schema, "uuid:z", "")
    assert isinstance(base.record, dict)
    odd = msgspec.structs.replace(base, record={**base.record, "village": ["Ura", "Lumi"]})
    frames = tabulate_batch(plan_export(schema, ExportOptions()), as_stored([odd]))
    assert frames["test_form"].get_column("/village").to_list() == ["UraLumi"]
