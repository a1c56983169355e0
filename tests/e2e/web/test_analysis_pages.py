"""The analyst's pages in a real browser, against a live server (issues 13 and 14).

Submissions filtered by an answer on the server; an export run as a job with its
progress bar and download; the cleaning log kept in the page and applied to a
cleaned export. Elements are found by role and accessible name only, and
axe-core checks each page.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright, expect

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.web.test_office_journey import XLSX, assert_accessible, sign_in, xlsform

FORM = "household_visit"  # the id xlsform() gives
VISIT_FORM = xlsform(
    [
        ("type", "name", "label", "relevant"),
        ("start", "start", "", ""),
        ("end", "end", "", ""),
        ("text", "municipality", "Municipality", ""),
        ("select_one gender", "gender", "Gender", ""),
        ("text", "gender_other", "Gender, other", "${gender} = 'other'"),
    ],
    [
        ("list_name", "name", "label"),
        ("gender", "female", "Female"),
        ("gender", "male", "Male"),
        ("gender", "other", "Other"),
    ],
)
# municipality, gender, "other" gender, minutes the interview took. Two visits are in
# Tirana; the third's "other" is a listed choice, the fourth took two minutes: the
# checks suggest cleaning both.
VISITS = [
    ("Tirana", "female", "", 30),
    ("Durrës", "male", "", 25),
    ("Tirana", "other", "Female", 20),
    ("Shkodër", "female", "", 2),
]


def visit_xml(instance_id: str, municipality: str, gender: str, other: str, minutes: int) -> bytes:
    return (
        f'<?xml version="1.0"?><data id="{FORM}" version="1">'
        f"<start>2026-11-02T09:00:00.000+01:00</start>"
        f"<end>2026-11-02T09:{minutes:02d}:00.000+01:00</end>"
        f"<municipality>{municipality}</municipality><gender>{gender}</gender>"
        f"<gender_other>{other}</gender_other>"
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


@asynccontextmanager
async def signed_in_admin(base: str) -> AsyncIterator[httpx.AsyncClient]:
    """An API client with the administrator's bearer token."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
        signed = await admin.post(
            "/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        admin.headers["Authorization"] = f"Bearer {signed.json()['token']}"
        yield admin


async def seed(base: str) -> tuple[int, list[str]]:
    """A project with the household form and four visits; the project id and visit ids."""
    async with signed_in_admin(base) as admin:
        project = (await admin.post("/v1/projects", json={"name": "Analysis"})).json()
        pid = project["id"]
        published = await admin.post(
            f"/v1/projects/{pid}/forms?publish=true&ignoreWarnings=true",
            content=VISIT_FORM,
            headers={"Content-Type": XLSX},
        )
        assert published.status_code == 200, published.text
        ids = []
        for visit in VISITS:
            instance_id = f"uuid:{uuid.uuid4()}"
            sent = await admin.post(
                f"/v1/projects/{pid}/forms/{FORM}/submissions",
                content=visit_xml(instance_id, *visit),
                headers={"Content-Type": "application/xml"},
            )
            assert sent.status_code == 200, sent.text
            ids.append(instance_id)
    return pid, ids


async def filter_by_an_answer(page: Page, base: str, pid: int) -> None:
    await page.goto(f"{base}/projects/{pid}/forms/{FORM}/submissions")
    await expect(page.get_by_role("status")).to_have_text("4 submissions")
    await page.get_by_label("Field to filter by").select_option("municipality")
    await page.get_by_label("Condition").select_option(label="is")
    await page.get_by_label("Value").fill("Tirana")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_role("status")).to_have_text("2 submissions")
    await expect(page.get_by_role("cell", name="Durrës")).to_have_count(0)
    await expect(page.get_by_role("cell", name="Tirana")).to_have_count(2)
    # With the other filters: Tirana and male.
    await page.get_by_label("Field to filter by").select_option("gender")
    await page.get_by_label("Condition").select_option(label="is not")
    await page.get_by_label("Value").fill("female")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_role("status")).to_have_text("2 submissions")
    await expect(page.get_by_role("cell", name="Durrës")).to_have_count(1)
    await assert_accessible(page, "submissions filtered by an answer")


