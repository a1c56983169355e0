"""Helpers for driving the live server the way ODK Collect does, and for checking
what it stored.

:class:`Collect` makes every request as Collect (v2026.3) does: ``X-OpenRosa-Version:
1.0``, a malformed ``Date``, Collect's user agent, and ``?deviceID=collect%3A...``
appended to every URL, including the URLs the server hands out. :func:`stored` and
:func:`assert_blob` read the rows and the bytes through a runtime on the server's
own settings.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import openpyxl
from lxml import etree
from sqlalchemy import select

from server.db.models import Blob, Form, Submission, SubmissionAttachment, SubmissionDef
from server.runtime import Runtime
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, REPO_ROOT

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INTAKE = REPO_ROOT / "forms" / "programme" / "intake.xlsx"
INTAKE_VERSION = "2026120401"
SITE_VISIT_VERSION = "2026010101"
SITE_VISIT_TITLE = "Vizitë në terren – Shkodër"  # not ASCII: formList is UTF-8

DEVICE_ID = "collect:abc123"
DEVICE_QUERY = "deviceID=collect%3Aabc123"
# Collect sends a Date the server must never validate.
BOGUS_DATE = "Sun, 31 Nov 2026 25:61:61 GMT+99"
USER_AGENT = (
    "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240205.004) "
    "org.odk.collect.android/v2026.3.0"
)

FORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"
XHTML_NS = "http://www.w3.org/1999/xhtml"


def png_1x1(rgb: bytes = b"\xff\xff\xff") -> bytes:
    """A real 1x1 PNG (opaque, white by default) for a form's media file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + rgb)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


LOGO_PNG = png_1x1()


def jpeg(size: int) -> bytes:
    """Bytes that start and end like a JPEG; random in between so no two are alike."""
    return b"\xff\xd8\xff\xe0" + os.urandom(size - 6) + b"\xff\xd9"


def site_visit_xlsx() -> bytes:
    """An XLSForm with a media label (``jr://images/logo.png``) and two photos."""
    workbook = openpyxl.Workbook()
    survey = workbook.active
    survey.title = "survey"
    for row in (
        ("type", "name", "label", "media::image", "parameters"),
        ("note", "welcome", "Welcome to the site visit", "logo.png", None),
        ("text", "site_name", "Site name", None, None),
        ("image", "photo_front", "Front of the building", None, "max-pixels=1600"),
        ("image", "photo_back", "Back of the building", None, "max-pixels=1600"),
    ):
        survey.append(row)
    settings = workbook.create_sheet("settings")
    settings.append(("form_id", "form_title", "version"))
    settings.append(("site_visit", SITE_VISIT_TITLE, SITE_VISIT_VERSION))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def intake_xml(
    instance_id: str,
    photo: str,
    *,
    municipality: str = "Tirana",
    deprecated_id: str = "",
    entity_id: str = "",
) -> bytes:
    """An intake as Collect sends it; it registers the returnee as entity `entity_id`."""
    deprecated = f"<deprecatedID>{deprecated_id}</deprecatedID>" if deprecated_id else ""
    entity_id = entity_id or str(uuid.uuid4())
    return (
        f'<?xml version="1.0"?><data xmlns:jr="http://openrosa.org/javarosa" '
        f'xmlns:orx="http://openrosa.org/xforms" id="intake" version="{INTAKE_VERSION}">'
        "<start>2026-11-23T10:00:00.000+01:00</start><end>2026-11-23T10:20:00.000+01:00</end>"
        f"<today>2026-11-23</today><deviceid>{DEVICE_ID}</deviceid><username/>"
        f"<case_id>RW-20261123-a1b2c3</case_id><counsellor>{DEVICE_ID}</counsellor>"
        "<status>registered</status><last_contact>2026-11-23</last_contact>"
        "<consent_intro/><consent>yes</consent>"
        f"<no_consent_end/><registration><consent_photo>{photo}</consent_photo>"
        "<case_id_note/><person><first_name>Arta</first_name><last_name>Hoxha</last_name>"
        "<date_of_birth>1990-05-01</date_of_birth><age_years>36</age_years><sex>female</sex>"
        "<phone/><address/></person><return_info><country_return>albania</country_return>"
        f"<country_return_other/><municipality>{municipality}</municipality>"
        "<date_return>2026-10-01</date_return><country_from>germany</country_from>"
        "<country_from_other/><months_abroad>30</months_abroad><return_type>avr</return_type>"
        "<return_reasons>family</return_reasons><return_reasons_other/></return_info>"
        "<vulnerabilities>none</vulnerabilities><vulnerabilities_other/>"
        "<household><hh_other_members>0</hh_other_members></household>"
        "<at_residence>no</at_residence><residence_gps/><end_note/></registration>"
        f'<meta><entity dataset="returnees" create="1" id="{entity_id}">'
        "<label>RW-20261123-a1b2c3 Arta</label></entity>"
        f"<instanceID>{instance_id}</instanceID>{deprecated}"
        f"<instanceName>RW-20261123-a1b2c3 / {municipality} / 2026-11-23</instanceName>"
        "</meta></data>"
    ).encode()


