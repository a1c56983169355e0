"""Who is due for a follow-up, the indicators, and an entity's source submissions,
read over HTTP from the demo programme after an intake arrives as Collect sends it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import httpx
import pytest

from forms.personal import PersonalFields
from server.demo import seed_demo
from server.runtime import Runtime
from server.services.case_schedule import add_months, bucket_of, next_wave, schedule_case
from server.services.forms import find_form
from server.services.indicators import INTAKE_BREAKDOWNS, count_form, months_between
from server.services.personal import PersonalView
from tests.e2e.collect import intake_xml, jpeg, new_instance_id

OPENROSA = {"X-OpenRosa-Version": "1.0"}
ENTITY = "8d2b7f4e-4c1e-4a55-9a53-2f1f1a0c0b11"


def test_months_are_added_calendar_wise_and_clamped_to_the_month_end() -> None:
    assert add_months(date(2026, 10, 1), 3) == date(2027, 1, 1)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 1, 31), 12) == date(2027, 1, 31)


def test_the_next_wave_follows_the_last_and_ends_after_twelve_months() -> None:
    assert next_wave(None) == ("month_3", 3)
    assert next_wave("month_3") == ("month_6", 6)
    assert next_wave("month_6") == ("month_12", 12)
    assert next_wave("month_12") is None


def test_buckets_split_overdue_this_week_and_later() -> None:
    today = date(2027, 1, 5)
    assert bucket_of(date(2027, 1, 4), today) == "overdue"
    assert bucket_of(date(2027, 1, 5), today) == "week"
    assert bucket_of(date(2027, 1, 12), today) == "week"
    assert bucket_of(date(2027, 1, 13), today) == "later"


def test_waves_count_from_return_then_last_contact_then_registration() -> None:
    created, today = date(2026, 11, 23), date(2026, 12, 1)
    with_return = schedule_case("u", "L", {"return_date": "2026-10-01"}, created, today)
    assert with_return is not None
    assert with_return.due_date == "2027-01-01"
    by_contact = schedule_case("u", "L", {"last_contact": "2026-11-02"}, created, today)
    assert by_contact is not None
    assert by_contact.due_date == "2027-02-02"
    by_creation = schedule_case("u", "L", {"return_date": "not a date"}, created, today)
    assert by_creation is not None
    assert by_creation.due_date == "2027-02-23"
    done = schedule_case("u", "L", {"last_wave": "month_12"}, created, today)
    assert done is None


def test_months_between_fills_the_gaps_across_a_year_end() -> None:
    assert months_between("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]


@dataclass
class Programme:
    client: httpx.AsyncClient
    admin: dict[str, str]
    pid: int
    instance_id: str


@pytest.fixture
async def programme(runtime: Runtime, client: httpx.AsyncClient) -> Programme:
    demo = await seed_demo(runtime, "http://testserver")
    signed = await client.post(
        "/v1/sessions", json={"email": demo.admin_email, "password": demo.admin_password}
    )
    assert signed.status_code == 200, signed.text
    admin = {"Authorization": f"Bearer {signed.json()['token']}"}
    base = demo.collect_url.removeprefix("http://testserver")
    instance_id = new_instance_id()
    sent = await client.post(
        f"{base}/submission",
        files={
            "xml_submission_file": ("x.xml", intake_xml(instance_id, "c.jpg", entity_id=ENTITY)),
            "c.jpg": ("c.jpg", jpeg(64), "image/jpeg"),
        },
        headers=OPENROSA,
    )
    assert sent.status_code == 201, sent.text
    return Programme(client, admin, demo.project_id, instance_id)


async def test_a_returnee_registered_at_intake_is_due_three_months_after_return(
    programme: Programme,
) -> None:
    url = f"/v1/projects/{programme.pid}/case-schedule"
    # intake_xml returns the person on 2026-10-01: the 3-month wave is due on 2027-01-01.
    later = await programme.client.get(url, params={"asOf": "2026-12-01"}, headers=programme.admin)
    assert later.status_code == 200, later.text
    [case] = later.json()["cases"]
    assert case["uuid"] == ENTITY
    assert case["label"] == "RW-20261123-a1b2c3 Arta"
    assert case["municipality"] == "Tirana"
    assert (case["nextWave"], case["dueDate"], case["bucket"]) == ("month_3", "2027-01-01", "later")
    assert later.json()["counts"] == {"overdue": 0, "week": 0, "later": 1}
    week = await programme.client.get(url, params={"asOf": "2026-12-28"}, headers=programme.admin)
    assert week.json()["cases"][0]["bucket"] == "week"
    overdue = await programme.client.get(
        url, params={"asOf": "2027-01-05"}, headers=programme.admin
    )
    assert overdue.json()["counts"]["overdue"] == 1
    wrong = await programme.client.get(url, params={"asOf": "soon"}, headers=programme.admin)
    assert wrong.status_code == 400
    for limit in ("0", "5001", "x"):
        refused = await programme.client.get(url, params={"limit": limit}, headers=programme.admin)
        assert refused.status_code == 400, limit


async def test_the_schedule_counts_everyone_and_lists_the_soonest_first(
    programme: Programme,
) -> None:
    entities = [
        {"label": f"R{n}", "data": {"return_date": f"2026-{month:02d}-01"}}
        for n, month in enumerate((9, 3, 6), start=1)
    ]
    made = await programme.client.post(
        f"/v1/projects/{programme.pid}/datasets/returnees/entities",
        json={"entities": entities, "source": {"name": "test"}},
        headers=programme.admin,
    )
    assert made.status_code == 200, made.text
    response = await programme.client.get(
        f"/v1/projects/{programme.pid}/case-schedule",
        params={"asOf": "2026-09-01", "limit": "2"},
        headers=programme.admin,
    )
    body = response.json()
    # Due 3 months after return: R2 on 06-01, R3 on 09-01, R1 on 12-01, intake's on 01-01.
    assert body["total"] == 4
    assert body["counts"] == {"overdue": 1, "week": 1, "later": 2}
    assert [(c["label"], c["dueDate"]) for c in body["cases"]] == [
        ("R2", "2026-06-01"),
        ("R3", "2026-09-01"),
    ]


async def test_an_entity_names_the_submission_that_created_it(programme: Programme) -> None:
    response = await programme.client.get(
        f"/v1/projects/{programme.pid}/datasets/returnees/entities/{ENTITY}/sources",
        headers=programme.admin,
    )
    assert response.status_code == 200, response.text
    [source] = response.json()
    assert source["version"] == 1
    assert source["xmlFormId"] == "intake"
    assert source["instanceId"] == programme.instance_id
    assert source["instanceName"] == "RW-20261123-a1b2c3 / Tirana / 2026-11-23"


async def test_indicators_count_registrations_by_country_municipality_gender_and_month(
    programme: Programme,
) -> None:
    response = await programme.client.get(
        f"/v1/projects/{programme.pid}/indicators", headers=programme.admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["registrations"], body["followUps"]) == (1, 0)
    counts = {b["name"]: {c["key"]: c["count"] for c in b["counts"]} for b in body["breakdowns"]}
    assert counts == {
        "country": {"albania": 1},
        "municipality": {"Tirana": 1},
        "gender": {"female": 1},
        "wave": {},
    }
    gender = next(b for b in body["breakdowns"] if b["name"] == "gender")
    assert any("Female" in label for label in gender["counts"][0]["labels"].values())
    assert body["byMonth"] == [{"month": "2026-11", "registrations": 1, "followUps": 0}]


async def test_a_data_collector_is_refused_the_schedule_sources_and_indicators(
    programme: Programme,
) -> None:
    client, admin = programme.client, programme.admin
    made = await client.post(
        "/v1/users",
        json={"email": "coll@example.org", "password": "a long passphrase 1"},
        headers=admin,
    )
    assert made.status_code == 200, made.text
    assigned = await client.post(
        f"/v1/projects/{programme.pid}/assignments/formfill/{made.json()['id']}", headers=admin
    )
    assert assigned.status_code == 200, assigned.text
    signed = await client.post(
        "/v1/sessions", json={"email": "coll@example.org", "password": "a long passphrase 1"}
    )
    collector = {"Authorization": f"Bearer {signed.json()['token']}"}
    for path in (
        "case-schedule",
        "indicators",
        f"datasets/returnees/entities/{ENTITY}/sources",
    ):
        response = await client.get(f"/v1/projects/{programme.pid}/{path}", headers=collector)
        assert response.status_code == 403, (path, response.text)


async def test_a_breakdown_by_a_personal_field_is_withheld_below_manager(
    programme: Programme, runtime: Runtime
) -> None:
    """Were sex marked personal, a viewer would get no counts by it (small cells name people)."""
    async with runtime.read() as db:
        form = await find_form(db, programme.pid, "intake")
        marked = PersonalFields(marked=frozenset({"/registration/person/sex"}))
        masked = await count_form(
            db, form, PersonalView(marked, clear=False, key=b"k"), INTAKE_BREAKDOWNS, ("/today",)
        )
        clear = await count_form(
            db, form, PersonalView(marked, clear=True, key=b"k"), INTAKE_BREAKDOWNS, ("/today",)
        )
    by_name = {b.name: b for b in masked.breakdowns}
    assert by_name["gender"].withheld
    assert by_name["gender"].counts == {}
    assert by_name["municipality"].counts == {"Tirana": 1}
    assert {b.name: b.counts for b in clear.breakdowns}["gender"] == {"female": 1}
