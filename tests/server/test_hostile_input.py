"""Hostile input to the submission and form-upload endpoints.

Every attack must end in a clear 4xx that names the problem, and must leave
nothing behind: no rows in the submission, form or blob tables, no audit
entries, and no new objects in the blob store.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import func, select

from server.app import create_app
from server.db.models import (
    Audit,
    Blob,
    Form,
    FormAttachment,
    FormDef,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.runtime import Runtime
from storage.filesystem import FilesystemBlobStore
from storage.s3 import S3BlobStore
from tests.server.conftest import XLSX, World, submission_xml

OPENROSA = {"X-OpenRosa-Version": "1.0"}
RESPONSE_NS = "{http://openrosa.org/http/response}"
BOUNDARY = "hw-test-boundary-7d1f"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
COUNTED = (
    Submission,
    SubmissionDef,
    SubmissionAttachment,
    Blob,
    Form,
    FormDef,
    FormAttachment,
    Audit,
)


# --- what is stored -------------------------------------------------------------


@dataclass(frozen=True)
class StoreState:
    rows: dict[str, int]
    blobs: frozenset[str]


async def blob_store_contents(runtime: Runtime) -> frozenset[str]:
    """Every object in the blob store (temporary leftovers included)."""
    store = runtime.blobs
    if isinstance(store, FilesystemBlobStore):
        if not store.root.exists():
            return frozenset()
        return frozenset(
            str(path.relative_to(store.root)) for path in store.root.rglob("*") if path.is_file()
        )
    assert isinstance(store, S3BlobStore)
    await store.ensure_bucket()
    objects = store._client.list_objects(store.bucket, recursive=True)
    return frozenset(str(item.object_name) for item in objects)


async def store_state(world: World) -> StoreState:
    async with world.runtime.transaction() as db:
        rows = {
            model.__tablename__: await db.scalar(select(func.count()).select_from(model)) or 0
            for model in COUNTED
        }
    return StoreState(rows, await blob_store_contents(world.runtime))


# --- sending --------------------------------------------------------------------


def part(name: str, data: bytes, *, filename: str | None = None, content_type: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    headers = f"Content-Disposition: {disposition}\r\n"
    if content_type:
        headers += f"Content-Type: {content_type}\r\n"
    return f"--{BOUNDARY}\r\n{headers}\r\n".encode() + data + b"\r\n"


def multipart_body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def xml_part(xml: bytes) -> bytes:
    return part("xml_submission_file", xml, filename="instance.xml", content_type="text/xml")


async def post_raw(
    world: World,
    body: bytes,
    *,
    content_type: str = MULTIPART,
    client: httpx.AsyncClient | None = None,
) -> httpx.Response:
    return await (client or world.client).post(
        f"{world.key_base}/submission",
        content=body,
        headers=OPENROSA | {"Content-Type": content_type},
    )


def message_of(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("text/xml"), response.text
    root = etree.fromstring(response.content)
    message = root.find(f"{RESPONSE_NS}message")
    assert message is not None
    assert message.text
    return message.text


def assert_refused(response: httpx.Response, status: int, *phrases: str, case: str = "") -> str:
    """A 4xx OpenRosa envelope whose message holds every phrase (case-insensitive)."""
    assert response.status_code == status, (case, response.text)
    message = message_of(response)
    for phrase in phrases:
        assert phrase.lower() in message.lower(), (case, message)
    return message


@pytest.fixture
async def baseline(world: World) -> AsyncIterator[StoreState]:
    """The store before the attack; the test's end asserts nothing changed."""
    before = await store_state(world)
    yield before
    assert await store_state(world) == before


# --- hostile XML -------------------------------------------------------------------

