"""``make screenshots``: the web app's main pages as PNG files in docs/screenshots/.

Seeds a throw-away server (SQLite, a temporary folder) with a project, a published
form, an app user and two submissions with photos, then photographs each page in
headless Chromium at a tablet-and-desktop friendly 1280x900.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

from server.runtime import close_runtime, open_runtime
from server.services import accounts
from server.settings import Settings
from tests.e2e.collect import png_1x1
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, running_server
from tests.e2e.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.web.case_list_shots import shoot_case_lists
from tests.e2e.web.test_office_journey import GOOD, XLSX

OUT = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def visit(instance_id: str, municipality: str, photo: str, where: str) -> bytes:
    return (
        '<?xml version="1.0"?><data id="household_visit" version="1">'
        f"<municipality>{municipality}</municipality><gender>female</gender>"
        f"<photo>{photo}</photo><location>{where}</location>"
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


async def seed(base: str) -> tuple[int, str]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
        signed = await admin.post(
            "/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        admin.headers["Authorization"] = f"Bearer {signed.json()['token']}"
        project = (await admin.post("/v1/projects", json={"name": "Returns 2026"})).json()
        pid = project["id"]
        await admin.post(
            f"/v1/projects/{pid}/forms?publish=true&ignoreWarnings=true",
            content=GOOD,
            headers={"Content-Type": XLSX},
        )
        user = (
            await admin.post(f"/v1/projects/{pid}/app-users", json={"displayName": "Ana's phone"})
        ).json()
        await admin.post(
            f"/v1/projects/{pid}/forms/household_visit/assignments/app-user/{user['id']}"
        )
        key = f"/v1/key/{user['token']}/projects/{pid}/submission"
        for town, colour, where in (
            ("Tirana", b"\x10\x80\x40", "41.3275 19.8187 110 5"),
            ("Shkodër", b"\x80\x20\x20", "42.0683 19.5126 13 5"),
        ):
            photo = f"{uuid.uuid4().hex[:8]}.png"
            sent = await admin.post(
                key,
                files=[
                    (
                        "xml_submission_file",
                        ("v.xml", visit(f"uuid:{uuid.uuid4()}", town, photo, where), "text/xml"),
                    ),
                    (photo, (photo, png_1x1(colour), "image/png")),
                ],
                headers={"X-OpenRosa-Version": "1.0"},
            )
            assert sent.status_code == 201, sent.text
    return pid, "household_visit"


async def shoot(page: Page, base: str, path: str, name: str) -> None:
    await page.goto(base + path)
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"docs/screenshots/{name}.png")


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), secret_key=secrets.token_urlsafe(32))
        runtime = await open_runtime(settings)
        try:
            async with runtime.transaction() as db:
                actor, _ = await accounts.create_user(
                    db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD
                )
                await accounts.promote_to_admin(db, actor.id, by=None)
        finally:
            await close_runtime(runtime)
        with running_server(settings, Path(folder) / "serve.log") as base:
            pid, form = await seed(base)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await shoot(page, base, "/login", "sign-in")
                await page.get_by_label("E-mail address").fill(ADMIN_EMAIL)
                await page.get_by_label("Password").fill(ADMIN_PASSWORD)
                await page.get_by_role("button", name="Sign in").click()
                await page.get_by_role("heading", name="Projects", level=1).wait_for()
                await shoot(page, base, "/projects", "projects")
                await shoot(page, base, f"/projects/{pid}/forms", "project-forms")
                await page.goto(f"{base}/projects/{pid}/app-users")
                await page.get_by_role("button", name="Show QR code for Ana's phone").click()
                await page.wait_for_load_state("networkidle")
                await page.screenshot(path=str(OUT / "field-team-qr.png"), full_page=True)
                print("docs/screenshots/field-team-qr.png")
                form_path = f"/projects/{pid}/forms/{form}"
                await shoot(page, base, form_path, "form-overview")
                await shoot(page, base, f"{form_path}/submissions", "submissions")
                await page.get_by_role("row").nth(1).get_by_role("link").first.click()
                await page.get_by_role("heading", name="Submission", exact=True).wait_for()
                await page.wait_for_load_state("networkidle")
                await page.screenshot(path=str(OUT / "submission.png"), full_page=True)
                print("docs/screenshots/submission.png")
                await shoot(page, base, f"{form_path}/map", "map")
                await page.goto(f"{base}{form_path}/fill")
                await page.get_by_role("button", name="Send").wait_for()
                await page.get_by_role("textbox", name="Municipality").fill("Durrës")
                await page.screenshot(path=str(OUT / "fill.png"), full_page=True)
                print("docs/screenshots/fill.png")
                await shoot(page, base, f"{form_path}/export", "export")
                # An export job, done, with its progress bar and its file's link.
                await page.get_by_role("button", name="Download export").click()
                await page.get_by_role("link", name=f"Download {form}.csv.zip").wait_for()
                await page.screenshot(path=str(OUT / "export-job.png"), full_page=True)
                print("docs/screenshots/export-job.png")
                # The submissions narrowed by an answer.
                await page.goto(f"{base}{form_path}/submissions")
                await page.get_by_label("Field to filter by").select_option("municipality")
                await page.get_by_label("Condition").select_option("contains")
                await page.get_by_label("Value").fill("tiran")
                await page.get_by_role("button", name="Apply filters").click()
                await page.get_by_role("status").filter(has_text="1 submission").wait_for()
                await page.screenshot(path=str(OUT / "submissions-filtered.png"), full_page=True)
                print("docs/screenshots/submissions-filtered.png")
                # The cleaning log: an entry made in the page, and the checks run.
                listed = await page.request.get(
                    f"{base}/v1/projects/{pid}/forms/{form}.svc/Submissions?$top=1"
                )
                first = (await listed.json())["value"][0]["__id"]
                await page.goto(f"{base}{form_path}/cleaning")
                await page.get_by_label("Submission", exact=True).fill(first)
                await page.get_by_label("Answer to clean").select_option("/municipality")
                await page.get_by_label("New value", exact=True).fill("Tiranë")
                await page.get_by_label("Reason", exact=True).fill("Spelling as in the register")
                await page.get_by_role("button", name="Add entry").click()
                await page.get_by_role("status").wait_for()
                await page.get_by_role("button", name="Run the checks").click()
                await page.get_by_role("status").filter(has_text="checked").wait_for()
                await page.screenshot(path=str(OUT / "cleaning-log.png"), full_page=True)
                print("docs/screenshots/cleaning-log.png")
                case_pages = await shoot_case_lists(page, base, shoot)
                # The other shipped languages, chosen as the language menu does.
                for code in ("sq", "sr"):
                    await page.evaluate(f"localStorage.setItem('homeward.locale', '{code}')")
                    for path, name in (
                        ("/projects", "projects"),
                        (f"/projects/{pid}/app-users", "field-team"),
                        (f"{form_path}/submissions", "submissions"),
                        (f"{form_path}/export", "export"),
                        (f"{form_path}/cleaning", "cleaning-log"),
                        (f"{form_path}/fill", "fill"),
                        *case_pages,
                    ):
                        (OUT / code).mkdir(exist_ok=True)
                        await shoot(page, base, path, f"{code}/{name}")
                await browser.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
