"""OpenRosa submissions as ODK Collect sends them, through the app-user key path.

Collect treats any success other than 201/202 as a failure and shows the first
``<message>`` of the OpenRosa envelope to the field worker, on errors too.
"""

from __future__ import annotations

import asyncio
import base64

import httpx
from lxml import etree
from sqlalchemy import select

from server.db.models import Submission, SubmissionAttachment, SubmissionDef
from tests.server.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, World, submission_xml
from tests.server.test_hostile_input import store_state

OPENROSA = {"X-OpenRosa-Version": "1.0"}
RESPONSE_NS = "{http://openrosa.org/http/response}"

Files = dict[str, tuple[str, bytes, str]]


def xml_part(xml: bytes) -> Files:
    return {"xml_submission_file": ("instance.xml", xml, "text/xml")}


async def submit(
    world: World,
    xml: bytes,
    attachments: dict[str, bytes] | None = None,
    *,
    incomplete: bool = False,
    base: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    files = xml_part(xml)
    for name, data in (attachments or {}).items():
        files[name] = (name, data, "image/jpeg")
    return await world.client.post(
        f"{base or world.key_base}/submission{query}",
        files=files,
        data={"*isIncomplete*": "yes"} if incomplete else None,
        headers=OPENROSA | (headers or {}),
    )


def message_of(response: httpx.Response) -> str:
    """The text Collect would show: the first <message> of an OpenRosaResponse."""
    assert response.headers["content-type"].startswith("text/xml"), response.headers
    assert response.headers["x-openrosa-version"] == "1.0"
    root = etree.fromstring(response.content)
    assert root.tag == f"{RESPONSE_NS}OpenRosaResponse"
    message = root.find(f"{RESPONSE_NS}message")
    assert message is not None
    assert message.text
    return message.text


def assert_created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return message_of(response)


async def submission_rows(world: World) -> list[Submission]:
    async with world.runtime.transaction() as db:
        return list(await db.scalars(select(Submission).order_by(Submission.id)))


async def defs_of(world: World, instance_id: str) -> list[SubmissionDef]:
    async with world.runtime.transaction() as db:
        submission_id = await db.scalar(
            select(Submission.id).where(Submission.instance_id == instance_id)
        )
        return list(
            await db.scalars(
                select(SubmissionDef)
                .where(SubmissionDef.submission_id == submission_id)
                .order_by(SubmissionDef.id)
            )
        )


async def attachments_of(world: World, submission_def_id: int) -> dict[str, str | None]:
    async with world.runtime.transaction() as db:
        rows = await db.scalars(
            select(SubmissionAttachment).where(
                SubmissionAttachment.submission_def_id == submission_def_id
            )
        )
        return {row.name: row.blob_sha256 for row in rows}


async def blob_bytes(world: World, sha256: str | None) -> bytes:
    assert sha256 is not None
    return await world.runtime.blobs.read_bytes(sha256)


async def set_state(world: World, state: str) -> None:
    response = await world.client.patch(
        f"/v1/projects/{world.project_id}/forms/simple",
        json={"state": state},
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text


# The form "photo_pair" has two binary fields, for split uploads.
PAIR_FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa">
<h:head><h:title>Pair</h:title><model>
<instance><data id="pair" version="3"><front/><back/><meta><instanceID/></meta></data></instance>
<bind nodeset="/data/front" type="binary"/><bind nodeset="/data/back" type="binary"/>
<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
</model></h:head>
<h:body><upload ref="/data/front" mediatype="image/*"><label>Front</label></upload>
<upload ref="/data/back" mediatype="image/*"><label>Back</label></upload></h:body></h:html>"""


def pair_xml(instance_id: str) -> bytes:
    return (
        f'<data id="pair" version="3"><front>front.jpg</front><back>back.jpg</back>'
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


async def publish_pair_form(world: World) -> None:
    created = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true",
        content=PAIR_FORM,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert created.status_code == 200, created.text
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/pair/assignments/app-user/{world.app_user_id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text


# --- creating and resending -------------------------------------------------------


async def test_new_submission_is_201_with_openrosa_envelope(world: World) -> None:
    response = await submit(world, submission_xml("uuid:new"), {"p.jpg": b"photo"})
    assert_created(response)
    rows = await submission_rows(world)
    assert [row.instance_id for row in rows] == ["uuid:new"]
    assert rows[0].submitter_id == world.app_user_id
    assert rows[0].review_state is None
    (only,) = await defs_of(world, "uuid:new")
    assert only.current is True
    assert only.xml == submission_xml("uuid:new")


async def test_identical_resend_is_201_and_stores_nothing_twice(world: World) -> None:
    xml = submission_xml("uuid:again")
    assert_created(await submit(world, xml, {"p.jpg": b"photo"}))
    before = await store_state(world)
    assert_created(await submit(world, xml, {"p.jpg": b"photo"}))
    assert_created(await submit(world, xml))
    after = await store_state(world)
    assert after.rows == before.rows
    assert after.blobs == before.blobs
    assert len(await submission_rows(world)) == 1
    assert len(await defs_of(world, "uuid:again")) == 1


async def test_different_xml_same_instance_id_is_409(world: World) -> None:
    assert_created(await submit(world, submission_xml("uuid:dup", name="Arta")))
    before = await store_state(world)
    response = await submit(world, submission_xml("uuid:dup", name="Besa"))
    assert response.status_code == 409, response.text
    assert "same instanceID" in message_of(response)
    assert await store_state(world) == before
    (only,) = await defs_of(world, "uuid:dup")
    assert b"Arta" in only.xml


async def test_split_upload_stores_every_attachment(world: World) -> None:
    await publish_pair_form(world)
    xml = pair_xml("uuid:split")
    first = await submit(world, xml, {"front.jpg": b"front-bytes"}, incomplete=True)
    assert_created(first)
    (only,) = await defs_of(world, "uuid:split")
    partial = await attachments_of(world, only.id)
    assert partial.keys() == {"front.jpg", "back.jpg"}
    assert partial["back.jpg"] is None
    second = await submit(world, xml, {"back.jpg": b"back-bytes"})
    assert_created(second)
    stored = await attachments_of(world, only.id)
    assert await blob_bytes(world, stored["front.jpg"]) == b"front-bytes"
    assert await blob_bytes(world, stored["back.jpg"]) == b"back-bytes"
    assert len(await submission_rows(world)) == 1


async def test_message_names_attachments_still_missing(world: World) -> None:
    await publish_pair_form(world)
    response = await submit(world, pair_xml("uuid:half"), {"front.jpg": b"front"})
    assert "back.jpg" in assert_created(response)


async def test_success_is_never_200(world: World) -> None:
    xml = submission_xml("uuid:codes")
    statuses = [
        (await submit(world, xml, {"p.jpg": b"x"}, incomplete=True)).status_code,
        (await submit(world, xml, {"p.jpg": b"x"})).status_code,
        (await submit(world, xml)).status_code,
        (
            await submit(world, submission_xml("uuid:codes-2", deprecated_id="uuid:codes"))
        ).status_code,
    ]
    assert statuses == [201, 201, 201, 201]


async def test_device_id_and_user_agent_are_stored(world: World) -> None:
    response = await submit(
        world,
        submission_xml("uuid:device"),
        query="?deviceID=collect%3AxYz123",
        headers={"User-Agent": "org.odk.collect.android/v2026.3.0"},
    )
    assert_created(response)
    (row,) = await submission_rows(world)
    assert row.device_id == "collect:xYz123"
    assert row.user_agent == "org.odk.collect.android/v2026.3.0"


async def test_unexpected_attachment_is_ignored(world: World) -> None:
    before = await store_state(world)
    response = await submit(
        world, submission_xml("uuid:extra"), {"p.jpg": b"photo", "stray.bin": b"not referenced"}
    )
    assert_created(response)
    (only,) = await defs_of(world, "uuid:extra")
    stored = await attachments_of(world, only.id)
    assert stored.keys() == {"p.jpg"}
    after = await store_state(world)
    # Only the photo became a blob; the stray file was never written to the store.
    assert len(after.blobs - before.blobs) == 1
    assert after.rows["blobs"] == before.rows["blobs"] + 1


# --- edits (deprecatedID) ---------------------------------------------------------


async def test_edit_makes_a_new_current_version_and_carries_attachments(world: World) -> None:
    assert_created(await submit(world, submission_xml("uuid:v1"), {"p.jpg": b"original photo"}))
    edited = submission_xml("uuid:v2", name="Edited", deprecated_id="uuid:v1")
    assert_created(await submit(world, edited))
    (row,) = await submission_rows(world)
    assert row.instance_id == "uuid:v1"  # the logical id stays the first instanceID
    assert row.review_state == "edited"
    old, new = await defs_of(world, "uuid:v1")
    assert (old.instance_id, old.current) == ("uuid:v1", False)
    assert (new.instance_id, new.current, new.deprecated_id) == ("uuid:v2", True, "uuid:v1")
    carried = await attachments_of(world, new.id)
    assert await blob_bytes(world, carried["p.jpg"]) == b"original photo"


async def test_edit_with_a_new_photo_replaces_it(world: World) -> None:
    assert_created(await submit(world, submission_xml("uuid:p1"), {"p.jpg": b"old photo"}))
    edited = submission_xml("uuid:p2", photo="q.jpg", deprecated_id="uuid:p1")
    assert_created(await submit(world, edited, {"q.jpg": b"new photo"}))
    _, new = await defs_of(world, "uuid:p1")
    stored = await attachments_of(world, new.id)
    assert stored.keys() == {"q.jpg"}
    assert await blob_bytes(world, stored["q.jpg"]) == b"new photo"


async def test_editing_a_version_that_was_already_edited_is_409(world: World) -> None:
    assert_created(await submit(world, submission_xml("uuid:e1")))
    assert_created(await submit(world, submission_xml("uuid:e2", deprecated_id="uuid:e1")))
    before = await store_state(world)
    response = await submit(world, submission_xml("uuid:e3", deprecated_id="uuid:e1"))
    assert response.status_code == 409, response.text
    assert "uuid:e1" in message_of(response)
    assert await store_state(world) == before


async def test_edit_of_an_unknown_submission_is_404(world: World) -> None:
    before = await store_state(world)
    response = await submit(world, submission_xml("uuid:x2", deprecated_id="uuid:nowhere"))
    assert response.status_code == 404, response.text
    assert "uuid:nowhere" in message_of(response)
    assert await store_state(world) == before


async def test_resending_an_edit_is_idempotent(world: World) -> None:
    assert_created(await submit(world, submission_xml("uuid:r1")))
    edited = submission_xml("uuid:r2", name="Edited", deprecated_id="uuid:r1")
    assert_created(await submit(world, edited))
    before = await store_state(world)
    assert_created(await submit(world, edited))
    assert await store_state(world) == before


async def test_resending_the_original_after_an_edit_is_idempotent(world: World) -> None:
    original = submission_xml("uuid:o1")
    assert_created(await submit(world, original, {"p.jpg": b"photo"}))
    assert_created(await submit(world, submission_xml("uuid:o2", deprecated_id="uuid:o1")))
    before = await store_state(world)
    assert_created(await submit(world, original, {"p.jpg": b"photo"}))
    assert await store_state(world) == before
    _, current = await defs_of(world, "uuid:o1")
    assert current.instance_id == "uuid:o2"
    assert current.current is True


async def test_edit_attachments_may_arrive_in_a_split_upload(world: World) -> None:
    await publish_pair_form(world)
    assert_created(
        await submit(world, pair_xml("uuid:s1"), {"front.jpg": b"f1", "back.jpg": b"b1"})
    )
    edit = pair_xml("uuid:s2").replace(
        b"</instanceID>", b"</instanceID><deprecatedID>uuid:s1</deprecatedID>"
    )
    assert_created(await submit(world, edit, {"front.jpg": b"f2"}, incomplete=True))
    assert_created(await submit(world, edit, {"back.jpg": b"b2"}))
    _, new = await defs_of(world, "uuid:s1")
    stored = await attachments_of(world, new.id)
    assert await blob_bytes(world, stored["front.jpg"]) == b"f2"
    assert await blob_bytes(world, stored["back.jpg"]) == b"b2"


async def test_changed_xml_for_an_edit_already_received_is_409(world: World) -> None:
    assert_created(await submit(world, submission_xml("uuid:c1")))
    assert_created(await submit(world, submission_xml("uuid:c2", deprecated_id="uuid:c1")))
    changed = submission_xml("uuid:c2", name="Other", deprecated_id="uuid:c1")
    response = await submit(world, changed)
    assert response.status_code == 409, response.text
    assert "same instanceID" in message_of(response)


# --- forms and their states -------------------------------------------------------


async def test_unknown_form_version_is_404_naming_it(world: World) -> None:
    before = await store_state(world)
    response = await submit(world, submission_xml("uuid:ver", version="2024-ghost"))
    assert response.status_code == 404, response.text
    assert "2024-ghost" in message_of(response)
    assert await store_state(world) == before


async def test_unknown_form_is_404(world: World) -> None:
    xml = b'<data id="nosuchform"><meta><instanceID>uuid:nf</instanceID></meta></data>'
    before = await store_state(world)
    response = await submit(world, xml)
    assert response.status_code == 404, response.text
    message_of(response)
    assert await store_state(world) == before


async def test_closed_form_refuses_submissions_and_stores_nothing(world: World) -> None:
    await set_state(world, "closed")
    before = await store_state(world)
    response = await submit(world, submission_xml("uuid:closed"), {"p.jpg": b"photo"})
    assert response.status_code == 409, response.text
    assert "no longer accepts" in message_of(response)
    assert await store_state(world) == before


async def test_closing_form_accepts_submissions_but_leaves_form_list(world: World) -> None:
    await set_state(world, "closing")
    assert_created(await submit(world, submission_xml("uuid:closing")))
    listing = await world.client.get(f"{world.key_base}/formList", headers=OPENROSA)
    assert listing.status_code == 200
    assert b"simple" not in listing.content
    await set_state(world, "open")
    listing = await world.client.get(f"{world.key_base}/formList", headers=OPENROSA)
    assert b"<formID>simple</formID>" in listing.content


# --- the submission endpoint and who may use it ----------------------------------


async def test_head_is_204_with_openrosa_headers(world: World) -> None:
    response = await world.client.head(f"{world.key_base}/submission", headers=OPENROSA)
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["x-openrosa-version"] == "1.0"
    assert response.headers["x-openrosa-accept-content-length"] == "100000000"


async def test_plain_path_without_credentials_is_401_with_challenge(world: World) -> None:
    plain = f"/v1/projects/{world.project_id}"
    for response in (
        await world.client.head(f"{plain}/submission", headers=OPENROSA),
        await submit(world, submission_xml("uuid:anon"), base=plain),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic ")
    assert await submission_rows(world) == []


def basic(email: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_basic_over_plain_http_is_refused(world: World) -> None:
    plain = f"/v1/projects/{world.project_id}"
    response = await submit(
        world, submission_xml("uuid:basic"), base=plain, headers=basic(ADMIN_EMAIL, ADMIN_PASSWORD)
    )
    assert response.status_code == 401
    assert "HTTPS" in message_of(response)
    assert "www-authenticate" in response.headers
    assert await submission_rows(world) == []


async def test_basic_over_https_is_accepted(world: World) -> None:
    # Behind a TLS proxy uvicorn hands the app an https scheme (for proxies it
    # trusts); here the test client connects with https itself.
    tls = f"https://testserver/v1/projects/{world.project_id}"
    claimed = await world.client.head(
        f"/v1/projects/{world.project_id}/submission",
        headers=OPENROSA | {"X-Forwarded-Proto": "https"} | basic(ADMIN_EMAIL, ADMIN_PASSWORD),
    )
    assert claimed.status_code == 401  # the client's own claim of TLS is not believed
    head = await world.client.head(
        f"{tls}/submission", headers=OPENROSA | basic(ADMIN_EMAIL, ADMIN_PASSWORD)
    )
    assert head.status_code == 204
    response = await submit(
        world,
        submission_xml("uuid:proxied"),
        base=tls,
        headers=basic(ADMIN_EMAIL, ADMIN_PASSWORD),
    )
    assert_created(response)
    wrong = await submit(
        world,
        submission_xml("uuid:wrong-password"),
        base=tls,
        headers=basic(ADMIN_EMAIL, "not the password"),
    )
    assert wrong.status_code == 401
    assert [row.instance_id for row in await submission_rows(world)] == ["uuid:proxied"]


async def test_wrong_key_is_403_with_a_message(world: World) -> None:
    base = f"/v1/key/{'x' * 64}/projects/{world.project_id}"
    for response in (
        await world.client.head(f"{base}/submission", headers=OPENROSA),
        await submit(world, submission_xml("uuid:wrongkey"), base=base),
    ):
        assert response.status_code == 403
        assert "www-authenticate" not in response.headers
        if response.request.method == "POST":
            assert "QR code" in message_of(response)
    assert await submission_rows(world) == []


async def test_revoked_app_user_is_403(world: World) -> None:
    revoked = await world.client.delete(
        f"/v1/projects/{world.project_id}/app-users/{world.app_user_id}",
        headers=world.admin_headers,
    )
    assert revoked.status_code == 200, revoked.text
    response = await submit(world, submission_xml("uuid:revoked"))
    assert response.status_code == 403
    message_of(response)
    assert await submission_rows(world) == []


async def test_key_of_another_project_is_403(world: World) -> None:
    other = await world.client.post(
        "/v1/projects", json={"name": "Other"}, headers=world.admin_headers
    )
    base = f"/v1/key/{world.app_user_token}/projects/{other.json()['id']}"
    response = await submit(world, submission_xml("uuid:other-project"), base=base)
    assert response.status_code == 403
    message_of(response)


async def test_app_user_not_assigned_to_the_form_is_403(world: World) -> None:
    created = await world.client.post(
        f"/v1/projects/{world.project_id}/app-users",
        json={"displayName": "Phone 2"},
        headers=world.admin_headers,
    )
    assert created.status_code == 200, created.text
    base = f"/v1/key/{created.json()['token']}/projects/{world.project_id}"
    listing = await world.client.get(f"{base}/formList", headers=OPENROSA)
    assert b"simple" not in listing.content
    before = await store_state(world)
    response = await submit(world, submission_xml("uuid:unassigned"), base=base)
    assert response.status_code == 403
    message_of(response)
    assert await store_state(world) == before


async def test_two_phones_editing_the_same_version_at_once(world: World) -> None:
    assert_created(await submit(world, submission_xml("uuid:race")))
    responses = await asyncio.gather(
        submit(world, submission_xml("uuid:race-a", name="A", deprecated_id="uuid:race")),
        submit(world, submission_xml("uuid:race-b", name="B", deprecated_id="uuid:race")),
    )
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    defs = await defs_of(world, "uuid:race")
    assert len(defs) == 2
    assert [d.current for d in defs] == [False, True]