XXE_SUBMISSION = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<data id="simple" version="1"><name>&xxe;</name><age>3</age><photo/>
<meta><instanceID>uuid:xxe</instanceID></meta></data>"""

LAUGHS = b"""<!DOCTYPE data [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>"""

LAUGHS_SUBMISSION = (
    b'<?xml version="1.0"?>\n'
    + LAUGHS
    + b'\n<data id="simple" version="1"><name>&lol9;</name><age>3</age><photo/>'
    b"<meta><instanceID>uuid:laughs</instanceID></meta></data>"
)


HOSTILE_SUBMISSIONS = {
    "xxe": XXE_SUBMISSION,
    "billion-laughs": LAUGHS_SUBMISSION,
    "xxe-utf16": XXE_SUBMISSION.decode().encode("utf-16"),
    "xxe-utf32": XXE_SUBMISSION.replace(b'<?xml version="1.0"?>', b"").decode().encode("utf-32"),
}


async def test_entities_in_a_submission_are_refused(world: World, baseline: StoreState) -> None:
    for case, xml in HOSTILE_SUBMISSIONS.items():
        response = await post_raw(world, multipart_body(xml_part(xml)))
        message = assert_refused(response, 400, "submission", "DOCTYPE", case=case)
        assert "root:" not in response.text
        assert "lol" not in message


def xform_with(prolog: bytes, name_value: bytes) -> bytes:
    return (
        b'<?xml version="1.0"?>\n' + prolog + b"\n"
        b'<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">'
        b"<h:head><h:title>Evil</h:title><model><instance>"
        b'<data id="evil"><name>' + name_value + b"</name><meta><instanceID/></meta></data>"
        b'</instance><bind nodeset="/data/name" type="string"/></model></h:head>'
        b'<h:body><input ref="/data/name"><label>Name</label></input></h:body></h:html>'
    )


HOSTILE_XFORMS = {
    "xxe": xform_with(b'<!DOCTYPE h:html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', b"&xxe;"),
    "billion-laughs": xform_with(LAUGHS.replace(b"data [", b"h:html ["), b"&lol9;"),
}


async def test_entities_in_an_uploaded_xform_are_refused(
    world: World, baseline: StoreState
) -> None:
    for case, xform in HOSTILE_XFORMS.items():
        for publish in ("true", "false"):
            response = await world.client.post(
                f"/v1/projects/{world.project_id}/forms?publish={publish}",
                content=xform,
                headers=world.admin_headers | {"Content-Type": "application/xml"},
            )
            assert response.status_code == 400, (case, response.text)
            problem = response.json()
            assert problem["code"] == 400.1
            assert "XForm" in problem["message"]
            assert "DOCTYPE" in problem["message"]
            assert "root:" not in response.text


# --- size limits ---------------------------------------------------------------------


@pytest.fixture
async def small_client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database and store, accepting 4 kB submissions."""
    small = msgspec.structs.replace(world.runtime.settings, max_submission_bytes=4000)
    app = create_app(small, runtime=world.runtime)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_oversized_submission_is_413(
    world: World, small_client: httpx.AsyncClient, baseline: StoreState
) -> None:
    body = multipart_body(
        xml_part(submission_xml("uuid:big")),
        part("p.jpg", b"\xff" * 20_000, filename="p.jpg", content_type="image/jpeg"),
    )
    response = await post_raw(world, body, client=small_client)
    assert_refused(response, 413)


async def test_oversized_submission_without_content_length_is_413(
    world: World, small_client: httpx.AsyncClient, baseline: StoreState
) -> None:
    body = multipart_body(
        xml_part(submission_xml("uuid:chunked")),
        part("p.jpg", b"\xff" * 20_000, filename="p.jpg", content_type="image/jpeg"),
    )

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = await small_client.post(
        f"{world.key_base}/submission",
        content=chunks(),
        headers=OPENROSA | {"Content-Type": MULTIPART},
    )
    assert "content-length" not in response.request.headers
    assert_refused(response, 413)


async def test_small_submission_passes_the_small_limit(
    world: World, small_client: httpx.AsyncClient
) -> None:
    body = multipart_body(
        xml_part(submission_xml("uuid:small")),
        part("p.jpg", b"\xff" * 500, filename="p.jpg", content_type="image/jpeg"),
    )
    response = await post_raw(world, body, client=small_client)
    assert response.status_code == 201, response.text


@cache
def zip_bomb() -> bytes:
    """A 'workbook' of ~200 kB whose one sheet unpacks to 200 MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(200):
                member.write(chunk)
    return buffer.getvalue()


async def test_zip_bomb_xlsform_is_refused(world: World, baseline: StoreState) -> None:
    bomb = zip_bomb()
    assert len(bomb) < 1_000_000
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=bomb,
        headers=world.admin_headers | {"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": "bomb"},
    )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert "XLSForm" in problem["message"]
    assert "MB" in problem["message"] or "zip bomb" in problem["message"]


async def test_well_compressed_member_is_refused(world: World, baseline: StoreState) -> None:
    """Below the total limit, but a ratio no real workbook has."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 20_000_000)
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=buffer.getvalue(),
        headers=world.admin_headers | {"Content-Type": XLSX},
    )
    assert response.status_code == 400, response.text
    assert "zip bomb" in response.json()["message"]


