"""Answer filters read from the analysis copy give what the SQL path gives.

Every expression is answered twice, from the copy (services.filter_copy) and
from the stored records alone, before and after edits, deletions and
submissions the copy does not hold yet; both must select the same submissions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.api import odata as odata_api
from server.db.models import AnalysisSegment
from server.services import analysis, filter_copy
from server.services.forms import find_form
from tests.server.conftest import World
from tests.server.test_odata_field_filter import VISITS, feed, member, picked, visit_xml
from tests.server.test_odata_field_filter import visits as visits

XML = {"Content-Type": "application/xml"}

# Beyond test_odata_field_filter's four: letters outside ASCII in both cases,
# numbers with spaces, a number field holding text, an upper-case choice.
MORE = [
    ("DURRËS", "Era Bala", "female", "SQ sr", " 7 ", "abc", "2026-03-15T23:30:00-05:00", "", "7"),
    ("Prizren", "Gent Krasniqi", "male", "en", "3", "-2.5e1", "2026-06-01", "42 21 0 3", ""),
]

EXPRESSIONS = [
    "municipality eq 'Tirana'",
    "municipality ne 'Tirana'",
    "contains(municipality, 'TIRANA')",
    "not contains(municipality, 'tirana')",
    "contains(municipality, '%')",
    "contains(municipality, 'durrës')",
    "contains(municipality, 'DURRËS')",
    "contains(municipality, 'rr')",
    "municipality lt 'S'",
    "municipality ge 'T'",
    "gender eq 'female'",
    "contains(languages, 'sq')",
    "contains(languages, 'SQ')",
    "contains(languages, 's')",
    "languages eq null",
    "languages ne null",
    "size gt 4",
    "size le 5",
    "size eq 7",
    "size eq null",
    "not (size gt 4)",
    "income ge 100",
    "income lt 100.5",
    "income eq 0",
    "not (income lt 0)",
    "visit_date ge 2026-03-15",
    "visit_date lt 2026-04-01",
    "visit_date eq 2026-05-20",
    "visit_date eq 2026-03-15",
    "location ne null",
    "location eq null",
    "household/head_age ge 44",
    "44 le household/head_age",
    "gender eq 'male' and size gt 10",
    "gender eq 'female' or municipality eq 'Tirana'",
    "not (gender eq 'female' or size lt 3)",
    "__system/reviewState eq null and size lt 3",
    "__system/reviewState eq 'approved' or contains(municipality, 'i')",
    "not (__system/submitterId eq null and size gt 2)",
    "size gt household/head_age",
]


@pytest.fixture(autouse=True)
def settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Submissions join the copy as soon as they are stored (no 60 s wait)."""
    monkeypatch.setattr(analysis, "SETTLE", timedelta(seconds=-1))


def extra_xml(number: int, *, instance: str | None = None, deprecated: str | None = None) -> bytes:
    town, name, gender, langs, size, income, day, where, head = MORE[number]
    instance = instance or f"uuid:visit-{len(VISITS) + number}"
    older = f"<deprecatedID>{deprecated}</deprecatedID>" if deprecated else ""
    return (
        f'<visit id="visit" version="1"><municipality>{town}</municipality>'
        f"<full_name>{name}</full_name><gender>{gender}</gender><languages>{langs}</languages>"
        f"<size>{size}</size><income>{income}</income><visit_date>{day}</visit_date>"
        f"<location>{where}</location><household><head_age>{head}</head_age></household>"
        f"<members><member_name>X{number}</member_name></members>"
        f"<meta><instanceID>{instance}</instanceID>{older}</meta></visit>"
    ).encode()


async def send(world: World, xml: bytes) -> None:
    sent = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/visit/submissions",
        content=xml,
        headers=world.admin_headers | XML,
    )
    assert sent.status_code == 200, sent.text


async def edit(world: World, instance_id: str, xml: bytes) -> None:
    base = f"/v1/projects/{world.project_id}/forms/visit/submissions"
    sent = await world.client.put(
        f"{base}/{instance_id}", content=xml, headers=world.admin_headers | XML
    )
    assert sent.status_code == 200, sent.text


async def form_id(world: World) -> int:
    async with world.runtime.read() as db:
        return (await find_form(db, world.project_id, "visit")).id


