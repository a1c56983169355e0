"""The cleaning log over HTTP: entries by JSON and CSV, roles, audits, cleaned exports, edits."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import httpx
import openpyxl

from server.roles import ROLES_BY_SYSTEM
from server.services import accounts
from server.settings import Settings
from tests.server.conftest import World, sign_in, submission_xml
from tests.server.test_cli_export import run_cli
from tests.server.test_export_options import intake_world, viewer

XML = {"Content-Type": "application/xml"}


def log_url(world: World, tail: str = "") -> str:
    return f"/v1/projects/{world.project_id}/forms/simple/cleaning-log{tail}"


def export_url(world: World, file: str) -> str:
    return f"/v1/projects/{world.project_id}/forms/simple/{file}"


async def create(world: World, instance_id: str, **fields: object) -> None:
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/simple/submissions",
        content=submission_xml(instance_id, **fields),  # type: ignore[arg-type]
        headers=world.admin_headers | XML,
    )
    assert response.status_code == 200, response.text


async def member(world: World, role: str, email: str) -> dict[str, str]:
    async with world.runtime.transaction() as db:
        actor, _ = await accounts.create_user(db, email=email, password="a long password")
        await accounts.assign(
            db,
            actor_id=actor.id,
            role=ROLES_BY_SYSTEM[role],
            project_id=world.project_id,
            by=None,
        )
    return await sign_in(world.client, email, "a long password")


def root_rows(response: httpx.Response) -> tuple[dict[str, dict[str, str]], list[list[str]]]:
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        rows = csv.DictReader(io.StringIO(archive.read("simple.csv").decode()))
        log = (
            list(csv.reader(io.StringIO(archive.read("cleaning-log.csv").decode())))
            if "cleaning-log.csv" in names
            else []
        )
    return {row["KEY"]: row for row in rows}, log


async def test_an_entry_cleans_exports_that_ask_and_never_the_stored_data(world: World) -> None:
    await create(world, "uuid:c1", age=340)
    await create(world, "uuid:c2", name="Arta", age=30)

    added = await world.client.post(
        log_url(world),
        json={"instanceId": "uuid:c1", "field": "age", "newValue": "34", "reason": "typo: 340"},
        headers=world.admin_headers,
    )
    removed = await world.client.post(
        log_url(world),
        json={"instanceId": "uuid:c2", "reason": "duplicate of uuid:c1"},
        headers=world.admin_headers,
    )

    assert added.status_code == 200, added.text
    entry = added.json()
    assert entry["field"] == "/age"
    assert (entry["oldValue"], entry["newValue"]) == ("340", "34")
    assert entry["who"]
    assert entry["createdAt"].endswith("Z")
    assert entry["source"] == "manual"
    assert removed.json()["field"] is None
    raw, raw_log = root_rows(
        await world.client.get(
            export_url(world, "submissions.csv.zip"), headers=world.admin_headers
        )
    )
    cleaned, log = root_rows(
        await world.client.get(
            export_url(world, "submissions.csv.zip?cleaned=true"), headers=world.admin_headers
        )
    )
    assert raw["uuid:c1"]["age"] == "340"
    assert "uuid:c2" in raw
    assert raw_log == []
    assert cleaned["uuid:c1"]["age"] == "34"
    assert "uuid:c2" not in cleaned
    assert [row[1:6] for row in log[1:]] == [
        ["uuid:c1", "/age", "340", "34", "typo: 340"],
        ["uuid:c2", "", "", "", "duplicate of uuid:c1"],
    ]
    stored = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple/submissions/uuid:c1.xml",
        headers=world.admin_headers,
    )
    assert b"<age>340</age>" in stored.content
    book = await world.client.get(
        export_url(world, "submissions.xlsx?cleaned=true"), headers=world.admin_headers
    )
    sheets = openpyxl.load_workbook(io.BytesIO(book.content), read_only=True)
    assert sheets.sheetnames[-1] == "cleaning log"
    audits = await world.client.get(
        "/v1/audits?action=cleaning.create", headers=world.admin_headers
    )
    assert [a["details"]["entries"][0]["instanceId"] for a in audits.json()] == [
        "uuid:c2",
        "uuid:c1",
    ]

    deleted = await world.client.delete(
        log_url(world, f"/{entry['id']}"), headers=world.admin_headers
    )
    assert deleted.json() == {"success": True}
    again, _ = root_rows(
        await world.client.get(
            export_url(world, "submissions.csv.zip?cleaned=true"), headers=world.admin_headers
        )
    )
    assert again["uuid:c1"]["age"] == "340"
    listed = await world.client.get(log_url(world), headers=world.admin_headers)
    assert [e["instanceId"] for e in listed.json()] == ["uuid:c2"]


async def test_a_csv_upload_adds_all_entries_or_none(world: World) -> None:
    await create(world, "uuid:u1", name="Ben", age=7)
    await create(world, "uuid:u2", name="Ana", age=8)
    good = (
        "instanceId,field,oldValue,newValue,reason\n"
        "uuid:u1,/name,Ben,Beni,spelling\nuuid:u2,/age,,9,register\n"
    )
    stale = "instanceId,field,oldValue,newValue,reason\nuuid:u1,/age,7,6,x\nuuid:u2,/age,99,9,x\n"
    unknown = "instanceId,field,newValue,reason\nuuid:nope,/age,1,x\n"
    nofield = "instanceId,field,newValue,reason\nuuid:u1,/weight,1,x\n"

    async def upload(text: str) -> httpx.Response:
        return await world.client.post(
            log_url(world, ".csv"),
            content=text.encode(),
            headers=world.admin_headers | {"Content-Type": "text/csv"},
        )

    created = await upload(good)
    conflict = await upload(stale)
    missing = await upload(unknown)
    bad_field = await upload(nofield)
    bad_csv = await upload("instanceId,field\n")

    assert created.status_code == 200, created.text
    assert [(e["field"], e["oldValue"], e["newValue"], e["source"]) for e in created.json()] == [
        ("/name", "Ben", "Beni", "upload"),
        ("/age", "8", "9", "upload"),
    ]
    assert conflict.status_code == 409
    assert conflict.json()["details"]["stored"] == "8"
    assert missing.status_code == 400
    assert "uuid:nope" in missing.json()["message"]
    assert bad_field.status_code == 400
    assert "/weight" in bad_field.json()["message"]
    assert bad_csv.status_code == 400
    assert "lacks" in bad_csv.json()["message"]
    listed = await world.client.get(log_url(world), headers=world.admin_headers)
    assert len(listed.json()) == 2  # nothing of the refused uploads was kept
    download = await world.client.get(log_url(world, ".csv"), headers=world.admin_headers)
    assert download.headers["content-type"].startswith("text/csv")
    assert ",uuid:u1,/name,Ben,Beni,spelling," in download.text.splitlines()[1]
    assert download.text.count("\n") == 3


async def test_viewers_read_the_log_and_only_managers_write_it(world: World) -> None:
    await create(world, "uuid:r1", age=5)
    viewer = await member(world, "viewer", "viewer@example.org")
    manager = await member(world, "manager", "manager@example.org")
    entry = {"instanceId": "uuid:r1", "field": "/age", "newValue": "6", "reason": "x"}

    by_viewer = await world.client.post(log_url(world), json=entry, headers=viewer)
    by_manager = await world.client.post(log_url(world), json=entry, headers=manager)
    read = await world.client.get(log_url(world), headers=viewer)
    delete_by_viewer = await world.client.delete(
        log_url(world, f"/{by_manager.json()['id']}"), headers=viewer
    )
    anonymous = await world.client.get(log_url(world))

    assert by_viewer.status_code == 403
    assert by_manager.status_code == 200, by_manager.text
    assert [e["newValue"] for e in read.json()] == ["6"]
    assert delete_by_viewer.status_code == 403
    assert anonymous.status_code in (401, 403)


async def test_edits_through_the_submission_api_show_in_the_log(world: World) -> None:
    await create(world, "uuid:e1", name="Dua", age=20)
    edited = await world.client.put(
        f"/v1/projects/{world.project_id}/forms/simple/submissions/uuid:e1",
        content=submission_xml("uuid:e1-v2", name="Dua", age=21, deprecated_id="uuid:e1"),
        headers=world.admin_headers | XML,
    )
    assert edited.status_code == 200, edited.text
    await world.client.post(
        log_url(world),
        json={"instanceId": "uuid:e1", "field": "/age", "newValue": "22", "reason": "register"},
        headers=world.admin_headers,
    )

    listed = (await world.client.get(log_url(world), headers=world.admin_headers)).json()
    without = (
        await world.client.get(log_url(world, "?edits=false"), headers=world.admin_headers)
    ).json()
    cleaned, log = root_rows(
        await world.client.get(
            export_url(world, "submissions.csv.zip?cleaned=true"), headers=world.admin_headers
        )
    )

    assert [
        (e["source"], e["field"], e["oldValue"], e["newValue"], e["reason"]) for e in listed
    ] == [
        ("edit", "/age", "20", "21", "edited submission"),
        ("manual", "/age", "21", "22", "register"),
    ]
    assert listed[0]["id"] is None
    assert [e["source"] for e in without] == ["manual"]
    assert cleaned["uuid:e1"]["age"] == "22"
    assert [row[8] for row in log[1:]] == ["edit", "manual"]


BAD_ENTRIES = [
    ({"field": "/photo[1]", "newValue": "1", "reason": "x"}, 400),
    ({"field": "/meta", "newValue": "1", "reason": "x"}, 400),
    ({"field": "/age", "newValue": "1", "reason": " "}, 400),
    ({"field": "/age", "newValue": "1", "reason": "x", "source": "me"}, 400),
    ({"field": "/age", "newValue": "1", "reason": "x", "oldValue": "2"}, 409),
]


async def test_bad_entries_are_refused_in_plain_words(world: World) -> None:
    await create(world, "uuid:x1", age=30)

    for body, status in BAD_ENTRIES:
        response = await world.client.post(
            log_url(world), json={"instanceId": "uuid:x1", **body}, headers=world.admin_headers
        )
        assert response.status_code == status, (body, response.text)
        assert response.json()["message"]
    listed = await world.client.get(log_url(world), headers=world.admin_headers)
    assert listed.json() == []


async def test_checks_suggest_entries_that_can_be_accepted_into_the_log(world: World) -> None:
    names = ["Arta", "Besa", "Dua", "Genc", "Ilir", "Jeta", "Lira", "Mira", "Qeni"]
    for n, name in enumerate(names):
        await create(world, f"uuid:k{n}", name=f"{name} Hoxha", age=30 + n)
    await create(world, "uuid:k-late", name="arta  hoxha", age=3000)
    url = f"/v1/projects/{world.project_id}/forms/simple/cleaning-checks"
    settings = {"checks": ["duplicate", "outlier"], "duplicateFields": ["name"]}
    viewer = await member(world, "viewer", "viewer2@example.org")

    report = await world.client.post(url, json=settings, headers=world.admin_headers)
    refused = await world.client.post(url, json=settings, headers=viewer)
    unknown = await world.client.post(url, json={"checks": ["magic"]}, headers=world.admin_headers)
    bad = await world.client.post(url, json={"minMinutes": "x"}, headers=world.admin_headers)

    assert report.status_code == 200, report.text
    body = report.json()
    assert body["checked"] == 10
    found = {(s["check"], s["instanceId"], s["field"]) for s in body["suggestions"]}
    assert found == {("duplicate", "uuid:k-late", None), ("outlier", "uuid:k-late", "/age")}
    assert refused.status_code == 403
    assert unknown.status_code == 400
    assert bad.status_code == 400

    outlier = next(s for s in body["suggestions"] if s["check"] == "outlier")
    accepted = await world.client.post(
        log_url(world),
        json={
            "instanceId": outlier["instanceId"],
            "field": outlier["field"],
            "oldValue": outlier["value"],
            "newValue": "30",
            "reason": outlier["reason"],
            "source": "check:outlier",
        },
        headers=world.admin_headers,
    )
    assert accepted.status_code == 200, accepted.text
    again = await world.client.post(url, json=settings, headers=world.admin_headers)
    assert [s["check"] for s in again.json()["suggestions"]] == ["duplicate"]


async def test_the_check_command_prints_the_suggestions_for_cron(
    world: World, settings: Settings
) -> None:
    await create(world, "uuid:m1", name="Vjosa Thaci", age=30)
    await create(world, "uuid:m2", name="vjosa thaci", age=31)
    args = ("check", "--project", str(world.project_id), "--form", "simple")

    done = run_cli(settings, *args, "--checks", "duplicate,outlier")
    later = run_cli(settings, *args, "--since", "2999-01-01T00:00:00Z")
    bad = run_cli(settings, *args, "--checks", "magic")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["checked"] == 2
    assert report["notEvaluated"][0]["check"] == "duplicate"  # no personal fields to compare
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["suggestions"] == []
    assert bad.returncode != 0
    assert "magic" in bad.stderr


async def test_viewers_see_personal_answers_in_the_log_only_as_pseudonyms(world: World) -> None:
    await intake_world(world)
    url = f"/v1/projects/{world.project_id}/forms/intake/cleaning-log"
    entry = {"instanceId": "uuid:i-1", "field": "/full_name", "newValue": "Arta Hoxhaj"}
    added = await world.client.post(
        url, json=entry | {"reason": "ID card"}, headers=world.admin_headers
    )
    assert added.status_code == 200, added.text
    as_viewer = await viewer(world)

    managers = (await world.client.get(url, headers=world.admin_headers)).json()
    viewers = (await world.client.get(url, headers=as_viewer)).json()
    cleaned = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/intake/submissions.csv.zip?cleaned=true",
        headers=as_viewer,
    )

    assert (managers[0]["oldValue"], managers[0]["newValue"]) == ("Arta Hoxha", "Arta Hoxhaj")
    assert viewers[0]["oldValue"] not in ("Arta Hoxha", None)
    assert viewers[0]["newValue"] not in ("Arta Hoxhaj", None)
    with zipfile.ZipFile(io.BytesIO(cleaned.content)) as archive:
        text = archive.read("cleaning-log.csv").decode() + archive.read("intake.csv").decode()
    assert "Arta" not in text
    assert viewers[0]["newValue"] in text  # the same pseudonym as the export's column