async def test_damaged_xlsform_is_refused(world: World, baseline: StoreState) -> None:
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=b"PK\x03\x04 this is not really a zip",
        headers=world.admin_headers | {"Content-Type": XLSX},
    )
    assert response.status_code == 400, response.text
    assert "XLSForm" in response.json()["message"]


# --- attachment names ------------------------------------------------------------------


PATH_NAMES = [
    "../../etc/passwd",
    "/abs",
    "a/b.jpg",
    "..",
    "dir/../p.jpg",
    "evil\x01.jpg",
    "x" * 300,
]


async def test_attachment_names_that_are_paths_are_refused(
    world: World, baseline: StoreState
) -> None:
    for name in PATH_NAMES:
        body = multipart_body(
            xml_part(submission_xml("uuid:traversal", photo="p.jpg")),
            part(name, b"evil bytes", filename=name, content_type="image/jpeg"),
        )
        response = await post_raw(world, body)
        message = assert_refused(response, 400, "attachment", case=name)
        assert name[:40] in message or repr(name)[1:41] in message, message


async def test_backslash_in_an_attachment_name_is_refused(
    world: World, baseline: StoreState
) -> None:
    # Sent unescaped, as a browser never would but a script might.
    body = multipart_body(
        xml_part(submission_xml("uuid:backslash")),
        part("a\\b", b"evil bytes", content_type="image/jpeg"),
    )
    response = await post_raw(world, body)
    assert_refused(response, 400, "attachment", "a\\\\b")


async def test_path_in_filename_with_a_plain_part_name_is_refused(
    world: World, baseline: StoreState
) -> None:
    body = multipart_body(
        xml_part(submission_xml("uuid:filename")),
        part("p.jpg", b"evil bytes", filename="../p.jpg", content_type="image/jpeg"),
    )
    response = await post_raw(world, body)
    assert_refused(response, 400, "attachment", "../p.jpg")


# --- malformed requests ------------------------------------------------------------------


MALFORMED: dict[str, tuple[str, bytes, str]] = {
    "wrong-boundary": (
        "multipart/form-data; boundary=somethingelse",
        multipart_body(xml_part(submission_xml("uuid:b1"))),
        "multipart",
    ),
    "no-boundary": (
        "multipart/form-data",
        multipart_body(xml_part(submission_xml("uuid:b2"))),
        "boundary",
    ),
    "truncated": (
        MULTIPART,
        multipart_body(xml_part(submission_xml("uuid:b3")))[:-30],
        "multipart",
    ),
    "part-without-name": (
        MULTIPART,
        f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),
        "neither a name nor a file name",
    ),
    "bad-part-header": (
        MULTIPART,
        f"--{BOUNDARY}\r\nthis is no header line\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),
        "multipart",
    ),
    "empty": (MULTIPART, b"", "multipart"),
    "too-many-parts": (
        MULTIPART,
        multipart_body(
            xml_part(submission_xml("uuid:b4")),
            *(part(f"f{n}.jpg", b"x", filename=f"f{n}.jpg") for n in range(1100)),
        ),
        "multipart",
    ),
    "json": ("application/json", b'{"xml_submission_file": "..."}', "multipart"),
    "urlencoded": (
        "application/x-www-form-urlencoded",
        b"xml_submission_file=%3Cdata%2F%3E",
        "multipart",
    ),
}