def site_visit_xml(instance_id: str, front: str, back: str) -> bytes:
    return (
        f'<?xml version="1.0"?><data id="site_visit" version="{SITE_VISIT_VERSION}">'
        f"<welcome/><site_name>Shkodër centre</site_name><photo_front>{front}</photo_front>"
        f"<photo_back>{back}</photo_back><meta><instanceID>{instance_id}</instanceID></meta>"
        "</data>"
    ).encode()


def new_instance_id() -> str:
    return f"uuid:{uuid.uuid4()}"


def with_device(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{DEVICE_QUERY}"


def parse(body: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(body, parser)


def openrosa_message(response: httpx.Response) -> str:
    """The first ``<message>`` of an OpenRosaResponse (what Collect shows)."""
    assert "text/xml" in response.headers["content-type"], response.headers
    assert response.headers.get("x-openrosa-version") == "1.0", response.headers
    root = parse(response.content)
    assert root.tag == f"{{{RESPONSE_NS}}}OpenRosaResponse", response.text
    message = root.find(f"{{{RESPONSE_NS}}}message")
    assert message is not None, response.text
    assert message.text, response.text
    return message.text


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_openrosa_headers(response: httpx.Response) -> None:
    assert response.headers.get("x-openrosa-version") == "1.0", response.headers
    assert response.headers.get("date"), response.headers


class Collect:
    """An HTTP client that behaves like ODK Collect's."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {
            "X-OpenRosa-Version": "1.0",
            "Date": BOGUS_DATE,
            "User-Agent": USER_AGENT,
        } | (extra or {})

    async def get(
        self, url: str, *, headers: dict[str, str] | None = None, follow: bool = True
    ) -> httpx.Response:
        return await self.http.get(
            with_device(url), headers=self._headers(headers), follow_redirects=follow
        )

    async def head(self, url: str) -> httpx.Response:
        return await self.http.head(with_device(url), headers=self._headers(None))

    async def submit(
        self,
        url: str,
        xml: bytes,
        attachments: Sequence[tuple[str, bytes, str]] = (),
        *,
        incomplete: bool = False,
    ) -> httpx.Response:
        """POST as Collect does: the XML part's file name is the instance's, not fixed."""
        files: list[tuple[str, tuple[str, bytes, str]]] = [
            ("xml_submission_file", ("Intake_2026-11-23_10-20-00.xml", xml, "text/xml")),
        ]
        files += [(name, (name, data, kind)) for name, data, kind in attachments]
        data = {"*isIncomplete*": "yes"} if incomplete else None
        return await self.http.post(
            with_device(url),
            files=files,
            data=data,
            headers=self._headers(None),
            follow_redirects=False,
        )


@dataclass
class CollectWorld:
    """A project with two published forms, and a phone (``collect``) set up for it.

    ``base`` is the server URL Collect was given: ``/v1/key/{token}/projects/{id}``
    for an app user, ``/v1/projects/{id}`` for a web user.
    """

    url: str
    runtime: Runtime
    admin: httpx.AsyncClient
    collect: Collect
    project_id: int
    submitter_id: int
    base: str

    async def form_pk(self, xml_form_id: str) -> int:
        async with self.runtime.transaction() as db:
            form_id = await db.scalar(
                select(Form.id).where(
                    Form.project_id == self.project_id, Form.xml_form_id == xml_form_id
                )
            )
        assert form_id is not None
        return form_id


async def sign_in_admin(admin: httpx.AsyncClient) -> None:
    """Sign the admin client in (POST /v1/sessions); it keeps the bearer token."""
    session = await admin.post(
        "/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert session.status_code == 200, session.text
    admin.headers["Authorization"] = f"Bearer {session.json()['token']}"


async def create_project_with_forms(admin: httpx.AsyncClient) -> int:
    """A project with ``intake`` (published at upload) and ``site_visit`` (draft, its
    media file attached, then published); returns the project id."""
    project = await admin.post("/v1/projects", json={"name": "Returns Albania"})
    assert project.status_code == 200, project.text
    pid: int = project.json()["id"]

    intake = await admin.post(
        f"/v1/projects/{pid}/forms?publish=true",
        content=INTAKE.read_bytes(),
        headers={"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": "intake"},
    )
    assert intake.status_code == 200, intake.text
    assert intake.json()["xmlFormId"] == "intake"

    draft = await admin.post(
        f"/v1/projects/{pid}/forms",
        content=site_visit_xlsx(),
        headers={"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": "site_visit"},
    )
    assert draft.status_code == 200, draft.text
    expected = await admin.get(f"/v1/projects/{pid}/forms/site_visit/draft/attachments")
    assert expected.status_code == 200, expected.text
    assert [(a["name"], a["exists"]) for a in expected.json()] == [("logo.png", False)]
    logo = await admin.post(
        f"/v1/projects/{pid}/forms/site_visit/draft/attachments/logo.png",
        content=LOGO_PNG,
        headers={"Content-Type": "image/png"},
    )
    assert logo.status_code == 200, logo.text
    published = await admin.post(f"/v1/projects/{pid}/forms/site_visit/draft/publish")
    assert published.status_code == 200, published.text
    return pid


async def create_app_user(admin: httpx.AsyncClient, pid: int) -> tuple[int, str]:
    """An app user assigned to both forms; returns (actor id, token)."""
    app_user = await admin.post(f"/v1/projects/{pid}/app-users", json={"displayName": "Phone 1"})
    assert app_user.status_code == 200, app_user.text
    actor_id: int = app_user.json()["id"]
    token: str = app_user.json()["token"]
    assert len(token) == 64
    # Role id 2 (as pyodk assigns) for one form, the system name for the other.
    for path in (
        f"/v1/projects/{pid}/forms/intake/assignments/2/{actor_id}",
        f"/v1/projects/{pid}/forms/site_visit/assignments/app-user/{actor_id}",
    ):
        assigned = await admin.post(path)
        assert assigned.status_code == 200, assigned.text
    return actor_id, token


@dataclass(frozen=True)
class Stored:
    submissions: list[Submission]
    defs: list[SubmissionDef]
    attachments: dict[int, dict[str, str | None]]  # def id -> name -> sha256


async def stored(world: CollectWorld, xml_form_id: str) -> Stored:
    form_id = await world.form_pk(xml_form_id)
    async with world.runtime.transaction() as db:
        submissions = list(
            await db.scalars(
                select(Submission).where(Submission.form_id == form_id).order_by(Submission.id)
            )
        )
        defs = list(
            await db.scalars(
                select(SubmissionDef)
                .join(Submission, Submission.id == SubmissionDef.submission_id)
                .where(Submission.form_id == form_id)
                .order_by(SubmissionDef.id)
            )
        )
        attachments: dict[int, dict[str, str | None]] = {d.id: {} for d in defs}
        for row in await db.scalars(
            select(SubmissionAttachment).where(
                SubmissionAttachment.submission_def_id.in_([d.id for d in defs])
            )
        ):
            attachments[row.submission_def_id][row.name] = row.blob_sha256
    return Stored(submissions, defs, attachments)


async def assert_blob(world: CollectWorld, data: bytes, content_type: str) -> None:
    """The blob row describes the bytes, and the store holds exactly them."""
    digest = sha256(data)
    async with world.runtime.transaction() as db:
        blob = await db.get(Blob, digest)
    assert blob is not None, f"no blobs row for {digest}"
    assert blob.md5 == md5(data)
    assert blob.size == len(data)
    assert blob.content_type == content_type
    assert await world.runtime.blobs.read_bytes(digest) == data


def xform_entries(body: bytes) -> dict[str, dict[str, str]]:
    root = parse(body)
    assert root.tag == f"{{{FORMS_LIST_NS}}}xforms"
    entries: dict[str, dict[str, str]] = {}
    for xform in root:
        assert xform.tag == f"{{{FORMS_LIST_NS}}}xform"
        fields: dict[str, str] = {}
        for child in xform:
            assert isinstance(child.tag, str)
            namespace, _, local = child.tag[1:].partition("}")
            assert namespace == FORMS_LIST_NS, child.tag
            fields[local] = child.text or ""
        entries[fields["formID"]] = fields
    return entries
