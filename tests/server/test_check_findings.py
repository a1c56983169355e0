"""Stored findings of the data checks: found after ingest, per repeat row, accepted or dismissed."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from forms.xlsform import compile_xlsform
from server.db.models import CheckFinding, FormChecks
from server.services import analysis, analysis_export
from server.services import cleaning as cleaning_service
from server.services.check_findings import SETTLE, update_findings
from server.services.forms import find_form
from server.services.purge import purge_deleted
from tests.exports.test_checks import REPEAT_FORM as FORM
from tests.server.conftest import World
from tests.server.test_cleaning_log import member

NOW = timedelta(0)


async def check_round(world: World, settle: timedelta = NOW) -> int:
    """A round of the background job, for submissions made a moment ago (no pacing)."""
    return await update_findings(world.runtime, settle=settle, pace=0)


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


def url(world: World, tail: str) -> str:
    return f"/v1/projects/{world.project_id}/forms/families/{tail}"


async def families_world(world: World) -> None:
    published = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true",
        content=compile_xlsform(FORM.encode(), file_name="families.md").xml,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert published.status_code == 200, published.text
    for n in range(6):
        await send(world, family(n, (str(30 + n), "spouse", ""), (str(5 + n), "child", "")))


async def send(world: World, xml: bytes) -> None:
    response = await world.client.post(
        url(world, "submissions"),
        content=xml,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text


async def findings(world: World, query: str = "") -> list[dict[str, object]]:
    response = await world.client.get(
        url(world, f"cleaning-findings{query}"), headers=world.admin_headers
    )
    assert response.status_code == 200, response.text
    body: list[dict[str, object]] = response.json()
    return body


ODD = family(9, ("31", "spouse", ""), ("4", "child", ""), ("400", "other", "Spouse "))


async def test_new_submissions_are_checked_after_ingest_and_findings_name_the_repeat_row(
    world: World,
) -> None:
    await families_world(world)
    await send(world, ODD)
    assert await findings(world) == []  # nothing happens in ingest itself

    assert await check_round(world) == 3

    found = await findings(world)
    assert {(f["kind"], f["field"], f["value"], f["suggestedValue"]) for f in found} == {
        ("outlier", "/household[3]/age", "400", None),
        ("constraint", "/household[3]/age", "400", None),
        ("other", "/household[3]/relation", "other", "spouse"),
    }
    assert {f["instanceId"] for f in found} == {"uuid:f9"}
    assert {f["repeatKey"] for f in found} == {"uuid:f9/household[3]"}
    assert {f["status"] for f in found} == {"open"}
    # Checked once: a second round and a run on demand add nothing.
    assert await check_round(world) == 0
    again = await world.client.post(
        url(world, "cleaning-findings/run"), headers=world.admin_headers
    )
    assert again.status_code == 200, again.text
    assert again.json()["added"] == 0
    assert again.json()["checked"] == 7


async def test_only_new_submissions_get_findings_in_a_later_round(world: World) -> None:
    await families_world(world)
    await send(world, family(20, ("500", "child", "")))
    await check_round(world)
    await send(world, family(21, ("600", "child", "")))
    # Not settled yet: a submission still committing must not be passed over.
    assert await check_round(world, settle=SETTLE) == 0

    await check_round(world)

    outliers = await findings(world, "?kind=outlier")
    assert sorted(str(f["instanceId"]) for f in outliers) == ["uuid:f20", "uuid:f21"]


async def test_a_round_reports_from_the_first_new_submission_on(world: World) -> None:
    await families_world(world)  # ages 30-35 and 5-10
    assert await check_round(world) == 0
    # Twenty households of ages 18-22: the older ages are now far out, but they
    # were checked before; the round reports the new submissions alone.
    for n in range(40, 60):
        ages = (str(18 + n % 5), "child", ""), (str(18 + (n + 2) % 5), "child", "")
        await send(world, family(n, *ages))

    assert await check_round(world) == 0

    on_demand = await world.client.post(
        url(world, "cleaning-checks"), json={"checks": ["outlier"]}, headers=world.admin_headers
    )
    assert on_demand.status_code == 200, on_demand.text
    reported = {s["instanceId"] for s in on_demand.json()["suggestions"]}
    assert reported == {"uuid:f0", "uuid:f5"}  # ages 5 and 35: what the round left out


async def test_accepted_findings_are_cleaning_log_entries_applied_to_the_repeat_table(
    world: World,
) -> None:
    await families_world(world)
    await send(world, ODD)
    await check_round(world)
    by_kind = {f["kind"]: f for f in await findings(world)}

    other = await world.client.post(
        url(world, f"cleaning-findings/{by_kind['other']['id']}/accept"),
        headers=world.admin_headers,
    )
    outlier = await world.client.post(
        url(world, f"cleaning-findings/{by_kind['outlier']['id']}/accept"),
        json={"newValue": "40", "reason": "typed 400 for 40"},
        headers=world.admin_headers,
    )

    assert other.status_code == 200, other.text
    assert outlier.status_code == 200, outlier.text
    entry = outlier.json()["entry"]
    assert (entry["field"], entry["oldValue"], entry["newValue"], entry["source"]) == (
        "/household[3]/age",
        "400",
        "40",
        "check:outlier",
    )
    assert entry["reason"] == "typed 400 for 40"
    assert outlier.json()["finding"]["status"] == "accepted"
    assert outlier.json()["finding"]["cleaningEntryId"] == entry["id"]
    assert outlier.json()["finding"]["decidedBy"]
    assert other.json()["entry"]["newValue"] == "spouse"
    assert other.json()["entry"]["reason"].startswith('the "other, specify" answer')

    cleaned = await repeat_rows(world, "?cleaned=true")
    raw = await repeat_rows(world, "")
    assert (
        cleaned["uuid:f9/household[3]"]["age"],
        cleaned["uuid:f9/household[3]"]["relation"],
    ) == (
        "40",
        "spouse",
    )
    assert cleaned["uuid:f9/household[1]"]["age"] == "31"  # the other rows as collected
    assert (raw["uuid:f9/household[3]"]["age"], raw["uuid:f9/household[3]"]["relation"]) == (
        "400",
        "other",
    )
    log = await world.client.get(url(world, "cleaning-log"), headers=world.admin_headers)
    assert {e["source"] for e in log.json()} == {"check:other", "check:outlier"}


async def repeat_rows(world: World, query: str) -> dict[str, dict[str, str]]:
    response = await world.client.get(
        url(world, f"submissions.csv.zip{query}"), headers=world.admin_headers
    )
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        text = archive.read("families-household.csv").decode()
    return {row["KEY"]: row for row in csv.DictReader(io.StringIO(text))}


async def test_dismissed_and_accepted_findings_stay_decided_and_are_not_found_again(
    world: World,
) -> None:
    await families_world(world)
    await send(world, ODD)
    await check_round(world)
    by_kind = {f["kind"]: f for f in await findings(world)}
    dismiss = url(world, f"cleaning-findings/{by_kind['constraint']['id']}/dismiss")

    no_reason = await world.client.post(dismiss, json={}, headers=world.admin_headers)
    dismissed = await world.client.post(
        dismiss,
        json={"reason": "a grandmother of 40 typed as 400, fixed by outlier"},
        headers=world.admin_headers,
    )
    twice = await world.client.post(dismiss, json={"reason": "again"}, headers=world.admin_headers)
    no_value = await world.client.post(
        url(world, f"cleaning-findings/{by_kind['outlier']['id']}/accept"),
        headers=world.admin_headers,
    )

    assert no_reason.status_code == 400
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "dismissed"
    assert dismissed.json()["dismissReason"].startswith("a grandmother")
    assert twice.status_code == 409
    assert twice.json()["code"] == 409.16
    assert no_value.status_code == 400  # an outlier has no suggestion: newValue is needed
    rerun = await world.client.post(
        url(world, "cleaning-findings/run"), headers=world.admin_headers
    )
    assert rerun.json()["added"] == 0
    async with world.runtime.read() as db:
        stored = await db.scalar(select(func.count()).select_from(CheckFinding))
    assert stored == 3
    assert [f["kind"] for f in await findings(world, "?status=dismissed")] == ["constraint"]
    audits = await world.client.get("/v1/audits?action=checks.dismiss", headers=world.admin_headers)
    assert [a["details"]["kind"] for a in audits.json()] == ["constraint"]
    assert len(await findings(world, "?status=open")) == 2


async def test_findings_are_paged_filtered_and_counted(world: World) -> None:
    await families_world(world)
    for n in range(30, 35):
        await send(world, family(n, (str(300 + n), "child", "")))
    await check_round(world)

    page = await world.client.get(
        url(world, "cleaning-findings?kind=constraint&limit=2&offset=1"),
        headers=world.admin_headers,
    )
    bad = [
        await world.client.get(url(world, f"cleaning-findings?{q}"), headers=world.admin_headers)
        for q in ("status=maybe", "kind=typo", "limit=0", "limit=5000", "offset=-1")
    ]

    assert page.status_code == 200, page.text
    assert page.headers["X-Total-Count"] == "5"
    assert [f["instanceId"] for f in page.json()] == ["uuid:f31", "uuid:f32"]
    assert [r.status_code for r in bad] == [400] * 5


async def test_check_settings_are_stored_per_form_checked_and_reset(world: World) -> None:
    await families_world(world)
    settings = url(world, "cleaning-check-settings")

    default = await world.client.get(settings, headers=world.admin_headers)
    unknown = await world.client.put(
        settings, json={"outlierFields": ["nope"]}, headers=world.admin_headers
    )
    typo = await world.client.put(
        settings, json={"check": ["outlier"]}, headers=world.admin_headers
    )
    off = await world.client.put(settings, json={"checks": []}, headers=world.admin_headers)
    await send(world, ODD)
    found_while_off = await check_round(world)
    reset = await world.client.delete(settings, headers=world.admin_headers)
    after = await world.client.get(settings, headers=world.admin_headers)

    assert default.json()["stored"] is False
    assert default.json()["settings"]["checks"] == [
        "duplicate",
        "outlier",
        "constraint",
        "other",
        "duration",
    ]
    assert unknown.status_code == 400
    assert "nope" in unknown.json()["message"]
    assert typo.status_code == 400
    assert off.status_code == 200, off.text
    assert off.json() == {"stored": True, "settings": off.json()["settings"]}
    assert off.json()["settings"]["checks"] == []
    assert found_while_off == 0
    assert reset.status_code == 200
    assert after.json()["stored"] is False


async def test_findings_are_for_those_who_write_the_cleaning_log(world: World) -> None:
    await families_world(world)
    await send(world, ODD)
    await check_round(world)
    viewer = await member(world, "viewer", "viewer@example.org")
    [first, *_] = await findings(world)

    answers: list[httpx.Response] = [
        await world.client.get(url(world, "cleaning-findings"), headers=viewer),
        await world.client.post(
            url(world, f"cleaning-findings/{first['id']}/dismiss"),
            json={"reason": "x"},
            headers=viewer,
        ),
        await world.client.get(url(world, "cleaning-check-settings"), headers=viewer),
        await world.client.post(url(world, "cleaning-findings/run"), headers=viewer),
        await world.client.get(url(world, "cleaning-findings")),
    ]

    assert [a.status_code for a in answers] == [403, 403, 403, 403, 401]
    missing = await world.client.post(
        url(world, "cleaning-findings/99999/dismiss"),
        json={"reason": "x"},
        headers=world.admin_headers,
    )
    assert missing.status_code == 404


async def test_accepting_after_the_answer_was_edited_is_a_conflict(world: World) -> None:
    await families_world(world)
    await send(world, ODD)
    await check_round(world)
    by_kind = {f["kind"]: f for f in await findings(world)}
    edited = (
        ODD.replace(b"<age>400</age>", b"<age>41</age>")
        .replace(b"</instanceID>", b"</instanceID><deprecatedID>uuid:f9</deprecatedID>")
        .replace(b"<instanceID>uuid:f9<", b"<instanceID>uuid:f9-2<")
    )
    response = await world.client.put(
        url(world, "submissions/uuid:f9"),
        content=edited,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text

    accepted = await world.client.post(
        url(world, f"cleaning-findings/{by_kind['outlier']['id']}/accept"),
        json={"newValue": "40"},
        headers=world.admin_headers,
    )

    assert accepted.status_code == 409
    assert accepted.json()["code"] == 409.15
    assert [f["status"] for f in await findings(world, "?kind=outlier")] == ["open"]


async def test_purging_submissions_and_forms_takes_their_findings_and_settings(
    world: World,
) -> None:
    await families_world(world)
    await send(world, ODD)
    await check_round(world)
    by_kind = {f["kind"]: f for f in await findings(world)}
    accepted = await world.client.post(
        url(world, f"cleaning-findings/{by_kind['other']['id']}/accept"),
        headers=world.admin_headers,
    )
    assert accepted.status_code == 200, accepted.text
    await world.client.put(
        url(world, "cleaning-check-settings"), json={"checks": []}, headers=world.admin_headers
    )
    deleted = await world.client.delete(
        url(world, "submissions/uuid:f9"), headers=world.admin_headers
    )
    assert deleted.status_code == 200
    assert await findings(world) == []  # a deleted submission's findings are not listed

    assert (await purge_deleted(world.runtime, older_than=timedelta(0))).submissions == 1
    gone = await world.client.delete(
        f"/v1/projects/{world.project_id}/forms/families", headers=world.admin_headers
    )
    assert gone.status_code == 200
    assert (await purge_deleted(world.runtime, older_than=timedelta(0))).forms == 1

    async with world.runtime.read() as db:
        left = [
            await db.scalar(select(func.count()).select_from(model))
            for model in (CheckFinding, FormChecks)
        ]
    assert left == [0, 0]


async def test_a_round_reads_the_analysis_copy_and_the_row_store_beyond_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "SETTLE", timedelta(seconds=-1))
    await families_world(world)
    await send(world, ODD)
    async with world.runtime.read() as db:
        form = await find_form(db, world.project_id, "families")
    assert await analysis.extend_copy(world.runtime, form.id) == 7
    await send(world, family(10, ("700", "child", "")))  # beyond the copy
    read: list[set[str]] = []  # the answer columns decoded from the copy, per reading
    real = analysis_export.segment_batches

    async def counted(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        read.append(set())
        async for batch in real(*args, **kwargs):
            tables = batch._tables.values()
            read[-1] |= {c for frame in tables for c in frame.columns if c.startswith("/")}
            yield batch

    monkeypatch.setattr(cleaning_service, "segment_batches", counted)

    assert await check_round(world) == 5

    # Once, and only the answers the checks read: not the head of the family.
    assert read == [{"/household/age", "/household/relation", "/household/relation_other"}]
    found = {(f["instanceId"], f["kind"], f["field"]) for f in await findings(world)}
    assert found == {
        ("uuid:f9", "outlier", "/household[3]/age"),
        ("uuid:f9", "constraint", "/household[3]/age"),
        ("uuid:f9", "other", "/household[3]/relation"),
        ("uuid:f10", "outlier", "/household[1]/age"),
        ("uuid:f10", "constraint", "/household[1]/age"),
    }