async def test_malformed_multipart_is_400(world: World, baseline: StoreState) -> None:
    for case, (content_type, body, phrase) in MALFORMED.items():
        response = await post_raw(world, body, content_type=content_type)
        assert_refused(response, 400, phrase, case=case)


async def test_missing_xml_part_is_400(world: World, baseline: StoreState) -> None:
    body = multipart_body(part("p.jpg", b"photo", filename="p.jpg", content_type="image/jpeg"))
    response = await post_raw(world, body)
    assert_refused(response, 400, "xml_submission_file")
    # The photo was spooled before the request failed; its temporary file is gone.
    spool = world.runtime.settings.data_dir / "tmp"
    assert list(spool.glob("upload-*")) == []


GARBAGE: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "binary": (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", ("not well-formed",)),
    "text": (b"hello, world", ("not well-formed",)),
    "empty": (b"", ("empty",)),
    "unclosed": (b"<data id='simple'><name>unclosed</data>", ("line 1",)),
    "no-form-id": (b"<data><meta><instanceID>u</instanceID></meta></data>", ("id attribute",)),
    "deep": (
        b'<data id="simple"><meta><instanceID>uuid:deep</instanceID></meta>'
        + b"<g>" * 100
        + b"x"
        + b"</g>" * 100
        + b"</data>",
        ("levels deep",),
    ),
    "bad-encoding": (b'<?xml version="1.0" encoding="no-such"?><data id="simple"/>', ()),
}


async def test_garbage_as_the_xml_part_is_400(world: World, baseline: StoreState) -> None:
    for case, (xml, phrases) in GARBAGE.items():
        response = await post_raw(world, multipart_body(xml_part(xml)))
        assert_refused(response, 400, "submission", *phrases, case=case)


async def test_submission_without_instance_id_is_400(world: World, baseline: StoreState) -> None:
    for xml in (
        b'<data id="simple" version="1"><name>A</name></data>',
        b'<data id="simple" version="1"><meta><instanceID>  </instanceID></meta></data>',
        b'<data id="simple" version="1"><meta><deprecatedID>uuid:1</deprecatedID></meta></data>',
    ):
        response = await post_raw(world, multipart_body(xml_part(xml)))
        assert_refused(response, 400, "instanceID", case=xml.decode())


LONG = "x" * 300


async def test_over_long_identifiers_are_400(world: World, baseline: StoreState) -> None:
    """Longer than their columns: PostgreSQL would refuse them with a 500."""
    for phrase, xml in {
        "instanceID": submission_xml(f"uuid:{LONG}"),
        "attachment": submission_xml("uuid:long-photo", photo=f"{LONG}.jpg"),
        "deprecatedID": submission_xml("uuid:long-edit", deprecated_id=f"uuid:{LONG}"),
    }.items():
        response = await post_raw(world, multipart_body(xml_part(xml)))
        assert_refused(response, 400, phrase, "255 characters", case=phrase)