async def answers(
    world: World, monkeypatch: pytest.MonkeyPatch, *, copy: bool, headers: Any = None
) -> dict[str, tuple[list[int], int]]:
    """Each expression's submissions and count, from the copy or from SQL alone."""
    used: list[bool] = []
    real = filter_copy.decide_from_copy

    async def spied(*args: Any) -> Any:
        decided = await real(*args)
        used.append(bool(decided))
        return decided

    async def sql_only(*_: Any) -> Any:
        return {}

    found: dict[str, tuple[list[int], int]] = {}
    with monkeypatch.context() as patch:
        patch.setattr(odata_api, "decide_from_copy", spied if copy else sql_only)
        for expression in EXPRESSIONS:
            response = await feed(world, expression, headers, top="3")
            assert response.status_code == 200, (expression, response.text)
            body = response.json()
            rows = picked(body)
            while "@odata.nextLink" in body:  # every page, with the filter each time
                body = (
                    await world.client.get(
                        body["@odata.nextLink"], headers=headers or world.admin_headers
                    )
                ).json()
                rows += picked(body)
            found[expression] = (sorted(rows), response.json()["@odata.count"])
    if copy:
        # Only the two that compare an answer with another answer stay in SQL.
        assert sum(used) >= len(EXPRESSIONS) - 2, used
    return found


def same(copied: dict[str, Any], sql: dict[str, Any]) -> None:
    wrong = {e: (copied[e], sql[e]) for e in EXPRESSIONS if copied[e] != sql[e]}
    assert not wrong


async def test_filters_from_the_copy_equal_the_stored_records(
    visits: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = visits
    await send(world, extra_xml(0))
    await send(world, extra_xml(1))
    before = await answers(world, monkeypatch, copy=False)
    assert before["size eq 7"][0] == [4]
    assert before["municipality eq 'Tirana'"] == ([0], 1)

    assert await analysis.extend_copy(world.runtime, await form_id(world)) == 6

    same(await answers(world, monkeypatch, copy=True), before)

    # Changed since the copy was written: an edit, a deletion, a review, a new one.
    await edit(
        world,
        "uuid:visit-4",
        extra_xml(0, instance="uuid:visit-4b", deprecated="uuid:visit-4").replace(
            b"<size> 7 </size>", b"<size></size>"
        ),
    )
    edited = (
        extra_xml(1, instance="uuid:visit-5b", deprecated="uuid:visit-5")
        .replace(b"<size>3</size>", b"<size>30</size>")
        .replace(b"Prizren", b"Tirana")
    )
    await edit(world, "uuid:visit-5", edited)
    base = f"/v1/projects/{world.project_id}/forms/visit/submissions"
    deleted = await world.client.delete(f"{base}/uuid:visit-1", headers=world.admin_headers)
    assert deleted.status_code == 200, deleted.text
    reviewed = await world.client.patch(
        f"{base}/uuid:visit-2", json={"reviewState": "approved"}, headers=world.admin_headers
    )
    assert reviewed.status_code == 200, reviewed.text
    await send(world, visit_xml(0).replace(b"uuid:visit-0", b"uuid:visit-9"))

    after = await answers(world, monkeypatch, copy=False)
    assert after["municipality eq 'Tirana'"] == ([0, 5, 9], 3)  # edited and new ones
    same(await answers(world, monkeypatch, copy=True), after)

    # Copied again: the edits, the deleted one and the new one are in the copy now.
    assert await analysis.rebuild_copy(world.runtime, await form_id(world)) == 7
    same(await answers(world, monkeypatch, copy=True), after)


async def test_personal_answers_are_refused_before_the_copy_is_read(
    visits: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = visits
    assert await analysis.extend_copy(world.runtime, await form_id(world)) == 4
    viewer = await member(world, "viewer")
    read: list[object] = []
    real = filter_copy.decide_from_copy

    async def spied(*args: Any) -> Any:
        read.append(args)
        return await real(*args)

    monkeypatch.setattr(odata_api, "decide_from_copy", spied)

    refused = await feed(world, "contains(full_name, 'Arben') or size gt 1", viewer)
    allowed = await feed(world, "contains(municipality, 'tirana')", viewer)

    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == 403.1
    assert allowed.status_code == 200, allowed.text
    assert picked(allowed.json()) == [0, 2]
    assert len(read) == 1  # only the allowed one reached the copy


async def test_submissions_missing_from_the_copy_are_read_from_the_records(
    visits: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A segment the copy lost (its row gone): its submissions come through SQL."""
    world = visits
    await send(world, extra_xml(0))
    await send(world, extra_xml(1))
    monkeypatch.setattr(analysis, "SEGMENT_SUBMISSIONS", 2)
    monkeypatch.setattr(analysis, "SMALL_SEGMENT", 0)  # three segments, not merged
    assert await analysis.extend_copy(world.runtime, await form_id(world)) == 6
    async with world.runtime.transaction() as db:
        lost = await db.scalar(select(AnalysisSegment).where(AnalysisSegment.number == 2).limit(1))
        assert lost is not None
        await db.delete(lost)

    same(
        await answers(world, monkeypatch, copy=True),
        await answers(world, monkeypatch, copy=False),
    )
