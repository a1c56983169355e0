"""Forms on Central's paths: XLSForm and XForm upload, drafts, versions, attachments, states."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import httpx
from openpyxl import Workbook
from sqlalchemy import func, select

from server.db.models import Blob, Form, FormDef, Submission, SubmissionDef
from server.runtime import Runtime
from tests.server.conftest import SIMPLE_FORM, XLSX, World, submission_xml

Row = Sequence[str | None]

PYODK_FORM_VALUES = {"projectId", "xmlFormId", "version", "hash", "state", "createdAt"}
PYODK_FORM_KEYS = {"name", "enketoId", "keyId", "updatedAt", "publishedAt"}

MEDIA_FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa">
<h:head><h:title>Fruit</h:title><model>
<itext><translation lang="default">
<text id="/data/fruit:label"><value>Fruit</value><value form="image">jr://images/logo.png</value></text>
</translation></itext>
<instance><data id="fruit" version="VERSION"><fruit/><meta><instanceID/></meta></data></instance>
<instance id="fruits" src="jr://file-csv/fruits.csv"/>
<bind nodeset="/data/fruit" type="string"/>
<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
</model></h:head>
<h:body><input ref="/data/fruit"><label ref="jr:itext('/data/fruit:label')"/></input></h:body>
</h:html>"""


def media_form(version: str) -> bytes:
    return MEDIA_FORM.replace(b"VERSION", version.encode())