async def test_hostile_device_id_user_agent_and_content_type_are_tamed(world: World) -> None:
    body = multipart_body(
        xml_part(submission_xml("uuid:long-device")),
        part("p.jpg", b"photo", filename="p.jpg", content_type="image/" + "j" * 400),
    )
    response = await world.client.post(
        f"{world.key_base}/submission?deviceID={'d' * 1000}%00%01end",
        content=body,
        headers=OPENROSA | {"Content-Type": MULTIPART, "User-Agent": "u" * 2000},
    )
    assert response.status_code == 201, response.text
    async with world.runtime.transaction() as db:
        row = await db.scalar(select(Submission))
        blob = await db.scalar(select(Blob))
    assert row is not None
    assert row.device_id == "d" * 255
    assert row.user_agent == "u" * 512
    assert blob is not None
    assert blob.content_type == "application/octet-stream"


async def test_messages_quoting_control_characters_still_render(world: World) -> None:
    """An error message that echoes the URL must not break the XML envelope."""
    response = await world.client.patch(
        f"/v1/projects/{world.project_id}/forms/sim%01ple",
        json={"state": 5},
        headers=world.admin_headers | OPENROSA,
    )
    message = assert_refused(response, 400, "not valid")
    assert "\ufffd" in message


# --- property: no input makes the server fail ----------------------------------------------

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(data=st.binary(max_size=2000))
async def test_random_bytes_as_the_xml_part_never_5xx(world: World, data: bytes) -> None:
    response = await post_raw(world, multipart_body(xml_part(data)))
    assert response.status_code < 500, response.text
    message_of(response)


xml_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@FUZZ
@given(instance_id=xml_text, name=xml_text, photo=xml_text, version=xml_text)
async def test_random_values_in_submission_xml_never_5xx(
    world: World, instance_id: str, name: str, photo: str, version: str
) -> None:
    root = etree.Element("data", id="simple", version=_xml_safe(version))
    etree.SubElement(root, "name").text = _xml_safe(name)
    etree.SubElement(root, "photo").text = _xml_safe(photo)
    meta = etree.SubElement(root, "meta")
    etree.SubElement(meta, "instanceID").text = _xml_safe(instance_id)
    response = await post_raw(world, multipart_body(xml_part(etree.tostring(root))))
    assert response.status_code < 500, response.text
    message_of(response)


