"""Case lists, follow-up and indicators in a real browser, against a live server (issue 13).

The programme's three forms are published; a counsellor's phone sends an intake,
which registers the returnee, and a second phone sends the 3-month follow-up and
(offline, from the same version) a needs assessment, which makes a conflict.
In the browser the project manager finds the returnee in the case list, reads
their history with the submissions behind it, marks the conflict resolved, sees
them in the "who is due" list and in the indicators' charts and tables. A data
collector is refused the case-list pages and their API calls. axe-core checks
each page; elements are found by role and accessible name only.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.e2e.collect import (
    INTAKE,
    XLSX,
    Collect,
    intake_xml,
    jpeg,
    new_instance_id,
    sign_in_admin,
)
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.test_programme_case_list import LABEL, follow_up_xml, needs_xml
from tests.e2e.web.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    serious_accessibility_violations,
    slowly,
)

pytestmark = pytest.mark.slow  # a real server process and a browser

FORMS = ("intake", "needs_assessment", "follow_up")  # intake first: it declares the list
COLLECTOR_EMAIL = "counsellor@example.org"
COLLECTOR_PASSWORD = "a counsellor's password"
INSTANCE_NAME = "RW-20261123-a1b2c3 / Tirana / 2026-11-23"  # what intake_xml sends


DATASET_CALLS = re.compile(r".*/v1/projects/\d+/datasets.*")


async def assert_accessible(page: Page, where: str) -> None:
    violations = await serious_accessibility_violations(page)
    assert not violations, f"{where}: {violations}"


async def sign_in(page: Page, base: str, email: str, password: str) -> None:
    await page.goto(base + "/")
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()


async def publish_programme(admin: httpx.AsyncClient) -> tuple[int, str]:
    """A project with the programme forms, and an app user who may send all three."""
    project = await admin.post("/v1/projects", json={"name": "Follow-up office"})
    pid = int(project.json()["id"])
    for form_id in FORMS:
        published = await admin.post(
            f"/v1/projects/{pid}/forms?publish=true",
            content=INTAKE.with_name(f"{form_id}.xlsx").read_bytes(),
            headers={"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": form_id},
        )
        assert published.status_code == 200, published.text
    user = await admin.post(f"/v1/projects/{pid}/app-users", json={"displayName": "Counsellors"})
    actor_id, token = user.json()["id"], user.json()["token"]
    for form_id in FORMS:
        assigned = await admin.post(
            f"/v1/projects/{pid}/forms/{form_id}/assignments/app-user/{actor_id}"
        )
        assert assigned.status_code == 200, assigned.text
    return pid, str(token)


async def test_a_returnee_is_found_followed_and_counted_in_the_browser(live_server: str) -> None:
    base = live_server
    entity_id = str(uuid.uuid4())
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as admin,
        httpx.AsyncClient(timeout=60) as phone,
    ):
        await sign_in_admin(admin)
        pid, token = await publish_programme(admin)
        collect, key_base = Collect(phone), f"{base}/v1/key/{token}/projects/{pid}"
        sent = await collect.submit(
            f"{key_base}/submission",
            intake_xml(new_instance_id(), "consent.jpg", entity_id=entity_id),
            [("consent.jpg", jpeg(2_000), "image/jpeg")],
        )
        assert sent.status_code == 201, sent.text
        # The 3-month follow-up, then a needs assessment made offline from version 1.
        for xml in (
            follow_up_xml(entity_id, base=1, branch=str(uuid.uuid4())),
            needs_xml(entity_id, base=1, branch=str(uuid.uuid4())),
        ):
            sent = await collect.submit(f"{key_base}/submission", xml)
            assert sent.status_code == 201, sent.text
        user = await admin.post(
            "/v1/users", json={"email": COLLECTOR_EMAIL, "password": COLLECTOR_PASSWORD}
        )
        assert user.status_code == 200, user.text
        made = await admin.post(f"/v1/projects/{pid}/assignments/formfill/{user.json()['id']}")
        assert made.status_code == 200, made.text

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            await sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)

            # The project's case lists: the returnees list, filled by intake, read by the others.
            await page.goto(f"{base}/projects/{pid}")
            await page.get_by_role("link", name="Case lists").click()
            lists = page.get_by_role("table", name="Case lists")
            await expect(lists.get_by_role("row", name="returnees")).to_contain_text("1")
            # Follow-up both updates the list and reads it (as its returnees.csv).
            await expect(lists.get_by_role("link", name="Follow-up")).to_have_count(2)
            await assert_accessible(page, "case lists")
            owner_only = page.get_by_role(
                "checkbox", name="Phones get only the entries of returnees they created"
            )
            # The lists' reload after a save is slowed, as on a busy server: the
            # switches wait for it, so a second click is not undone by the repaint.
            await page.route(DATASET_CALLS, slowly)
            await owner_only.check()
            await expect(owner_only).to_be_disabled()
            await expect(page.get_by_role("status").first).to_have_text(
                "The settings of returnees were saved."
            )
            await expect(owner_only).to_be_enabled()
            await expect(owner_only).to_be_checked()
            await page.unroute(DATASET_CALLS, slowly)
            await owner_only.uncheck()
            await expect(owner_only).not_to_be_checked()

            # The list's entries, searched by first name.
            await lists.get_by_role("link", name="returnees").click()
            await expect(page.get_by_role("heading", name="Case list: returnees")).to_be_visible()
            await page.get_by_label("Search by label or value").fill("Arta")
            await page.get_by_role("button", name="Search").click()
            await expect(page.get_by_text("1 entries")).to_be_visible()
            # Sorted on the server ($orderby), the search kept.
            await page.get_by_role("button", name="Label").click()
            await expect(page.get_by_role("columnheader", name="Label")).to_have_attribute(
                "aria-sort", "ascending"
            )
            await expect(page.get_by_role("link", name=LABEL)).to_be_visible()
            await expect(page.get_by_text("1 entries")).to_be_visible()
            await assert_accessible(page, "case list entries")

            # The returnee's detail: properties, history with diffs and the submissions.
            await page.get_by_role("link", name=LABEL).click()
            await expect(page.get_by_role("heading", name=LABEL, level=1)).to_be_visible()
            await expect(page.get_by_role("heading", name="Version 1", exact=True)).to_be_visible()
            await expect(
                page.get_by_role("link", name=f"from the intake submission {INSTANCE_NAME}")
            ).to_be_visible()
            changes = page.get_by_role("table", name="Changes in version 2")
            await expect(changes.get_by_role("row", name="last_wave")).to_contain_text("month_3")
            await expect(page.get_by_role("table", name="Changes in version 3")).to_contain_text(
                "assessed"
            )
            conflict = page.get_by_role("alert")
            await expect(conflict).to_contain_text("changed the same property")
            await assert_accessible(page, "entity detail")
            await page.get_by_role("button", name="Mark the conflict as resolved").click()
            await expect(page.get_by_text("The conflict is marked as resolved.")).to_be_visible()
            await expect(page.get_by_role("alert")).to_have_count(0)
            await page.get_by_role("link", name="from the intake submission").click()
            await expect(page).to_have_url(re.compile(r"/forms/intake/submissions/uuid"))

            # Who is due: the 6-month wave is next, counted from the date of return.
            await page.goto(f"{base}/projects/{pid}/due")
            await expect(
                page.get_by_role("heading", name="Who is due for a follow-up")
            ).to_be_visible()
            row = page.get_by_role("row", name=LABEL)
            await expect(row).to_contain_text("6 months")
            await expect(row).to_contain_text("Tirana")
            await assert_accessible(page, "who is due")

            # Indicators: charts, each with its table of the same numbers.
            await page.get_by_role("link", name="Indicators").click()
            await expect(
                page.get_by_text("1 returnees registered, 1 follow-up interviews.")
            ).to_be_visible()
            await expect(
                page.get_by_role("img", name="Chart: Returnees by sex", exact=False)
            ).to_be_visible()
            by_sex = page.get_by_role("table", name="Table: Returnees by sex")
            await expect(by_sex.get_by_role("row", name="Female")).to_contain_text("1")
            by_wave = page.get_by_role("table", name="Table: Follow-up interviews by wave")
            await expect(by_wave.get_by_role("row", name="3 months")).to_contain_text("1")
            months = page.get_by_role("table", name="Table: Registrations and follow-ups by month")
            await expect(months.get_by_role("row", name="2026-11")).to_contain_text("1")
            await assert_accessible(page, "indicators")

            # The follow-up form's page names the list it reads and updates.
            await page.goto(f"{base}/projects/{pid}/forms/follow_up")
            section = page.get_by_role("region", name="Case lists")
            await expect(section.get_by_role("link", name="returnees")).to_have_count(2)
            await assert_accessible(page, "form case lists")

            # Deleted (after confirming), listed among the deleted entries, restored.
            await page.goto(f"{base}/projects/{pid}/datasets/returnees/entities/{entity_id}")
            page.once("dialog", lambda dialog: dialog.accept())
            await page.get_by_role("button", name="Delete this entry").click()
            await expect(page.get_by_role("link", name="Deleted entries")).to_have_attribute(
                "aria-current", "page"
            )
            await assert_accessible(page, "deleted entries")
            await page.get_by_role("button", name=f"Restore {LABEL}").click()
            await expect(page.get_by_text(f"{LABEL} was restored.")).to_be_visible()
            await expect(page.get_by_text("No entries of this list are deleted.")).to_be_visible()
            await context.close()

            # A data collector is refused the case-list pages and their API calls.
            collector = await browser.new_context()
            collector_page = await collector.new_page()
            await sign_in(collector_page, base, COLLECTOR_EMAIL, COLLECTOR_PASSWORD)
            await collector_page.goto(f"{base}/projects/{pid}")
            await expect(collector_page.get_by_role("link", name="Forms")).to_be_visible()
            for hidden in ("Case lists", "Who is due", "Indicators"):
                await expect(collector_page.get_by_role("link", name=hidden)).to_have_count(0)
            await collector_page.goto(f"{base}/projects/{pid}/case-lists")
            await expect(collector_page.get_by_role("alert")).to_contain_text(
                "You are not allowed to see or do this."
            )
            await expect(collector_page.get_by_role("checkbox")).to_have_count(0)
            for path in (
                "datasets",
                "datasets/returnees",
                f"datasets/returnees/entities/{entity_id}",
                f"datasets/returnees/entities/{entity_id}/sources",
                "case-schedule",
                "indicators",
            ):
                refused = await collector_page.request.get(f"{base}/v1/projects/{pid}/{path}")
                assert refused.status == 403, path
            session = await collector_page.request.get(f"{base}/v1/web/session")
            csrf = {"X-CSRF-Token": (await session.json())["csrf"]}
            for method, path, body in (
                ("PATCH", "datasets/returnees", {"ownerOnly": True}),
                ("PATCH", f"datasets/returnees/entities/{entity_id}?resolve=true", {}),
                ("DELETE", f"datasets/returnees/entities/{entity_id}", None),
            ):
                refused = await collector_page.request.fetch(
                    f"{base}/v1/projects/{pid}/{path}", method=method, data=body, headers=csrf
                )
                assert refused.status == 403, (method, path)
            await collector.close()
        finally:
            await browser.close()
