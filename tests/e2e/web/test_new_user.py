"""Issue 13's bullets, as a new user meets them, on a tablet (768x1024), over plain HTTP.

What the office journey (test_office_journey.py) does not already walk through: sign-in
and project creation with the keyboard alone, CSRF refusal, conversion errors in plain
words (sheet, row, column, did-you-mean) from a dropped file, a keyboard-chosen upload,
CSV attachments, a second version, open / closing / closed, several phones (one
revoked, the QR large and printable), paging, sorting and filtering 30 submissions,
a thumbnail opened full size, an edit's history, an export with labels in a chosen
language, filtered by review state and date, without personal data; the form filled
in by keyboard with its CSV list and a photo; the interface in Albanian and Serbian,
and archiving. No page scrolls sideways at tablet width; axe-core checks each page.
Elements are found by role and accessible name (the drop zone by its visible hint).
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import openpyxl
from playwright.async_api import (
    FilePayload,
    Locator,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from tests.e2e.collect import png_1x1
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.web.browser import CHROMIUM, CHROMIUM_ARGS, serious_accessibility_violations

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLET: ViewportSize = {"width": 768, "height": 1024}
PHONES = 30  # more than the table's page of 25


def xlsform(survey: Sequence[tuple[str, ...]], version: str) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    choices = workbook.create_sheet("choices")
    choices.append(("list_name", "name", "label::English (en)", "label::Shqip (sq)"))
    choices.append(("gender", "female", "Female", "Femër"))
    choices.append(("gender", "male", "Male", "Mashkull"))
    settings = workbook.create_sheet("settings")
    settings.append(("form_id", "form_title", "version"))
    settings.append(("desk_visit", "Desk visit", version))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


HEADER = ("type", "name", "label::English (en)", "label::Shqip (sq)", "personal")
# Row 2 has a type one letter short of "integer".
MISTYPED = xlsform([HEADER, ("integr", "age", "Age", "Mosha")], "1")
QUESTIONS = [
    HEADER,
    ("text", "municipality", "Municipality", "Komuna"),
    ("select_one gender", "gender", "Gender", "Gjinia"),
    ("select_one_from_file places.csv", "place", "Place", "Vendi"),
    ("image", "photo", "Photo", "Foto"),
    ("text", "returnee", "Returnee's name", "Emri i të kthyerit", "yes"),
]
GOOD = xlsform(QUESTIONS, "1")
SECOND = xlsform([*QUESTIONS, ("integer", "household", "Household size", "Madhësia")], "2")
PLACES = b"name,label\ntirana,Tirana\ndurres,Durres\n"


def xlsx(name: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": XLSX, "buffer": data}


def visit(instance_id: str, number: int, *, photo: bool, replaces: str | None = None) -> bytes:
    deprecated = f"<deprecatedID>{replaces}</deprecatedID>" if replaces else ""
    picture = "<photo>house.png</photo>" if photo else "<photo/>"
    return (
        '<?xml version="1.0"?><data id="desk_visit" version="2">'
        f"<municipality>Visit {number:02}{' (edited)' if replaces else ''}</municipality>"
        f"<gender>{'female' if number % 2 else 'male'}</gender><place>tirana</place>"
        f"{picture}<returnee>Arben Krasniqi</returnee><household>{number}</household>"
        f"<meta><instanceID>{instance_id}</instanceID>{deprecated}</meta></data>"
    ).encode()


async def accessible(page: Page, where: str) -> None:
    violations = await serious_accessibility_violations(page)
    assert not violations, f"{where}: {violations}"


async def fits_a_tablet(page: Page, where: str) -> None:
    """The page itself never scrolls sideways (wide tables scroll in their own region)."""
    await page.wait_for_load_state("networkidle")
    wide, seen = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert wide <= seen, f"{where} scrolls sideways: {wide}px in {seen}px"


async def tab_to(page: Page, target: Locator, *, presses: int = 60) -> None:
    """Moves the focus with the Tab key alone until `target` has it."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await target.evaluate("(element) => element === document.activeElement"):
            return
    raise AssertionError(f"{target} is not reachable with the Tab key")


