"""The submissions table's field picker offers only fields the caller may filter by.

A viewer sees personal answers masked, and the server refuses filters on them
(403.1, tests/server/test_odata_field_filter.py): the picker must not offer them,
while an administrator, who reads them in clear, still gets them.
"""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, async_playwright, expect

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.web.test_office_journey import XLSX, assert_accessible, sign_in, xlsform

FORM = "household_visit"  # the id xlsform() gives
PERSONAL_FORM = xlsform(
    [
        ("type", "name", "label", "personal"),
        ("text", "municipality", "Municipality", ""),
        ("text", "full_name", "Full name", "yes"),
    ],
    [("list_name", "name", "label")],
)
VIEWER_EMAIL = "viewer@example.org"
VIEWER_PASSWORD = "a viewer's long password"


async def seed(base: str) -> int:
    """A project with the form, one submission, and a viewer; the project id."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
        signed = await admin.post(
            "/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        admin.headers["Authorization"] = f"Bearer {signed.json()['token']}"
        pid = (await admin.post("/v1/projects", json={"name": "Picker"})).json()["id"]
        published = await admin.post(
            f"/v1/projects/{pid}/forms?publish=true&ignoreWarnings=true",
            content=PERSONAL_FORM,
            headers={"Content-Type": XLSX},
        )
        assert published.status_code == 200, published.text
        sent = await admin.post(
            f"/v1/projects/{pid}/forms/{FORM}/submissions",
            content=(
                f'<data id="{FORM}" version="1"><municipality>Tirana</municipality>'
                "<full_name>Arben Hoxha</full_name>"
                "<meta><instanceID>uuid:picker-1</instanceID></meta></data>"
            ).encode(),
            headers={"Content-Type": "application/xml"},
        )
        assert sent.status_code == 200, sent.text
        user = await admin.post(
            "/v1/users", json={"email": VIEWER_EMAIL, "password": VIEWER_PASSWORD}
        )
        assert user.status_code == 200, user.text
        assigned = await admin.post(f"/v1/projects/{pid}/assignments/viewer/{user.json()['id']}")
        assert assigned.status_code == 200, assigned.text
    return int(pid)


async def offered(page: Page, base: str, pid: int) -> list[str]:
    await page.goto(f"{base}/projects/{pid}/forms/{FORM}/submissions")
    # (The page says "1 submissions" today: the plural is the locale's, not tested here.)
    await expect(page.get_by_role("status")).to_have_text(re.compile(r"^1 submissions?$"))
    picker = page.get_by_label("Field to filter by")
    await expect(picker.get_by_role("option", name="municipality", exact=True)).to_have_count(1)
    return [text.strip() for text in await picker.get_by_role("option").all_inner_texts()]


async def test_a_viewer_is_not_offered_a_personal_field(live_server: str) -> None:
    base = live_server
    pid = await seed(base)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            admin = await (await browser.new_context()).new_page()
            await sign_in(admin, base, ADMIN_EMAIL, ADMIN_PASSWORD)
            assert "full_name" in await offered(admin, base, pid)

            viewer = await (await browser.new_context()).new_page()
            await sign_in(viewer, base, VIEWER_EMAIL, VIEWER_PASSWORD)
            fields = await offered(viewer, base, pid)
            assert "municipality" in fields
            assert "full_name" not in fields
            await assert_accessible(viewer, "submissions of a viewer")
        finally:
            await browser.close()