async def export_as_a_job(page: Page, base: str, pid: int, saved: Path) -> None:
    """An export job: its progress bar, then the CSV zip downloaded by itself."""
    await page.goto(f"{base}/projects/{pid}/forms/{FORM}/export")
    await expect(page.get_by_role("heading", name="Export submissions")).to_be_visible()
    await page.get_by_label("File format").select_option("csv.zip")
    await page.get_by_label("Choices as").select_option(label="labels")
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download export").click()
        progress = page.get_by_role("progressbar", name="Export progress")
        await expect(progress).to_be_visible()
    download = await download_info.value
    await expect(progress).to_have_attribute("aria-valuenow", "100")
    await expect(progress).to_have_attribute("aria-valuetext", "4 of 4 submissions written")
    await expect(page.get_by_role("link", name=f"Download {FORM}.csv.zip")).to_be_visible()
    await assert_accessible(page, "export job done")
    assert download.suggested_filename == f"{FORM}.csv.zip"
    await download.save_as(saved)


def read_zip_table(saved: Path) -> list[dict[str, str]]:
    with zipfile.ZipFile(saved) as archive:
        text = archive.read(f"{FORM}.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


async def keep_a_cleaning_log(page: Page, base: str, pid: int, ids: list[str], tmp: Path) -> None:
    """Entries by hand, deleted, from a CSV, from the checks; the log downloaded."""
    await page.goto(f"{base}/projects/{pid}/forms/{FORM}/submissions")
    await page.get_by_role("link", name="Cleaning log").click()
    await expect(page.get_by_role("heading", name="Cleaning log", level=2)).to_be_visible()
    await expect(page.get_by_text("The cleaning log has no entries yet.")).to_be_visible()
    status = page.get_by_role("status")
    log = page.get_by_role("region", name="Cleaning log entries")

    # By hand: one answer, then a whole submission (deleted again).
    await page.get_by_label("Submission", exact=True).fill(ids[0])
    await page.get_by_label("Answer to clean").select_option("/municipality")
    await page.get_by_label("New value", exact=True).fill("Tiranë")
    await page.get_by_label("Reason", exact=True).fill("Spelling as in the register")
    await page.get_by_role("button", name="Add entry").click()
    await expect(status).to_have_text("The entry was added.")
    entry = log.get_by_role("row").filter(has_text="Spelling as in the register")
    await expect(entry).to_contain_text("Tirana")
    await expect(entry).to_contain_text("Tiranë")
    await expect(entry).to_contain_text("/municipality")
    await page.get_by_label("Submission", exact=True).fill(ids[1])
    await page.get_by_label("Answer to clean").select_option(
        label="The whole submission (remove it from cleaned exports)"
    )
    await expect(page.get_by_label("New value", exact=True)).to_have_count(0)
    await page.get_by_label("Reason", exact=True).fill("Test interview")
    await page.get_by_role("button", name="Add entry").click()
    await expect(log.get_by_role("row").filter(has_text="Test interview")).to_have_count(1)
    await page.get_by_role(
        "button", name=f"Delete the entry for the whole submission of {ids[1]}"
    ).click()
    await expect(status).to_have_text("The entry was deleted.")
    await expect(log.get_by_role("row").filter(has_text="Test interview")).to_have_count(0)

    # From a CSV.
    upload = f"instanceId,field,newValue,reason\n{ids[1]},/municipality,Durrës Port,Office sheet\n"
    await page.get_by_label("Upload a cleaning log CSV").set_input_files(
        files={"name": "log.csv", "mimeType": "text/csv", "buffer": upload.encode()}
    )
    await expect(status).to_have_text("1 entries were added from the CSV.")
    await expect(log.get_by_role("row").filter(has_text="Durrës Port")).to_contain_text(
        "CSV upload"
    )

    # From the checks: the "other" that is a listed choice, the two-minute interview.
    await page.get_by_role("button", name="Run the checks").click()
    await expect(status).to_have_text(re.compile(r"^4 submissions checked; 2 suggestions\.$"))
    suggestions = page.get_by_role("region", name="Suggestions from the checks")
    await expect(suggestions.get_by_label(f"New value for /gender of {ids[2]}")).to_have_value(
        "female"
    )
    await page.get_by_role("button", name=f"Accept the suggestion for /gender of {ids[2]}").click()
    await expect(status).to_have_text("The suggestion was added to the cleaning log.")
    await page.get_by_role(
        "button", name=f"Accept the suggestion for the whole submission of {ids[3]}"
    ).click()
    await expect(suggestions.get_by_text("Accepted")).to_have_count(2)
    await expect(log.get_by_role("row").filter(has_text="check: duplicate")).to_have_count(0)
    await expect(log.get_by_role("row").filter(has_text=ids[3])).to_contain_text(
        "check: interview too short"
    )
    await expect(log.get_by_role("row")).to_have_count(5)  # the header and four entries
    # The findings of checks on new submissions appear only where the server keeps them.
    await expect(page.get_by_role("alert")).to_have_count(0)
    await assert_accessible(page, "cleaning log")

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download the cleaning log (CSV)").click()
    saved = tmp / "cleaning-log.csv"
    await (await download_info.value).save_as(saved)
    entries = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert [(e["instanceId"], e["field"], e["newValue"]) for e in entries] == [
        (ids[0], "/municipality", "Tiranë"),
        (ids[1], "/municipality", "Durrës Port"),
        (ids[2], "/gender", "female"),
        (ids[3], "", ""),
    ]


async def export_cleaned(page: Page, base: str, pid: int, ids: list[str], saved: Path) -> None:
    await page.get_by_role("link", name="Export").click()
    await page.get_by_label("Raw or cleaned data").select_option(
        label="cleaned (the cleaning log applied)"
    )
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download export").click()
    await (await download_info.value).save_as(saved)
    by_key = {row["KEY"]: row for row in read_zip_table(saved)}
    assert sorted(by_key) == sorted(ids[:3])  # the short interview is left out
    assert by_key[ids[0]]["municipality"] == "Tiranë"
    assert by_key[ids[1]]["municipality"] == "Durrës Port"
    assert by_key[ids[2]]["gender"] == "female"
    with zipfile.ZipFile(saved) as archive:
        assert "cleaning-log.csv" in archive.namelist()


async def see_entries_of_a_submission(page: Page, base: str, pid: int, instance_id: str) -> None:
    await page.goto(f"{base}/projects/{pid}/forms/{FORM}/submissions/{instance_id}")
    entries = page.get_by_role("region", name="Cleaning log of this submission")
    await expect(entries.get_by_role("cell", name="Tiranë")).to_be_visible()
    await expect(entries.get_by_role("cell", name="Spelling as in the register")).to_be_visible()
    await expect(page.get_by_role("heading", name="Edit history")).to_be_visible()
    await assert_accessible(page, "submission with its cleaning log")


async def test_analysis_pages_in_the_browser(live_server: str, tmp_path: Path) -> None:
    base = live_server
    pid, ids = await seed(base)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(accept_downloads=True)
            page = await context.new_page()
            await sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
            await filter_by_an_answer(page, base, pid)

            await export_as_a_job(page, base, pid, tmp_path / "export.zip")
            rows = read_zip_table(tmp_path / "export.zip")
            assert sorted(r["KEY"] for r in rows) == sorted(ids)
            assert sorted(r["municipality"] for r in rows) == sorted(v[0] for v in VISITS)
            assert {r["gender"] for r in rows} == {"Female", "Male", "Other"}  # labels, as asked

            await keep_a_cleaning_log(page, base, pid, ids, tmp_path)
            await export_cleaned(page, base, pid, ids, tmp_path / "cleaned.zip")
            await see_entries_of_a_submission(page, base, pid, ids[0])
            await context.close()
        finally:
            await browser.close()


VIEWER_EMAIL = "viewer@example.org"
VIEWER_PASSWORD = "viewer-password-1"


async def add_viewer(base: str, pid: int) -> None:
    async with signed_in_admin(base) as admin:
        user = await admin.post(
            "/v1/users", json={"email": VIEWER_EMAIL, "password": VIEWER_PASSWORD}
        )
        assert user.status_code == 200, user.text
        made = await admin.post(f"/v1/projects/{pid}/assignments/viewer/{user.json()['id']}")
        assert made.status_code == 200, made.text


async def decide_findings(page: Page, base: str, pid: int, ids: list[str]) -> None:
    """Run the stored checks now; accept one finding into the log, dismiss another."""
    await page.goto(f"{base}/projects/{pid}/forms/{FORM}/cleaning")
    await expect(page.get_by_role("heading", name="Findings on new submissions")).to_be_visible()
    status = page.get_by_role("status")
    await page.get_by_role("button", name="Check all submissions now").click()
    await expect(status).to_have_text(re.compile(r"^4 submissions checked; [0-2] new findings\.$"))
    # The form marks no answer personal: nothing says who a returnee is, and the page
    # says so in words, with the way to the settings that change it.
    await expect(
        page.get_by_text("Not checked — duplicate: No question identifies a returnee")
    ).to_be_visible()
    await expect(page.get_by_text("duplicateFields")).to_have_count(0)
    # Questions are offered by their labels wherever the page has them.
    picker = page.get_by_label("Answer to clean")
    await expect(
        picker.get_by_role("option", name="Municipality (municipality) — /municipality")
    ).to_have_count(1)
    findings = page.get_by_role("region", name="Findings on new submissions")
    await expect(findings.get_by_role("row")).to_have_count(3)  # the header and two findings
    await expect(
        findings.get_by_label(f"New value for the finding on /gender of {ids[2]}")
    ).to_have_value("female")
    await assert_accessible(page, "findings")

    await page.get_by_role("button", name=f"Accept the finding for /gender of {ids[2]}").click()
    await expect(status).to_have_text("The suggestion was added to the cleaning log.")
    log = page.get_by_role("region", name="Cleaning log entries")
    entry = log.get_by_role("row").filter(has_text=ids[2])
    await expect(entry).to_contain_text("check: “other” matching a choice")
    await expect(entry).to_contain_text("female")

    whole = f"the whole submission of {ids[3]}"
    dismiss = page.get_by_role("button", name=f"Dismiss the finding for {whole}")
    await expect(dismiss).to_be_disabled()  # not without a reason
    await page.get_by_label(f"Why dismiss the finding for {whole}").fill("A short call, done twice")
    await dismiss.click()
    await expect(status).to_have_text("The finding was dismissed.")
    await expect(page.get_by_text("No open findings.")).to_be_visible()
    await expect(log.get_by_role("row").filter(has_text=ids[3])).to_have_count(0)


async def change_check_settings(page: Page, ids: list[str]) -> None:
    """Municipality named as what identifies a returnee: the two Tirana visits are found."""
    status = page.get_by_role("status")
    await page.get_by_role("link", name="Change the check settings").first.click()
    settings = page.get_by_role("region", name="Check settings")
    await expect(settings.get_by_role("heading", name="Check settings")).to_be_focused()
    await expect(settings.get_by_text("These are the default settings.")).to_be_visible()
    identifying = settings.get_by_role("group", name="Questions that identify a returnee")
    await identifying.get_by_label("Municipality (municipality)").check()
    await expect(identifying.get_by_label("Gender (gender)")).not_to_be_checked()
    checks = settings.get_by_role("group", name="Checks to run")
    await checks.get_by_label("interview too short").uncheck()
    await settings.get_by_label("Shortest interview (minutes)").fill("10")
    await settings.get_by_role("button", name="Save the check settings").click()
    await expect(status).to_have_text("The check settings were saved.")
    await expect(settings.get_by_text("These settings are kept for this form.")).to_be_visible()
    await assert_accessible(page, "check settings")

    await page.reload()
    settings = page.get_by_role("region", name="Check settings")
    await expect(settings.get_by_label("Municipality (municipality)")).to_be_checked()
    await expect(settings.get_by_label("interview too short")).not_to_be_checked()
    await expect(settings.get_by_label("Shortest interview (minutes)")).to_have_value("10")
    await page.get_by_role("button", name="Check all submissions now").click()
    await expect(status).to_have_text("4 submissions checked; 1 new findings.")
    await expect(page.get_by_text(re.compile("^Not checked"))).to_have_count(0)
    await expect(
        page.get_by_role("button", name=f"Accept the finding for the whole submission of {ids[2]}")
    ).to_be_visible()  # the later of the two Tirana visits

    await settings.get_by_role("button", name="Back to the defaults").click()
    await expect(status).to_have_text("The check settings are back to the defaults.")
    await expect(settings.get_by_label("Municipality (municipality)")).not_to_be_checked()
    await expect(settings.get_by_label("interview too short")).to_be_checked()


async def viewer_sees_no_settings(page: Page, base: str, pid: int) -> None:
    await sign_in(page, base, VIEWER_EMAIL, VIEWER_PASSWORD)
    await page.goto(f"{base}/projects/{pid}/forms/{FORM}/cleaning")
    await expect(page.get_by_role("heading", name="Cleaning log", level=2)).to_be_visible()
    await expect(page.get_by_role("cell", name="female", exact=True)).to_be_visible()
    await expect(page.get_by_role("heading", name="Check settings")).to_have_count(0)
    await expect(page.get_by_role("button", name="Check all submissions now")).to_have_count(0)
    await expect(page.get_by_role("alert")).to_have_count(0)


async def test_findings_and_check_settings_in_the_browser(live_server: str) -> None:
    base = live_server
    pid, ids = await seed(base)
    await add_viewer(base, pid)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            await sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
            await decide_findings(page, base, pid, ids)
            await change_check_settings(page, ids)
            await context.close()
            viewer = await browser.new_context()
            await viewer_sees_no_settings(await viewer.new_page(), base, pid)
            await viewer.close()
        finally:
            await browser.close()