async def drop_file(page: Page, zone: Locator, name: str, data: bytes) -> None:
    """Drops a file on `zone` as a file manager would (a drop event with its DataTransfer)."""
    transfer = await page.evaluate_handle(
        """([name, bytes, type]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, {type}));
            return transfer;
        }""",
        [name, list(data), XLSX],
    )
    await zone.dispatch_event("dragover", {"dataTransfer": transfer})
    await zone.dispatch_event("drop", {"dataTransfer": transfer})


async def expect_rows(page: Page, shown: int) -> None:
    rows = page.get_by_role("table", name="Submissions").get_by_role("row")
    await expect(rows).to_have_count(shown + 1)  # and the header row


async def test_a_new_user_does_every_bullet_on_a_tablet(live_server: str, tmp_path: Path) -> None:
    base = live_server
    today = datetime.now(UTC).date()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport=TABLET, accept_downloads=True)
            page = await context.new_page()
            # File choosers are intercepted from the start, so the one opened by the
            # keyboard below cannot race the interception and open a real dialog.
            page.on("filechooser", lambda _chooser: None)

            # Sign in with the keyboard alone, over plain HTTP on loopback.
            await page.goto(base + "/")
            # A mistyped password is refused in plain words.
            await page.get_by_label("E-mail address").fill(ADMIN_EMAIL)
            await page.get_by_label("Password").fill("not the password")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_be_visible()
            await expect(page.get_by_role("alert")).not_to_contain_text("went wrong")
            await page.reload()
            await tab_to(page, page.get_by_label("E-mail address"))
            await page.keyboard.type(ADMIN_EMAIL)
            await page.keyboard.press("Tab")
            await page.keyboard.type(ADMIN_PASSWORD)
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()
            cookie = next(c for c in await context.cookies() if c["name"] == "homeward_session")
            assert cookie["httpOnly"]
            assert cookie["sameSite"] == "Strict"
            assert not cookie["secure"]  # plain HTTP on loopback: a trial needs no TLS
            await fits_a_tablet(page, "project list")

            # The session cookie alone does not write: the CSRF token must come too.
            forged = await page.request.post(f"{base}/v1/projects", data={"name": "Forged"})
            assert forged.status == 403
            assert (await forged.json())["code"] == 403.2

            # A project, created with the keyboard.
            await tab_to(page, page.get_by_label("Name of the new project"))
            await page.keyboard.type("Desk intake")
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("heading", name="Desk intake")).to_be_visible()
            project_id = int(re.findall(r"/projects/(\d+)", page.url)[0])
            await fits_a_tablet(page, "project forms")

            # A dropped XLSForm with a mistyped type: plain words, sheet, row, column
            # and the close name, and no "something went wrong".
            zone = page.get_by_text("Drop an XLSForm").locator("..")
            await drop_file(page, zone, "desk_visit.xlsx", MISTYPED)
            alert = page.get_by_role("alert")
            await expect(alert).to_contain_text("The XLSForm could not be converted.")
            await expect(alert).to_contain_text(
                "Sheet 'survey', row 2, column 'type': Unknown question type 'integr'."
            )
            await expect(alert).to_contain_text("Did you mean 'integer'?")
            await expect(alert).not_to_contain_text("went wrong")
            await accessible(page, "conversion error")

            # The good one chosen with the keyboard: its warning is read and accepted.
            chooser_input = page.get_by_label("Choose an XLSForm to upload")
            await tab_to(page, chooser_input)
            async with page.expect_file_chooser() as chooser:
                await page.keyboard.press("Space")
            await (await chooser.value).set_files(files=xlsx("desk_visit.xlsx", GOOD))
            await expect(alert).to_contain_text("The form converted, with warnings.")
            await expect(alert).to_contain_text("Sheet 'survey', row 5")
            await expect(alert).not_to_contain_text("ignoreWarnings")
            await tab_to(page, page.get_by_role("button", name="Accept the warnings and upload"))
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("heading", name="Desk visit")).to_be_visible()

            # Its CSV choice list is attached to the draft, then the draft published.
            attachments = page.get_by_role("region", name="Draft")
            await expect(
                attachments.get_by_role("listitem").filter(has_text="places.csv")
            ).to_contain_text("missing")
            await page.get_by_label("Upload places.csv").set_input_files(
                files={"name": "places.csv", "mimeType": "text/csv", "buffer": PLACES}
            )
            await expect(page.get_by_role("status")).to_have_text("places.csv was uploaded.")
            await expect(
                attachments.get_by_role("listitem").filter(has_text="places.csv")
            ).to_contain_text("uploaded")
            await accessible(page, "draft with its attachments")
            await fits_a_tablet(page, "form overview")
            await page.get_by_role("button", name="Publish draft").click()
            await expect(page.get_by_role("status")).to_have_text("The draft was published.")

            # A second version, uploaded and published: both are listed.
            await page.get_by_label("Upload a new version").set_input_files(
                files=xlsx("desk_visit.xlsx", SECOND)
            )
            await page.get_by_role("button", name="Accept the warnings and upload").click()
            await expect(page.get_by_text("Draft version: 2")).to_be_visible()
            await page.get_by_role("button", name="Publish draft").click()
            await expect(page.get_by_role("status")).to_have_text("The draft was published.")
            versions = page.get_by_role("table", name="Published versions")
            await expect(versions.get_by_role("cell", name="1", exact=True)).to_be_visible()
            await expect(versions.get_by_role("cell", name="2", exact=True)).to_be_visible()

            # Open, closing, closed: a closed form cannot be filled in.
            state = page.get_by_label("Accepting submissions")
            fill_link = page.get_by_role("link", name="Fill in this form")
            await expect(fill_link).to_be_visible()
            for chosen in ("closing", "closed", "open"):
                await state.select_option(chosen)
                await expect(page.get_by_role("status")).to_have_text(
                    "The form's state was changed."
                )
                await expect(state).to_have_value(chosen)
                await expect(fill_link).to_have_count(0 if chosen == "closed" else 1)

            # The field team: two phones may fill the form, a third is revoked.
            await page.get_by_role("link", name="Back to the project").click()
            await page.get_by_role("link", name="Field team").click()
            for phone in ("Ana", "Besa", "Old phone"):
                await page.get_by_label("Name of the new app user").fill(phone)
                await page.get_by_role("button", name="Create app user").click()
                await expect(page.get_by_role("heading", name=phone)).to_be_visible()
                may_fill = page.get_by_role("group", name=f"Forms {phone} may fill")
                await may_fill.get_by_role("checkbox", name="Desk visit").check()
                await expect(may_fill.get_by_role("checkbox", name="Desk visit")).to_be_checked()
            qr = page.get_by_role("img", name="QR code to set up ODK Collect for Old phone")
            assert await qr.evaluate("(img) => img.decode().then(() => img.naturalWidth)") >= 300
            assert (await qr.bounding_box() or {"width": 0})["width"] >= 300  # large on screen
            await expect(page.get_by_role("button", name="Print")).to_be_visible()
            # On paper: the QR code, larger still, without the app around it.
            await page.emulate_media(media="print")
            await expect(page.get_by_role("banner")).to_be_hidden()
            await expect(qr).to_be_visible()
            assert (await qr.bounding_box() or {"width": 0})["width"] >= 450  # 12 cm
            await page.emulate_media(media="screen")
            address = page.get_by_role("figure").get_by_text(re.compile(r"/v1/key/"))
            await expect(address).to_contain_text(f"/projects/{project_id}")
            await expect(page.get_by_role("alert")).to_contain_text("only works on this computer")
            await accessible(page, "field team with three phones")
            await fits_a_tablet(page, "field team")
            page.once("dialog", lambda dialog: dialog.accept())
            await page.get_by_role("button", name="Revoke access of Old phone").click()
            await expect(page.get_by_role("heading", name="Old phone")).to_have_count(0)
            await expect(page.get_by_role("heading", name="Besa")).to_be_visible()

            # 30 visits from the phones as Collect sends them: Besa's three carry a
            # photo, and one of Ana's is edited afterwards.
            listed = await page.request.get(f"{base}/v1/projects/{project_id}/app-users")
            tokens = {u["displayName"]: u["token"] for u in await listed.json()}
            assert set(tokens) == {"Ana", "Besa"}
            ids: dict[int, str] = {}
            async with httpx.AsyncClient(timeout=30) as collect:

                async def send(phone: str, xml: bytes, photo: bool) -> None:
                    files = [("xml_submission_file", ("visit.xml", xml, "text/xml"))]
                    if photo:
                        files.append(
                            ("house.png", ("house.png", png_1x1(b"\x20\x80\x40"), "image/png"))
                        )
                    sent = await collect.post(
                        f"{base}/v1/key/{tokens[phone]}/projects/{project_id}/submission",
                        files=files,
                        headers={"X-OpenRosa-Version": "1.0"},
                    )
                    assert sent.status_code == 201, sent.text

                for number in range(1, PHONES + 1):
                    ids[number] = f"uuid:{uuid.uuid4()}"
                    besa = number > PHONES - 3
                    phone = "Besa" if besa else "Ana"
                    await send(phone, visit(ids[number], number, photo=besa), besa)
                edit = f"uuid:{uuid.uuid4()}"
                await send("Ana", visit(edit, 10, photo=False, replaces=ids[10]), False)

            # The table: 25 a page, newest first, sortable by date.
            await page.get_by_role("link", name="Forms", exact=True).click()
            await page.get_by_role("link", name="Desk visit").click()
            await page.get_by_role("link", name="Submissions").click()
            count = page.get_by_role("status")
            await expect(count).to_have_text(f"{PHONES} submissions")
            await expect(page.get_by_text("Page 1 of 2")).to_be_visible()
            await expect_rows(page, 25)
            first_row = page.get_by_role("table", name="Submissions").get_by_role("row").nth(1)
            await expect(first_row).to_contain_text(f"Visit {PHONES}")
            await page.get_by_role("button", name="Next page").click()
            await expect(page.get_by_text("Page 2 of 2")).to_be_visible()
            await expect_rows(page, PHONES - 25)
            await expect(page.get_by_role("button", name="Next page")).to_be_disabled()
            sort = page.get_by_role("button", name="Submitted at")
            await sort.click()
            await expect(page.get_by_role("columnheader", name="Submitted at")).to_have_attribute(
                "aria-sort", "ascending"
            )
            await expect(page.get_by_text("Page 1 of 2")).to_be_visible()
            await expect(first_row).to_contain_text("Visit 01")
            await fits_a_tablet(page, "submission table")

            # Filters: submitter, then dates, each counted by the server.
            await page.get_by_label("Submitted by").select_option(label="Besa")
            await page.get_by_role("button", name="Apply filters").click()
            await expect(count).to_have_text("3 submissions")
            await accessible(page, "filtered submissions")

            # Besa's photo: a thumbnail in the table that opens full size.
            thumbnail = page.get_by_role("img", name="Photo house.png (photo); opens full size")
            await expect(thumbnail).to_have_count(3)
            assert await thumbnail.first.evaluate(
                "(img) => img.decode().then(() => img.naturalWidth)"
            )
            async with page.expect_popup() as opened:
                await thumbnail.first.click()
            full = await opened.value
            await full.wait_for_load_state()
            assert await full.evaluate("() => document.contentType") == "image/png"
            await full.close()
            # Shown inline only to the web app: a script or a phone still gets a download.
            photo = await thumbnail.first.evaluate("(img) => img.closest('a').href")
            async with httpx.AsyncClient(timeout=30) as script:
                signed = await script.post(
                    f"{base}/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
                )
                bearer = {"Authorization": f"Bearer {signed.json()['token']}"}
                fetched = await script.get(photo, headers=bearer)
            if fetched.status_code == 307:  # S3: a presigned address that names the download
                query = parse_qs(urlsplit(fetched.headers["location"]).query)
                assert query["response-content-disposition"][0].startswith("attachment;")
            else:
                assert fetched.headers["content-disposition"].startswith("attachment;")
            shown = await page.request.get(photo)
            assert shown.headers["content-disposition"].startswith("inline;")

            await page.get_by_label("Submitted by").select_option(label="Any")
            await page.get_by_label("From date").fill(today.isoformat())
            await page.get_by_role("button", name="Apply filters").click()
            await expect(count).to_have_text(f"{PHONES} submissions")
            await page.get_by_label("From date").fill("")
            await page.get_by_label("To date").fill((today - timedelta(days=1)).isoformat())
            await page.get_by_role("button", name="Apply filters").click()
            await expect(count).to_have_text("no submissions")
            await page.get_by_label("To date").fill("")
            await page.get_by_role("button", name="Apply filters").click()
            await expect(count).to_have_text(f"{PHONES} submissions")

            # The edited visit: its history, then rejected with a comment.
            edited = page.get_by_role("row").filter(has_text="Visit 10 (edited)")
            await edited.get_by_role("link").first.click()
            await expect(page.get_by_role("heading", name="Submission", exact=True)).to_be_visible()
            history = page.get_by_role("region", name="Edit history").get_by_role("listitem")
            await expect(history).to_have_count(2)
            await expect(history.filter(has_text=edit)).to_contain_text("current")
            await expect(history.filter(has_text=ids[10])).to_be_visible()
            await page.get_by_label("New review state").select_option("rejected")
            await page.get_by_label("Comment (optional)").fill("Household size unclear")
            await page.get_by_role("button", name="Save review").click()
            await expect(page.get_by_role("status")).to_have_text("The review was saved.")
            await expect(
                page.get_by_role("listitem").filter(has_text="Household size unclear")
            ).to_be_visible()
            await accessible(page, "edited submission")
            await fits_a_tablet(page, "submission detail")
            await page.get_by_role("link", name="Back to the submissions").click()
            await page.get_by_label(re.compile("^Review state")).select_option("rejected")
            await page.get_by_role("button", name="Apply filters").click()
            await expect(count).to_have_text("1 submission")
            await expect(page.get_by_role("cell", name="Visit 10 (edited)")).to_be_visible()

            # The export: labels in Albanian (picked from the form's languages),
            # rejected visits of today only; its progress, then the file.
            await page.get_by_role("link", name="Export").click()
            await page.get_by_label("Choices as").select_option(label="labels")
            language = page.get_by_label("Label language")
            await expect(language.get_by_role("option")).to_have_text(
                ["default language", "English (en)", "Shqip (sq)"]
            )
            await language.select_option("Shqip (sq)")
            await page.get_by_label(re.compile("^Review state")).select_option("rejected")
            await page.get_by_label("From date").fill(today.isoformat())
            await page.get_by_label("To date").fill(today.isoformat())
            await page.get_by_label("Personal data").select_option(label="leave out")
            await accessible(page, "export options")
            await fits_a_tablet(page, "export")
            async with page.expect_download() as downloading:
                await page.get_by_role("button", name="Download export").click()
            await expect(page.get_by_role("progressbar", name="Export progress")).to_be_attached()
            download = await downloading.value
            await expect(page.get_by_role("status")).to_contain_text("Done")
            saved = tmp_path / "desk_visit.zip"
            await download.save_as(saved)
            with zipfile.ZipFile(saved) as archive:
                table = archive.read("desk_visit.csv").decode("utf-8-sig")
            _header, *rows = table.splitlines()
            assert len(rows) == 1
            assert "Visit 10 (edited)" in rows[0]
            assert "Mashkull" in rows[0]  # visit 10's gender, labelled in Albanian
            assert "rejected" in rows[0]
            assert "Arben" not in table  # the returnee's name, personal, left out

            # The interface in Albanian and Serbian, then English again.
            # The header's own language list (the export has one for labels).
            switch = page.get_by_role("banner").get_by_role("combobox")
            await expect(switch).to_have_accessible_name(re.compile("^Language"))
            await switch.select_option("sq")
            await expect(page.get_by_role("button", name="Dilni")).to_be_visible()
            await expect(page.locator("html")).to_have_attribute("lang", "sq")
            await accessible(page, "export in Albanian")
            await expect(switch).to_have_accessible_name(re.compile("^Gjuha"))
            await switch.select_option("sr")
            await expect(page.locator("html")).to_have_attribute("lang", "sr")
            await accessible(page, "export in Serbian")
            await fits_a_tablet(page, "export in Serbian")
            await expect(switch).to_have_accessible_name(re.compile("^Jezik"))
            await switch.select_option("en")
            await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

            # A counsellor at the desk fills the form in with the keyboard alone, the CSV
            # choice list (an attachment) and a photo included, on the tablet.
            await page.goto(f"{base}/projects/{project_id}/forms/desk_visit")
            await page.get_by_role("link", name="Fill in this form").click()
            await tab_to(page, page.get_by_role("textbox", name="Municipality"))
            await page.keyboard.type("At the desk")
            await tab_to(page, page.get_by_role("radio", name="Female"))
            await page.keyboard.press("Space")
            # Tab enters a group of radios at its first; the arrow keys choose within.
            await tab_to(page, page.get_by_role("radio", name="Tirana"))
            await page.keyboard.press("ArrowDown")
            await expect(page.get_by_role("radio", name="Durres")).to_be_checked()
            await tab_to(page, page.get_by_role("button", name="Choose image"))
            async with page.expect_file_chooser() as chooser:
                await page.keyboard.press("Enter")
            await (await chooser.value).set_files(
                files={"name": "desk.png", "mimeType": "image/png", "buffer": png_1x1(b"\x40")}
            )
            await tab_to(page, page.get_by_role("spinbutton", name="Household size"))
            await page.keyboard.type("4")
            await accessible(page, "Web Forms on a tablet")
            # The photo can be taken back (Web Forms' icon-only button, named by us).
            await expect(page.get_by_role("button", name="Remove the chosen image")).to_be_visible()
            await fits_a_tablet(page, "Web Forms")
            await tab_to(page, page.get_by_role("button", name="Send"))
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("status")).to_have_text("The submission was sent.")
            await page.goto(f"{base}/projects/{project_id}/forms/desk_visit/submissions")
            await expect(page.get_by_role("status")).to_have_text(f"{PHONES + 1} submissions")
            from_the_desk = page.get_by_role("row").filter(has_text="At the desk")
            await expect(from_the_desk).to_contain_text("durres")
            await expect(
                from_the_desk.get_by_role("img", name=re.compile("^Photo "))
            ).to_be_visible()

            # Archived, and listed as such.
            await page.goto(f"{base}/projects/{project_id}/settings")
            await page.get_by_role("button", name="Archive project").click()
            await expect(page.get_by_role("status")).to_have_text("This project is archived.")
            await page.get_by_role("link", name="Projects", exact=True).click()
            archived = page.get_by_role("row").filter(has_text="Desk intake")
            await expect(archived.get_by_role("cell", name="Archived")).to_be_visible()
            await accessible(page, "project list with an archived project")

            # Sign-out ends the API session too.
            await tab_to(page, page.get_by_role("button", name="Sign out"))
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("heading", name="Sign in to Homeward")).to_be_visible()
            assert (await page.request.get(f"{base}/v1/users/current")).status == 401
            await context.close()
        finally:
            await browser.close()
