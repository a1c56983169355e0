"""The office's journey in a real browser, against a live server (issue 13).

One headless Chromium session: sign in, create a project, upload a broken XLSForm
and read its error with the row, upload a good one, test its draft in ODK Web Forms
and publish it, create an app user and see its QR code, fill the form in Web Forms
with a photo and take another submission from a phone, find both in the table with
their thumbnails, review one, download the CSV zip and read it; then a
data collector is refused the admin pages and their API calls. axe-core checks each
page on the way. Elements are found by role and accessible name only.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import openpyxl
import pytest
from playwright.async_api import FilePayload, Page, async_playwright, expect

from server.settings import Settings
from tests.e2e.collect import png_1x1
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.web.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    serious_accessibility_violations,
    slowly,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
COLLECTOR_EMAIL = "collector@example.org"
COLLECTOR_PASSWORD = "a collector's password"


# Tiles from the server's own address (as an office proxy would serve them): the map
# must ask for them, and nothing may be asked of any other host.
TILES = "/tiles/{z}/{x}/{y}.png"


@pytest.fixture
def server_extra_env() -> dict[str, str]:
    return {"HOMEWARD_MAP_TILE_URL": TILES}


def xlsform(survey: Sequence[tuple[str, ...]], choices: Sequence[tuple[str, ...]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    choice_sheet = workbook.create_sheet("choices")
    for row in choices:
        choice_sheet.append(row)
    settings = workbook.create_sheet("settings")
    settings.append(("form_id", "form_title", "version"))
    settings.append(("household_visit", "Household visit", "1"))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


CHOICES = [
    ("list_name", "name", "label"),
    ("gender", "female", "Female"),
    ("gender", "male", "Male"),
]
# Row 3 of the survey sheet names a list that does not exist.
BROKEN = xlsform(
    [
        ("type", "name", "label"),
        ("text", "municipality", "Municipality"),
        ("select_one gendr", "gender", "Gender"),
    ],
    CHOICES,
)
GOOD = xlsform(
    [
        ("type", "name", "label"),
        ("text", "municipality", "Municipality"),
        ("select_one gender", "gender", "Gender"),
        ("image", "photo", "Photo of the house"),
        ("geopoint", "location", "Location"),
    ],
    CHOICES,
)


def xlsx_file(data: bytes) -> FilePayload:
    return {"name": "household_visit.xlsx", "mimeType": XLSX, "buffer": data}


def submission_xml(instance_id: str) -> bytes:
    return (
        '<?xml version="1.0"?><data id="household_visit" version="1">'
        "<municipality>Tirana</municipality><gender>female</gender>"
        "<photo>front.png</photo><location>41.3275 19.8187 110 5</location>"
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


async def assert_accessible(page: Page, where: str) -> None:
    violations = await serious_accessibility_violations(page)
    assert not violations, f"{where}: {violations}"


async def image_loaded(page: Page, name: str) -> bool:
    image = page.get_by_role("img", name=name)
    await expect(image).to_be_visible()
    width: int = await image.evaluate(
        """(img) => img.complete ? img.naturalWidth : new Promise((done) => {
            img.addEventListener('load', () => done(img.naturalWidth));
            img.addEventListener('error', () => done(0));
        })"""
    )
    return width > 0


async def sign_in(page: Page, base: str, email: str, password: str) -> None:
    await page.goto(base + "/")
    await expect(page.get_by_role("heading", name="Sign in to Homeward")).to_be_visible()
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()


async def test_office_journey_in_the_browser(
    live_server: str, settings: Settings, tmp_path: Path
) -> None:
    base = live_server
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(accept_downloads=True)
            page = await context.new_page()
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            await page.goto(base + "/")
            await expect(page.get_by_role("heading", name="Sign in to Homeward")).to_be_visible()
            await assert_accessible(page, "sign-in page")
            await sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
            cookie = next(c for c in await context.cookies() if c["name"] == "homeward_session")
            assert cookie["httpOnly"]
            assert cookie["sameSite"] == "Strict"
            await assert_accessible(page, "project list")

            # A project.
            await page.get_by_label("Name of the new project").fill("Returns 2026")
            await page.get_by_role("button", name="Create project").click()
            await expect(page.get_by_role("heading", name="Returns 2026")).to_be_visible()
            project_id = int(re.findall(r"/projects/(\d+)", page.url)[0])
            await assert_accessible(page, "project forms")

            # A broken XLSForm: the error names the list and its row.
            upload = page.get_by_label("Choose an XLSForm to upload")
            await upload.set_input_files(files=xlsx_file(BROKEN))
            alert = page.get_by_role("alert")
            await expect(alert).to_contain_text("gendr")
            await expect(alert).to_contain_text(re.compile(r"row\W*3", re.IGNORECASE))
            await assert_accessible(page, "form upload error")

            # A good one: its warning (row 4's photo has no max-pixels) is read and
            # accepted; then its draft is published.
            await upload.set_input_files(files=xlsx_file(GOOD))
            await expect(alert).to_contain_text("max-pixels")
            await page.get_by_role("button", name="Accept the warnings and upload").click()
            await expect(page.get_by_role("heading", name="Household visit")).to_be_visible()

            # The draft is tried in the browser first (ODK Web Forms): that test
            # submission goes to the draft's own path and never joins the real ones.
            await page.get_by_role("link", name="Test the draft in the browser").click()
            await page.get_by_role("textbox", name="Municipality").fill("Draft trial")
            await page.get_by_role("button", name="Send").click()
            await expect(page.get_by_role("status")).to_have_text("The test submission was sent.")
            await page.get_by_role("link", name="Back to the form").click()
            await page.get_by_role("button", name="Publish draft").click()
            await expect(page.get_by_role("status")).to_have_text("The draft was published.")
            await expect(page.get_by_role("cell", name="1", exact=True)).to_be_visible()
            await assert_accessible(page, "form overview")
            # Closing the form is kept (read again after a reload), then undone.
            accepting = page.get_by_label("Accepting submissions")
            await accepting.select_option("closing")
            await expect(page.get_by_role("status")).to_have_text("The form's state was changed.")
            await page.reload()
            await expect(accepting).to_have_value("closing")
            await accepting.select_option("open")
            await expect(page.get_by_role("status")).to_have_text("The form's state was changed.")
            await expect(accepting).to_have_value("open")

            # The field team: an app user, its QR code, its form.
            await page.get_by_role("link", name="Back to the project").click()
            await page.get_by_role("link", name="Field team").click()
            await page.get_by_label("Name of the new app user").fill("Ana's phone")
            await page.get_by_role("button", name="Create app user").click()
            qr_name = "QR code to set up ODK Collect for Ana's phone"
            assert await image_loaded(page, qr_name)
            await expect(page.get_by_role("alert")).to_contain_text("only works on this computer")
            # Saving a form's access waits (slowed here), and the switches with it.
            assignments = re.compile(r".*/v1/projects/\d+/(forms/[^/]+/)?assignments/.*")
            await page.route(assignments, slowly)
            may_fill = page.get_by_role("checkbox", name="Household visit")
            await may_fill.check()
            await expect(may_fill).to_be_disabled()
            await expect(may_fill).to_be_enabled()
            await expect(may_fill).to_be_checked()
            await page.unroute(assignments, slowly)
            await assert_accessible(page, "field team")
            listed = await page.request.get(f"{base}/v1/projects/{project_id}/app-users")
            token = (await listed.json())[0]["token"]

            # A counsellor fills the form at the desk, with a photo, in Web Forms.
            await page.get_by_role("link", name="Forms").click()
            await page.get_by_role("link", name="Household visit").click()
            await page.get_by_role("link", name="Fill in this form").click()
            await page.get_by_role("textbox", name="Municipality").fill("Durrës")
            # One level-1 heading, the form's title from Web Forms (not the app's too).
            await expect(page.get_by_role("heading", level=1)).to_have_text(["Household visit"])
            await assert_accessible(page, "Web Forms")
            await page.get_by_role("radio", name="Female").check()
            async with page.expect_file_chooser() as chooser:
                await page.get_by_role("button", name="Choose image").click()
            await (await chooser.value).set_files(
                files={
                    "name": "desk.png",
                    "mimeType": "image/png",
                    "buffer": png_1x1(b"\x20\x40\xa0"),
                }
            )
            await page.get_by_role("button", name="Send").click()
            await expect(page.get_by_role("status")).to_have_text("The submission was sent.")

            # A phone sends one with a photo, as Collect does.
            instance_id = f"uuid:{uuid.uuid4()}"
            async with httpx.AsyncClient(timeout=30) as phone:
                sent = await phone.post(
                    f"{base}/v1/key/{token}/projects/{project_id}/submission",
                    files=[
                        (
                            "xml_submission_file",
                            ("visit.xml", submission_xml(instance_id), "text/xml"),
                        ),
                        ("front.png", ("front.png", png_1x1(b"\x10\x80\x40"), "image/png")),
                    ],
                    headers={"X-OpenRosa-Version": "1.0"},
                )
            assert sent.status_code == 201, sent.text

            # The table shows it, with the photo's thumbnail.
            await page.get_by_role("link", name="Back to the form").click()
            await page.get_by_role("link", name="Submissions").click()
            await expect(page.get_by_role("status")).to_have_text("2 submissions")
            assert await image_loaded(page, "Photo front.png (photo); opens full size")
            from_the_desk = page.get_by_role("row").filter(has_text="Durrës")
            desk_photo = from_the_desk.get_by_role("img", name=re.compile(r"^Photo .+\(photo\)"))
            await expect(desk_photo).to_be_visible()
            assert await desk_photo.evaluate("(img) => img.decode().then(() => img.naturalWidth)")
            await expect(page.get_by_role("cell", name="Tirana")).to_be_visible()
            await assert_accessible(page, "submission table")

            # Its detail: review it, with a comment.
            from_the_phone = page.get_by_role("row").filter(has_text="Tirana")
            await from_the_phone.get_by_role("link").first.click()
            await expect(page.get_by_role("heading", name="Submission", exact=True)).to_be_visible()
            await page.get_by_label("New review state").select_option("approved")
            await page.get_by_label("Comment (optional)").fill("Checked at the desk")
            await page.get_by_role("button", name="Save review").click()
            await expect(page.get_by_role("status")).to_have_text("The review was saved.")
            await expect(
                page.get_by_role("listitem").filter(has_text="Checked at the desk")
            ).to_be_visible()
            await assert_accessible(page, "submission detail")

            # The map shows the point without any tile server.
            await page.get_by_role("link", name="Back to the submissions").click()
            await page.get_by_role("link", name="Map").click()
            await expect(page.get_by_role("img", name="Map of 1 location")).to_be_visible()
            await expect(page.get_by_role("link", name="41.32750, 19.81870")).to_be_visible()
            await page.wait_for_load_state("networkidle")
            assert any(re.search(r"/tiles/\d+/\d+/\d+\.png$", url) for url in asked)
            await assert_accessible(page, "map")

            # The CSV zip, downloaded through the page.
            await page.get_by_role("link", name="Export").click()
            await assert_accessible(page, "export")
            async with page.expect_download() as download_info:
                await page.get_by_role("button", name="Download export").click()
            download = await download_info.value
            saved = tmp_path / "export.zip"
            await download.save_as(saved)
            with zipfile.ZipFile(saved) as archive:
                assert "household_visit.csv" in archive.namelist()
                table = archive.read("household_visit.csv").decode("utf-8-sig")
            header, *rows = table.splitlines()
            assert "municipality" in header
            assert len(rows) == 2  # the draft's test submission is not among them
            (phone_row,) = [r for r in rows if instance_id in r]
            assert "Tirana" in phone_row
            assert "approved" in phone_row
            (desk_row,) = [r for r in rows if r is not phone_row]
            assert "Durrës" in desk_row
            assert ".png" in desk_row

            # The project is renamed, and a colleague gets an account and is made its
            # data collector, all in the browser.
            await page.goto(f"{base}/projects/{project_id}/settings")
            await page.get_by_label("Project name").fill("Returns 2026, Albania")
            await page.get_by_role("button", name="Rename project").click()
            await expect(page.get_by_role("heading", name="Returns 2026, Albania")).to_be_visible()
            await assert_accessible(page, "project settings")
            await page.get_by_role("link", name="Members").click()
            await page.get_by_label("Their e-mail address").fill(COLLECTOR_EMAIL)
            await page.get_by_label("A first password").fill(COLLECTOR_PASSWORD)
            await page.get_by_role("button", name="Create account").click()
            await expect(page.get_by_role("status")).to_have_text(
                f"{COLLECTOR_EMAIL} has an account. Choose their role and add them."
            )
            await page.get_by_label("Person").select_option(
                label=f"{COLLECTOR_EMAIL} ({COLLECTOR_EMAIL})"
            )
            await page.get_by_label("Role").select_option(label="Data collector")
            await page.get_by_role("button", name="Add member").click()
            await expect(
                page.get_by_role("button", name=f"Remove {COLLECTOR_EMAIL} from this project")
            ).to_be_visible()
            await assert_accessible(page, "project members")

            # Every script, style, image and call went to Homeward itself (and, on S3,
            # photos to the deployment's own bucket, by a presigned redirect).
            ours = {base.split("/")[2]}
            if settings.storage_url.startswith("s3://"):
                ours.add(parse_qs(urlsplit(settings.storage_url).query)["endpoint"][0])
            assert asked
            assert {url.split("/")[2] for url in asked} <= ours

            await page.get_by_role("button", name="Sign out").click()
            await expect(page.get_by_role("heading", name="Sign in to Homeward")).to_be_visible()
            gone = await page.request.get(f"{base}/v1/users/current")
            assert gone.status == 401

            # A data collector is refused the admin pages and their API calls.
            collector = await browser.new_context()
            collector_page = await collector.new_page()
            await sign_in(collector_page, base, COLLECTOR_EMAIL, COLLECTOR_PASSWORD)
            await collector_page.goto(f"{base}/projects/{project_id}/app-users")
            await expect(collector_page.get_by_role("alert")).to_contain_text(
                "You are not allowed to see or do this."
            )
            await expect(collector_page.get_by_role("img", name=qr_name)).to_have_count(0)
            for path in ("app-users", "assignments", "app-users/1/qr.png"):
                refused = await collector_page.request.get(
                    f"{base}/v1/projects/{project_id}/{path}"
                )
                assert refused.status == 403, path
            # As in Central, the user list is empty for those who may not list users.
            users = await collector_page.request.get(f"{base}/v1/users")
            assert await users.json() == []
            session = await collector_page.request.get(f"{base}/v1/web/session")
            csrf = (await session.json())["csrf"]
            forged = await collector_page.request.post(
                f"{base}/v1/projects/{project_id}/app-users",
                data={"displayName": "Mallory"},
                headers={"X-CSRF-Token": csrf},
            )
            assert forged.status == 403
            await collector.close()
            await context.close()
        finally:
            await browser.close()