def xlsform(
    survey: Sequence[Row],
    *,
    settings: Sequence[Row] | None = None,
    choices: Sequence[Row] | None = None,
    external_choices: Sequence[Row] | None = None,
) -> bytes:
    """An .xlsx workbook with the given sheets, as a researcher would save it."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "survey"
    for row in survey:
        sheet.append(list(row))
    sheets = (("choices", choices), ("external_choices", external_choices), ("settings", settings))
    for title, rows in sheets:
        if rows is not None:
            extra = workbook.create_sheet(title)
            for row in rows:
                extra.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


PETS = xlsform(
    [["type", "name", "label"], ["text", "pet", "Pet's name"], ["integer", "legs", "Legs"]],
    settings=[["form_id", "version", "form_title"], ["pets", "1", "Pets"]],
)
# An image question without max-pixels converts, with a warning from pyxform.
WARNS = xlsform(
    [["type", "name", "label"], ["image", "photo", "Photo"]],
    settings=[["form_id", "version"], ["snaps", "1"]],
)
# `${nope}` names no question: an error on row 2 of the survey sheet.
BROKEN = xlsform(
    [["type", "name", "label", "relevant"], ["text", "pet", "Pet", "${nope} = 'x'"]],
    settings=[["form_id"], ["broken"]],
)


async def body_of(client: httpx.AsyncClient, response: httpx.Response) -> bytes:
    """The bytes behind a blob response: streamed by the app, or a presigned S3 redirect."""
    if response.status_code == 307:
        async with httpx.AsyncClient() as direct:
            followed = await direct.get(response.headers["location"])
        assert followed.status_code == 200, followed.text
        return followed.content
    assert response.status_code == 200, response.text
    return response.content


async def counts(runtime: Runtime) -> tuple[int, int, int]:
    async with runtime.transaction() as db:
        forms = await db.scalar(select(func.count()).select_from(Form))
        defs = await db.scalar(select(func.count()).select_from(FormDef))
        blobs = await db.scalar(select(func.count()).select_from(Blob))
    return forms or 0, defs or 0, blobs or 0


async def upload(
    world: World,
    body: bytes,
    *,
    content_type: str = XLSX,
    query: str = "?publish=true",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await world.client.post(
        f"/v1/projects/{world.project_id}/forms{query}",
        content=body,
        headers=world.admin_headers | {"Content-Type": content_type} | (headers or {}),
    )


async def submit(world: World, instance_id: str, version: str) -> httpx.Response:
    return await world.client.post(
        f"{world.key_base}/submission",
        files={
            "xml_submission_file": (
                "instance.xml",
                submission_xml(instance_id, version=version),
                "text/xml",
            )
        },
        headers={"X-OpenRosa-Version": "1.0"},
    )


async def test_xlsform_upload_publishes_and_serves_its_xml_and_workbook(world: World) -> None:
    client = world.client
    response = await upload(world, PETS)
    assert response.status_code == 200, response.text
    form = response.json()
    assert form.keys() >= PYODK_FORM_VALUES
    assert form.keys() >= PYODK_FORM_KEYS
    assert form["projectId"] == world.project_id
    assert form["xmlFormId"] == "pets"
    assert form["version"] == "1"
    assert form["state"] == "open"
    assert form["name"] == "Pets"
    assert form["publishedAt"] is not None
    assert form["createdAt"].endswith("Z")

    base = f"/v1/projects/{world.project_id}/forms/pets"
    fetched = await client.get(base, headers=world.admin_headers)
    assert fetched.status_code == 200
    assert fetched.json() == form
    listing = await client.get(
        f"/v1/projects/{world.project_id}/forms", headers=world.admin_headers
    )
    assert {f["xmlFormId"] for f in listing.json()} == {"pets", "simple"}

    xml = await client.get(f"{base}.xml", headers=world.admin_headers)
    assert xml.status_code == 200
    assert hashlib.md5(xml.content, usedforsecurity=False).hexdigest() == form["hash"]
    assert b'id="pets"' in xml.content

    workbook = await client.get(f"{base}.xlsx", headers=world.admin_headers)
    assert await body_of(client, workbook) == PETS
    if workbook.status_code == 200:
        assert workbook.headers["content-type"] == XLSX
    assert (await client.get(f"/v1/projects/{world.project_id}/forms/simple.xlsx",
                             headers=world.admin_headers)).status_code == 404  # fmt: skip


async def test_xlsform_error_is_400_15_naming_sheet_and_row_and_changes_nothing(
    world: World,
) -> None:
    before = await counts(world.runtime)
    response = await upload(world, BROKEN)
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == 400.15
    assert "Sheet 'survey', row 2" in problem["message"]
    assert "nope" in problem["message"]
    assert "nope" in problem["details"]["error"]
    assert await counts(world.runtime) == before


async def test_xlsform_warnings_are_400_16_until_ignored(world: World) -> None:
    before = await counts(world.runtime)
    response = await upload(world, WARNS)
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == 400.16
    warnings = problem["details"]["warnings"]["xlsFormWarnings"]
    assert len(warnings) == 1
    assert "max-pixels" in warnings[0]
    assert await counts(world.runtime) == before

    # pyodk spells its booleans True / False.
    accepted = await upload(world, WARNS, query="?publish=True&ignoreWarnings=True")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["xmlFormId"] == "snaps"
    assert accepted.json()["publishedAt"] is not None


async def test_ignore_warnings_lowercase_creates_an_unpublished_draft(world: World) -> None:
    response = await upload(world, WARNS, query="?ignoreWarnings=true")
    assert response.status_code == 200, response.text
    assert response.json()["publishedAt"] is None
    draft = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/snaps/draft", headers=world.admin_headers
    )
    assert draft.status_code == 200
    assert draft.json()["version"] == "1"


async def test_form_id_fallback_header_names_a_form_without_settings(world: World) -> None:
    bare = xlsform([["type", "name", "label"], ["text", "pet", "Pet"]])
    response = await upload(world, bare, headers={"X-XlsForm-FormId-Fallback": "household_v2"})
    assert response.status_code == 200, response.text
    assert response.json()["xmlFormId"] == "household_v2"
    # The settings sheet wins over the header.
    named = await upload(world, PETS, headers={"X-XlsForm-FormId-Fallback": "ignored"})
    assert named.json()["xmlFormId"] == "pets"


async def test_xform_upload_and_duplicate_form_id_is_409_and_changes_nothing(
    world: World,
) -> None:
    created = await upload(world, media_form("1"), content_type="application/xml")
    assert created.status_code == 200, created.text
    assert created.json()["xmlFormId"] == "fruit"
    assert created.json()["hash"] == hashlib.md5(media_form("1"), usedforsecurity=False).hexdigest()
    assert (await upload(world, PETS)).status_code == 200

    before = await counts(world.runtime)
    for body, content_type in (
        (SIMPLE_FORM, "text/xml"),
        (media_form("2"), "application/xml"),
        (PETS, XLSX),
    ):
        again = await upload(world, body, content_type=content_type)
        assert again.status_code == 409, again.text
        assert again.json()["code"] == 409.3
    assert await counts(world.runtime) == before


async def test_unreadable_uploads_are_refused_and_change_nothing(world: World) -> None:
    before = await counts(world.runtime)
    not_xml = await upload(world, b"<h:html", content_type="application/xml")
    assert not_xml.status_code == 400
    not_a_workbook = await upload(world, b"PK\x03\x04 truncated")
    assert not_a_workbook.status_code == 400
    assert not_a_workbook.json()["code"] == 400.15
    wrong_type = await upload(world, b"name,label", content_type="text/csv")
    assert wrong_type.status_code == 415
    empty = await upload(world, b"")
    assert empty.status_code == 400
    assert await counts(world.runtime) == before


async def test_draft_publish_with_version_rewrites_the_served_xml(world: World) -> None:
    client, headers = world.client, world.admin_headers
    base = f"/v1/projects/{world.project_id}/forms/simple"
    new_version = SIMPLE_FORM.replace(b'version="1"', b'version="1.1"')
    draft = await client.post(
        f"{base}/draft", content=new_version, headers=headers | {"Content-Type": "application/xml"}
    )
    assert draft.status_code == 200, draft.text
    shown = await client.get(f"{base}/draft", headers=headers)
    assert shown.status_code == 200
    assert shown.json()["version"] == "1.1"
    assert shown.json()["publishedAt"] is None
    assert (await client.get(base, headers=headers)).json()["version"] == "1"

    published = await client.post(f"{base}/draft/publish?version=v2", headers=headers)
    assert published.status_code == 200, published.text
    assert (await client.get(f"{base}/draft", headers=headers)).status_code == 404
    form = (await client.get(base, headers=headers)).json()
    assert form["version"] == "v2"
    xml = await client.get(f"{base}.xml", headers=headers)
    assert b'version="v2"' in xml.content
    assert hashlib.md5(xml.content, usedforsecurity=False).hexdigest() == form["hash"]
    listing = await client.get(f"{world.key_base}/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert f"md5:{form['hash']}".encode() in listing.content
    assert b"<version>v2</version>" in listing.content

    versions = await client.get(f"{base}/versions", headers=headers)
    assert [v["version"] for v in versions.json()] == ["v2", "1"]
    assert all(v.keys() >= PYODK_FORM_VALUES for v in versions.json())

    # A copy of the published version cannot be published again under its version.
    copied = await client.post(f"{base}/draft", headers=headers)
    assert copied.status_code == 200, copied.text
    clash = await client.post(f"{base}/draft/publish", headers=headers)
    assert clash.status_code == 409
    assert clash.json()["code"] == 409.6
    again = await client.post(f"{base}/draft/publish?version=1", headers=headers)
    assert again.status_code == 409
    assert (await client.get(f"{base}/draft", headers=headers)).status_code == 200


async def test_submissions_stay_tied_to_the_version_they_were_made_with(world: World) -> None:
    client, headers = world.client, world.admin_headers
    base = f"/v1/projects/{world.project_id}/forms/simple"
    await client.post(
        f"{base}/draft",
        content=SIMPLE_FORM.replace(b'version="1"', b'version="2"'),
        headers=headers | {"Content-Type": "application/xml"},
    )
    assert (await client.post(f"{base}/draft/publish", headers=headers)).status_code == 200

    assert (await submit(world, "uuid:old", "1")).status_code == 201
    assert (await submit(world, "uuid:new", "2")).status_code == 201
    unknown = await submit(world, "uuid:odd", "7")
    assert unknown.status_code == 404
    async with world.runtime.transaction() as db:
        rows = await db.execute(
            select(Submission.instance_id, FormDef.version)
            .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
            .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
        )
        by_instance = dict(rows.tuples().all())
    assert by_instance == {"uuid:old": "1", "uuid:new": "2"}


async def test_form_attachments_upload_publish_serve_and_carry_over(world: World) -> None:
    client, headers = world.client, world.admin_headers
    created = await upload(world, media_form("1"), content_type="application/xml", query="")
    assert created.status_code == 200, created.text
    base = f"/v1/projects/{world.project_id}/forms/fruit"

    listed = await client.get(f"{base}/draft/attachments", headers=headers)
    assert listed.status_code == 200
    assert {(a["name"], a["type"], a["exists"]) for a in listed.json()} == {
        ("fruits.csv", "file", False),
        ("logo.png", "image", False),
    }
    assert (await client.get(f"{base}/attachments", headers=headers)).status_code == 404

    csv = b"name,label\napple,Apple\n"
    stored = await client.post(
        f"{base}/draft/attachments/fruits.csv",
        content=csv,
        headers=headers | {"Content-Type": "text/csv"},
    )
    assert stored.status_code == 200, stored.text
    unknown = await client.post(
        f"{base}/draft/attachments/other.csv",
        content=csv,
        headers=headers | {"Content-Type": "text/csv"},
    )
    assert unknown.status_code == 404
    draft_file = await client.get(f"{base}/draft/attachments/fruits.csv", headers=headers)
    assert await body_of(client, draft_file) == csv

    assert (await client.post(f"{base}/draft/publish", headers=headers)).status_code == 200
    published = {
        a["name"]: a for a in (await client.get(f"{base}/attachments", headers=headers)).json()
    }
    assert published["fruits.csv"]["exists"] is True
    assert published["fruits.csv"]["hash"] == hashlib.md5(csv, usedforsecurity=False).hexdigest()
    assert published["logo.png"]["exists"] is False

    served = await client.get(f"{base}/attachments/fruits.csv", headers=headers)
    assert await body_of(client, served) == csv
    if served.status_code == 200:  # streamed by the app (S3 answers with a redirect)
        assert served.headers["content-type"].startswith("text/csv")
    etag = served.headers["etag"]
    assert etag == f'"{hashlib.md5(csv, usedforsecurity=False).hexdigest()}"'
    cached = await client.get(
        f"{base}/attachments/fruits.csv", headers=headers | {"If-None-Match": etag}
    )
    assert cached.status_code == 304
    assert cached.content == b""
    missing = await client.get(f"{base}/attachments/logo.png", headers=headers)
    assert missing.status_code == 404

    # A new draft (a new version of the file) keeps the attachment of the same name.
    redrafted = await client.post(
        f"{base}/draft",
        content=media_form("2"),
        headers=headers | {"Content-Type": "application/xml"},
    )
    assert redrafted.status_code == 200, redrafted.text
    carried = {
        a["name"]: a["exists"]
        for a in (await client.get(f"{base}/draft/attachments", headers=headers)).json()
    }
    assert carried == {"fruits.csv": True, "logo.png": False}
    manifest = await client.get(
        f"/v1/projects/{world.project_id}/forms/fruit/manifest",
        headers=headers | {"X-OpenRosa-Version": "1.0"},
    )
    assert manifest.status_code == 200
    assert b"fruits.csv" in manifest.content


async def test_external_choices_become_the_itemsets_csv_attachment(world: World) -> None:
    cities = xlsform(
        [
            ["type", "name", "label", "choice_filter"],
            ["select_one country", "country", "Country", None],
            ["select_one_external city", "city", "City", "country=${country}"],
        ],
        choices=[["list_name", "name", "label"], ["country", "al", "Albania"]],
        external_choices=[
            ["list_name", "name", "label", "country"],
            ["city", "tirana", "Tirana", "al"],
        ],
        settings=[["form_id", "version"], ["cities", "1"]],
    )
    created = await upload(world, cities)
    assert created.status_code == 200, created.text
    base = f"/v1/projects/{world.project_id}/forms/cities"
    listed = (await world.client.get(f"{base}/attachments", headers=world.admin_headers)).json()
    assert [(a["name"], a["exists"]) for a in listed] == [("itemsets.csv", True)]
    served = await world.client.get(f"{base}/attachments/itemsets.csv", headers=world.admin_headers)
    csv = await body_of(world.client, served)
    assert b'"city","tirana","Tirana","al"' in csv


async def test_form_state_changes_and_refuses_unknown_states(world: World) -> None:
    client, headers = world.client, world.admin_headers
    base = f"/v1/projects/{world.project_id}/forms/simple"
    for state in ("closing", "closed", "open"):
        changed = await client.patch(base, json={"state": state}, headers=headers)
        assert changed.status_code == 200, changed.text
        assert changed.json()["state"] == state
        assert (await client.get(base, headers=headers)).json()["state"] == state
    bad = await client.patch(base, json={"state": "archived"}, headers=headers)
    assert bad.status_code == 400
    assert bad.json()["code"] == 400.8
    assert (await client.get(base, headers=headers)).json()["state"] == "open"

    await client.patch(base, json={"state": "closed"}, headers=headers)
    listing = await client.get(f"{world.key_base}/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert b"<formID>simple</formID>" not in listing.content
    refused = await submit(world, "uuid:late", "1")
    assert refused.status_code == 409


async def test_deleted_form_is_gone(world: World) -> None:
    client, headers = world.client, world.admin_headers
    base = f"/v1/projects/{world.project_id}/forms/simple"
    deleted = await client.delete(base, headers=headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True}
    assert (await client.get(base, headers=headers)).status_code == 404
    assert (await client.get(f"{base}.xml", headers=headers)).status_code == 404
    listing = await client.get(f"/v1/projects/{world.project_id}/forms", headers=headers)
    assert listing.json() == []
    assert (await client.delete(base, headers=headers)).status_code == 404


async def test_a_draft_token_is_not_in_the_database_and_is_checked_in_full(
    world: World,
) -> None:
    forms = f"/v1/projects/{world.project_id}/forms"
    await world.client.post(f"{forms}/simple/draft", headers=world.admin_headers)
    draft = await world.client.get(f"{forms}/simple/draft", headers=world.admin_headers)
    token = draft.json()["draftToken"]
    assert len(token) == 64
    async with world.runtime.read() as db:
        stored = await db.scalar(select(Form.draft_token).where(Form.xml_form_id == "simple"))
    assert stored is not None
    assert stored not in token
    base = f"/v1/test/{token}/projects/{world.project_id}/forms/simple/draft"
    openrosa = {"X-OpenRosa-Version": "1.0"}
    assert (await world.client.get(f"{base}/formList", headers=openrosa)).status_code == 200
    other = "B" if token.endswith("A") else "A"
    wrong = f"/v1/test/{token[:-1]}{other}/projects/{world.project_id}/forms/simple/draft"
    assert (await world.client.get(f"{wrong}/formList", headers=openrosa)).status_code == 404
    with_stored = f"/v1/test/{stored}/projects/{world.project_id}/forms/simple/draft"
    assert (await world.client.get(f"{with_stored}/formList", headers=openrosa)).status_code == 404


async def test_conversion_error_says_where_in_plain_words(world: World) -> None:
    workbook = xlsform(
        [["type", "name", "label"], ["text", "name", "Name"], ["select_one gendr", "g", "G"]],
        choices=[["list_name", "name", "label"], ["gender", "f", "Female"]],
    )
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=workbook,
        headers=world.admin_headers | {"Content-Type": XLSX},
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400.15
    assert body["message"] == (
        "The XLSForm could not be converted: Sheet 'survey', row 3, column 'type': the list "
        "'gendr' is not on the choices sheet (no row there has it as its list_name). "
        "Did you mean 'gender'?"
    )