def _xml_safe(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry at all."""
    return "".join(
        c
        for c in text
        if c in "\t\n\r" or ("\x20" <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c > "\uffff"
    )


async def test_nul_bytes_in_path_or_query_are_not_server_errors(world: World) -> None:
    path = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/sim%00ple", headers=world.admin_headers
    )
    assert path.status_code == 404
    assert path.json()["code"] == 404.1
    # In a query: SQLite finds nothing; PostgreSQL cannot compare it, a 400.
    query = await world.client.get("/v1/users?q=a%00b", headers=world.admin_headers)
    assert query.status_code in (200, 400)
    assert query.json() == [] or query.json()["code"] == 400.8


async def test_nul_bytes_in_a_json_body_are_a_400_not_a_crash(world: World) -> None:
    response = await world.client.post(
        "/v1/projects", json={"name": "Re\x00turns"}, headers=world.admin_headers
    )
    # SQLite stores the character; PostgreSQL cannot, and the answer is then a 400.
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["code"] == 400.8


# --- limits enforced before the body is read ------------------------------------


def assert_json_refused(response: httpx.Response, status: int, phrase: str) -> None:
    assert response.status_code == status, response.text
    assert phrase in response.json()["message"], response.text


@dataclass
class RawCall:
    status: int
    headers: dict[str, str]
    body: bytes
    body_was_read: bool


async def call_without_body(
    app: object, method: str, path: str, headers: dict[str, str], query: str = ""
) -> RawCall:
    """One ASGI request whose body never arrives: a handler that waited for it
    would see the receive channel called."""
    read: list[bool] = []
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        read.append(True)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("192.0.2.50", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)  # type: ignore[operator]
    start = next(m for m in sent if m["type"] == "http.response.start")
    raw_headers = start["headers"]
    assert isinstance(raw_headers, list)
    body = b"".join(
        m.get("body", b"")  # type: ignore[misc]
        for m in sent
        if m["type"] == "http.response.body"
    )
    return RawCall(
        int(start["status"]),  # type: ignore[call-overload]
        {k.decode(): v.decode() for k, v in raw_headers},
        body,
        bool(read),
    )


async def test_anonymous_large_submission_put_is_401_without_reading_it(
    world: World, app: object
) -> None:
    path = f"/v1/projects/{world.project_id}/forms/simple/submissions/uuid:big"
    answer = await call_without_body(
        app, "PUT", path, {"Content-Type": "application/xml", "Content-Length": "20000000"}
    )
    assert answer.status == 401
    assert not answer.body_was_read
    assert msgspec.json.decode(answer.body)["code"] == 401.4


async def test_bad_credentials_with_a_body_are_401_without_reading_it(
    world: World, app: object
) -> None:
    path = f"/v1/projects/{world.project_id}/forms/simple/submissions"
    answer = await call_without_body(
        app,
        "POST",
        path,
        {
            "Content-Type": "application/xml",
            "Content-Length": "20000000",
            "Authorization": "Bearer not-a-session",
        },
    )
    assert answer.status == 401
    assert not answer.body_was_read


async def test_a_declared_oversized_body_is_413_without_waiting_for_it(
    world: World, app: object
) -> None:
    path = f"{world.key_base}/submission"
    answer = await call_without_body(
        app,
        "POST",
        path,
        {
            "Content-Type": MULTIPART,
            "Content-Length": str(world.runtime.settings.max_submission_bytes + 1),
            "X-OpenRosa-Version": "1.0",
        },
    )
    assert answer.status == 413
    assert not answer.body_was_read
    json_answer = await call_without_body(
        app,
        "POST",
        "/v1/projects",
        world.admin_headers | {"Content-Type": "application/json", "Content-Length": "90000000"},
    )
    assert json_answer.status == 413
    assert not json_answer.body_was_read


async def test_deeply_nested_json_is_400_not_500(world: World) -> None:
    for body in (b'{"name":' + b"[" * 5000 + b"]" * 5000 + b"}", b"[" * 100_000):
        response = await world.client.post(
            "/v1/projects",
            content=body,
            headers=world.admin_headers | {"Content-Type": "application/json"},
        )
        assert_json_refused(response, 400, "nests arrays and objects more than 64 deep")
    # Brackets inside strings are text, not nesting.
    named = await world.client.post(
        "/v1/projects", json={"name": "[" * 200}, headers=world.admin_headers
    )
    assert named.status_code == 200, named.text


async def test_deeply_nested_odata_filter_is_400_not_500(world: World) -> None:
    feed = f"/v1/projects/{world.project_id}/forms/simple.svc/Submissions"
    deep = "(" * 3000 + "__system/submitterId eq 1" + ")" * 3000
    response = await world.client.get(feed, params={"$filter": deep}, headers=world.admin_headers)
    assert_json_refused(response, 400, "nests parentheses 3000 deep")
    chained = " and ".join(["__system/submitterId eq 1"] * 1000)
    response = await world.client.get(
        feed, params={"$filter": chained}, headers=world.admin_headers
    )
    assert_json_refused(response, 400, "and/or/not operators")
    negated = "not " * 3000 + "__system/submitterId eq 1"
    response = await world.client.get(
        feed, params={"$filter": negated}, headers=world.admin_headers
    )
    assert_json_refused(response, 400, "and/or/not operators")
    fine = await world.client.get(
        feed, params={"$filter": "((__system/submitterId eq 1))"}, headers=world.admin_headers
    )
    assert fine.status_code == 200, fine.text


async def test_a_request_with_too_many_headers_is_431(world: World, app: object) -> None:
    many = {f"X-Filler-{n}": "x" for n in range(150)}
    answer = await call_without_body(app, "GET", "/v1/projects", world.admin_headers | many)
    assert answer.status == 431
    assert msgspec.json.decode(answer.body)["code"] == 431.1
