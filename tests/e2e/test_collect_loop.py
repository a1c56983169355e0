"""ODK Collect's whole loop against the real server, over real HTTP, as an app user.

Every request is made the way Collect (v2026.3) makes it: ``X-OpenRosa-Version:
1.0``, a malformed ``Date``, Collect's user agent, and ``?deviceID=collect%3A...``
appended to every URL, including the URLs the server hands out. After each
submission the rows in the database and the bytes in the blob store are checked
through a runtime on the same settings as the server (both backends).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from server.db.models import Form, Submission
from server.runtime import Runtime
from tests.e2e.collect import (
    DEVICE_ID,
    INTAKE_VERSION,
    LOGO_PNG,
    MANIFEST_NS,
    SITE_VISIT_TITLE,
    SITE_VISIT_VERSION,
    USER_AGENT,
    XHTML_NS,
    Collect,
    CollectWorld,
    assert_blob,
    assert_openrosa_headers,
    create_app_user,
    create_project_with_forms,
    intake_xml,
    jpeg,
    md5,
    new_instance_id,
    openrosa_message,
    parse,
    sha256,
    sign_in_admin,
    site_visit_xml,
    stored,
    xform_entries,
)

pytestmark = pytest.mark.slow  # a real server process per test


@pytest.fixture
async def world(live_server: str, runtime: Runtime) -> AsyncIterator[CollectWorld]:
    """An app user's phone, configured with the app user's QR code."""
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=60) as admin,
        httpx.AsyncClient(timeout=60) as phone,
    ):
        await sign_in_admin(admin)
        pid = await create_project_with_forms(admin)
        actor_id, token = await create_app_user(admin, pid)
        base = f"{live_server}/v1/key/{token}/projects/{pid}"
        yield CollectWorld(live_server, runtime, admin, Collect(phone), pid, actor_id, base)


# --- formList, form download, manifest, media -------------------------------------------


async def test_form_list_form_download_and_media(world: CollectWorld) -> None:
    collect = world.collect
    listing = await collect.get(f"{world.base}/formList")
    assert listing.status_code == 200, listing.text
    assert_openrosa_headers(listing)
    assert "text/xml" in listing.headers["content-type"]
    assert "utf-8" in listing.headers["content-type"].lower()
    assert "no-cache" in listing.headers.get("cache-control", "")
    entries = xform_entries(listing.content)
    assert set(entries) == {"intake", "site_visit"}

    intake, site_visit = entries["intake"], entries["site_visit"]
    assert intake["version"] == INTAKE_VERSION
    assert site_visit["version"] == SITE_VISIT_VERSION
    assert site_visit["name"] == SITE_VISIT_TITLE
    assert "manifestUrl" not in intake  # no media, no entity list
    assert site_visit["manifestUrl"] == f"{world.base}/forms/site_visit/manifest"
    for form_id, entry in entries.items():
        assert {"formID", "name", "hash", "downloadUrl"} <= entry.keys()
        # Absolute, and keeps the app user's key prefix.
        assert entry["downloadUrl"] == f"{world.base}/forms/{form_id}.xml"
        assert entry["hash"].startswith("md5:")
        assert entry["hash"] == entry["hash"].lower()

        download = await collect.get(entry["downloadUrl"])
        assert download.status_code == 200, download.text
        assert_openrosa_headers(download)
        assert "xml" in download.headers["content-type"]
        assert entry["hash"] == f"md5:{md5(download.content)}"
        xform = parse(download.content)
        title = xform.find(f"{{{XHTML_NS}}}head/{{{XHTML_NS}}}title")
        assert title is not None
        assert entry["name"] == title.text
        etag = download.headers.get("etag")
        assert etag, download.headers
        cached = await collect.get(entry["downloadUrl"], headers={"If-None-Match": etag})
        assert cached.status_code == 304, cached.text
        assert cached.content == b""
        assert cached.headers.get("etag") == etag
        stale = await collect.get(entry["downloadUrl"], headers={"If-None-Match": '"stale"'})
        assert stale.status_code == 200
        assert stale.content == download.content
        again = await collect.get(entry["downloadUrl"])  # never 304 without a condition
        assert again.status_code == 200
        assert again.content == download.content

    # ?formID= is honoured for other clients (Collect never sends it).
    only = await collect.get(f"{world.base}/formList?formID=intake")
    assert only.status_code == 200
    assert set(xform_entries(only.content)) == {"intake"}

    manifest = await collect.get(site_visit["manifestUrl"])
    assert manifest.status_code == 200, manifest.text
    assert_openrosa_headers(manifest)
    assert "text/xml" in manifest.headers["content-type"]
    assert "no-cache" in manifest.headers.get("cache-control", "")
    root = parse(manifest.content)
    assert root.tag == f"{{{MANIFEST_NS}}}manifest"
    media = root.findall(f"{{{MANIFEST_NS}}}mediaFile")
    assert len(media) == 1
    filename = media[0].findtext(f"{{{MANIFEST_NS}}}filename")
    media_hash = media[0].findtext(f"{{{MANIFEST_NS}}}hash")
    media_url = media[0].findtext(f"{{{MANIFEST_NS}}}downloadUrl")
    assert filename == "logo.png"
    assert media_hash == f"md5:{md5(LOGO_PNG)}"
    assert media_url == f"{world.base}/forms/site_visit/attachments/logo.png"

    first_hop = await collect.get(media_url, follow=False)
    if world.runtime.settings.storage_url.startswith("s3:"):
        # S3: a short-lived presigned URL, which Collect's client follows.
        assert first_hop.status_code == 307, first_hop.text
        location = first_hop.headers["location"]
        assert urlsplit(location).netloc != urlsplit(world.url).netloc
        assert "X-Amz-Signature" in location
    else:
        assert first_hop.status_code == 200, first_hop.text
        assert first_hop.content == LOGO_PNG
    assert_openrosa_headers(first_hop)
    media_etag = first_hop.headers.get("etag")
    assert media_etag
    logo = await collect.get(media_url)
    assert logo.status_code == 200, logo.text
    assert logo.content == LOGO_PNG
    assert f"md5:{md5(logo.content)}" == media_hash
    cached_logo = await collect.get(media_url, headers={"If-None-Match": media_etag}, follow=False)
    assert cached_logo.status_code == 304
    missing = await collect.get(f"{world.base}/forms/site_visit/attachments/nope.png")
    assert missing.status_code == 404


# --- submissions ---------------------------------------------------------------------------


async def test_head_then_submission_with_photo_resend_and_conflict(world: CollectWorld) -> None:
    collect = world.collect
    head = await collect.head(f"{world.base}/submission")
    assert head.status_code == 204, head.text
    assert head.content == b""
    assert_openrosa_headers(head)
    assert int(head.headers["x-openrosa-accept-content-length"]) >= 10_000_000

    instance_id = new_instance_id()
    photo_name = "1732355702123.jpg"
    photo = jpeg(300_000)
    xml = intake_xml(instance_id, photo_name)
    sent = await collect.submit(
        f"{world.base}/submission", xml, [(photo_name, photo, "image/jpeg")]
    )
    assert sent.status_code == 201, sent.text
    assert_openrosa_headers(sent)
    assert openrosa_message(sent)

    async def check_one_submission() -> None:
        found = await stored(world, "intake")
        assert len(found.submissions) == 1
        submission = found.submissions[0]
        assert submission.instance_id == instance_id
        assert submission.device_id == DEVICE_ID
        assert submission.user_agent == USER_AGENT
        assert submission.submitter_id == world.submitter_id
        assert submission.draft is False
        assert len(found.defs) == 1
        sub_def = found.defs[0]
        assert sub_def.xml == xml
        assert sub_def.xml_sha256 == sha256(xml)
        assert sub_def.current is True
        assert sub_def.instance_id == instance_id
        assert sub_def.device_id == DEVICE_ID
        assert sub_def.instance_name == "RW-20261123-a1b2c3 / Tirana / 2026-11-23"
        assert found.attachments[sub_def.id] == {photo_name: sha256(photo)}

    await check_one_submission()
    await assert_blob(world, photo, "image/jpeg")

    # Collect resends when it did not see the answer: same bytes, same outcome, no new row.
    resent = await collect.submit(
        f"{world.base}/submission", xml, [(photo_name, photo, "image/jpeg")]
    )
    assert resent.status_code == 201, resent.text
    assert openrosa_message(resent)
    await check_one_submission()

    # Same instanceID, different answers, no deprecatedID: a conflict the worker can read.
    changed = intake_xml(instance_id, photo_name, municipality="Durrës")
    conflict = await collect.submit(
        f"{world.base}/submission", changed, [(photo_name, photo, "image/jpeg")]
    )
    assert conflict.status_code == 409, conflict.text
    assert openrosa_message(conflict)
    await check_one_submission()


async def test_split_upload_stores_every_attachment(world: CollectWorld) -> None:
    collect = world.collect
    instance_id = new_instance_id()
    front, back = jpeg(120_000), jpeg(90_000)
    xml = site_visit_xml(instance_id, "front.jpg", "back.jpg")

    first = await collect.submit(
        f"{world.base}/submission", xml, [("front.jpg", front, "image/jpeg")], incomplete=True
    )
    assert first.status_code == 201, first.text
    assert openrosa_message(first)
    found = await stored(world, "site_visit")
    assert len(found.submissions) == 1
    assert found.attachments[found.defs[0].id] == {"front.jpg": sha256(front), "back.jpg": None}

    second = await collect.submit(
        f"{world.base}/submission", xml, [("back.jpg", back, "image/jpeg")]
    )
    assert second.status_code == 201, second.text
    assert openrosa_message(second)
    found = await stored(world, "site_visit")
    assert len(found.submissions) == 1
    assert len(found.defs) == 1
    assert found.submissions[0].device_id == DEVICE_ID
    assert found.attachments[found.defs[0].id] == {
        "front.jpg": sha256(front),
        "back.jpg": sha256(back),
    }
    await assert_blob(world, front, "image/jpeg")
    await assert_blob(world, back, "image/jpeg")

    # The admin reads both photos back through the API.
    pid = world.project_id
    for name, data in (("front.jpg", front), ("back.jpg", back)):
        got = await world.admin.get(
            f"/v1/projects/{pid}/forms/site_visit/submissions/{instance_id}/attachments/{name}",
            follow_redirects=True,
        )
        assert got.status_code == 200, got.text
        assert got.content == data


async def test_edit_with_deprecated_id_makes_a_new_version(world: CollectWorld) -> None:
    collect = world.collect
    first_id, second_id, third_id = new_instance_id(), new_instance_id(), new_instance_id()
    photo, new_photo = jpeg(50_000), jpeg(60_000)
    original = intake_xml(first_id, "consent.jpg")
    sent = await collect.submit(
        f"{world.base}/submission", original, [("consent.jpg", photo, "image/jpeg")]
    )
    assert sent.status_code == 201, sent.text

    # Collect edits a finalised submission: new instanceID, the old one as deprecatedID.
    edited = intake_xml(second_id, "consent2.jpg", municipality="Durrës", deprecated_id=first_id)
    response = await collect.submit(
        f"{world.base}/submission", edited, [("consent2.jpg", new_photo, "image/jpeg")]
    )
    assert response.status_code == 201, response.text
    assert openrosa_message(response)

    found = await stored(world, "intake")
    assert len(found.submissions) == 1
    submission = found.submissions[0]
    assert submission.instance_id == first_id  # the logical id stays the first one
    assert submission.review_state == "edited"
    assert [(d.instance_id, d.deprecated_id, d.current) for d in found.defs] == [
        (first_id, None, False),
        (second_id, first_id, True),
    ]
    assert found.defs[1].xml == edited
    assert found.defs[1].device_id == DEVICE_ID
    assert found.attachments[found.defs[0].id] == {"consent.jpg": sha256(photo)}
    assert found.attachments[found.defs[1].id] == {"consent2.jpg": sha256(new_photo)}
    await assert_blob(world, new_photo, "image/jpeg")

    # An edit that keeps the photo and does not resend it carries the stored bytes over.
    kept = intake_xml(third_id, "consent2.jpg", municipality="Shkodër", deprecated_id=second_id)
    response = await collect.submit(f"{world.base}/submission", kept)
    assert response.status_code == 201, response.text
    found = await stored(world, "intake")
    assert len(found.submissions) == 1
    assert [d.current for d in found.defs] == [False, False, True]
    assert found.attachments[found.defs[2].id] == {"consent2.jpg": sha256(new_photo)}

    # Editing a version that is no longer current is refused with a message.
    stale = intake_xml(new_instance_id(), "consent.jpg", deprecated_id=first_id)
    refused = await collect.submit(f"{world.base}/submission", stale)
    assert refused.status_code == 409, refused.text
    assert openrosa_message(refused)


# --- app-user access ----------------------------------------------------------------------


async def test_revoked_app_user_and_wrong_token_get_403(world: CollectWorld) -> None:
    collect = world.collect
    ok = await collect.get(f"{world.base}/formList")
    assert ok.status_code == 200

    wrong_base = f"{world.url}/v1/key/{secrets.token_urlsafe(48)}/projects/{world.project_id}"
    for url in (f"{wrong_base}/formList", f"{wrong_base}/forms/intake.xml"):
        wrong = await collect.get(url)
        assert wrong.status_code == 403, wrong.text
        assert "www-authenticate" not in wrong.headers  # Collect must not prompt
        assert openrosa_message(wrong)
    wrong_head = await collect.head(f"{wrong_base}/submission")
    assert wrong_head.status_code == 403

    # A good token only opens its own project.
    other = await world.admin.post("/v1/projects", json={"name": "Returns Kosovo"})
    assert other.status_code == 200, other.text
    elsewhere = world.base.rsplit("/", 1)[0] + f"/{other.json()['id']}/formList"
    foreign = await collect.get(elsewhere)
    assert foreign.status_code == 403, foreign.text
    assert openrosa_message(foreign)

    revoked = await world.admin.delete(
        f"/v1/projects/{world.project_id}/app-users/{world.submitter_id}"
    )
    assert revoked.status_code == 200, revoked.text

    listing = await collect.get(f"{world.base}/formList")
    assert listing.status_code == 403, listing.text
    assert "www-authenticate" not in listing.headers
    assert openrosa_message(listing)
    head = await collect.head(f"{world.base}/submission")
    assert head.status_code == 403
    xml = intake_xml(new_instance_id(), "c.jpg")
    refused = await collect.submit(
        f"{world.base}/submission", xml, [("c.jpg", jpeg(1000), "image/jpeg")]
    )
    assert refused.status_code == 403, refused.text
    assert openrosa_message(refused)
    assert (await stored(world, "intake")).submissions == []
    async with world.runtime.transaction() as db:
        count = await db.scalar(select(func.count()).select_from(Submission))
    assert count == 0


# --- form states and draft testing ---------------------------------------------------------


async def test_assignment_and_form_states_decide_what_phones_get(world: CollectWorld) -> None:
    pid = world.project_id
    revoke = await world.admin.delete(
        f"/v1/projects/{pid}/forms/site_visit/assignments/app-user/{world.submitter_id}"
    )
    assert revoke.status_code == 200, revoke.text
    listing = await world.collect.get(f"{world.base}/formList")
    assert set(xform_entries(listing.content)) == {"intake"}
    xml = site_visit_xml(new_instance_id(), "front.jpg", "back.jpg")
    refused = await world.collect.submit(f"{world.base}/submission", xml)
    assert refused.status_code == 403, refused.text
    assert openrosa_message(refused)
    assert (await stored(world, "site_visit")).submissions == []
    assigned = await world.admin.post(
        f"/v1/projects/{pid}/forms/site_visit/assignments/app-user/{world.submitter_id}"
    )
    assert assigned.status_code == 200, assigned.text
    listing = await world.collect.get(f"{world.base}/formList")
    assert set(xform_entries(listing.content)) == {"intake", "site_visit"}

    closing = await world.admin.patch(
        f"/v1/projects/{pid}/forms/site_visit", json={"state": "closing"}
    )
    assert closing.status_code == 200, closing.text
    listing = await world.collect.get(f"{world.base}/formList")
    assert set(xform_entries(listing.content)) == {"intake"}
    # A closing form still takes what phones already hold.
    xml = site_visit_xml(new_instance_id(), "front.jpg", "back.jpg")
    accepted = await world.collect.submit(f"{world.base}/submission", xml)
    assert accepted.status_code == 201, accepted.text

    closed = await world.admin.patch(
        f"/v1/projects/{pid}/forms/site_visit", json={"state": "closed"}
    )
    assert closed.status_code == 200, closed.text
    listing = await world.collect.get(f"{world.base}/formList")
    assert set(xform_entries(listing.content)) == {"intake"}
    late = site_visit_xml(new_instance_id(), "front.jpg", "back.jpg")
    refused = await world.collect.submit(f"{world.base}/submission", late)
    assert refused.status_code == 409, refused.text
    assert openrosa_message(refused)
    assert len((await stored(world, "site_visit")).submissions) == 1


async def draft_token_from_api(world: CollectWorld, xml_form_id: str) -> str:
    """The draft's test token as the web app shows it (the database keeps only a nonce)."""
    draft = await world.admin.get(f"/v1/projects/{world.project_id}/forms/{xml_form_id}/draft")
    assert draft.status_code == 200, draft.text
    token = draft.json()["draftToken"]
    assert isinstance(token, str)
    assert token
    return token


async def test_draft_test_paths_keep_draft_submissions_apart(world: CollectWorld) -> None:
    pid = world.project_id
    draft = await world.admin.post(f"/v1/projects/{pid}/forms/site_visit/draft")
    assert draft.status_code == 200, draft.text
    token = await draft_token_from_api(world, "site_visit")
    async with httpx.AsyncClient(timeout=60) as tester_http:
        tester = Collect(tester_http)  # no credentials: the token in the path is the key
        draft_base = f"{world.url}/v1/test/{token}/projects/{pid}/forms/site_visit/draft"
        listing = await tester.get(f"{draft_base}/formList")
        assert listing.status_code == 200, listing.text
        assert_openrosa_headers(listing)
        entries = xform_entries(listing.content)
        assert set(entries) == {"site_visit"}
        entry = entries["site_visit"]
        assert entry["downloadUrl"] == f"{draft_base}.xml"
        assert entry["manifestUrl"] == f"{draft_base}/manifest"
        download = await tester.get(entry["downloadUrl"])
        assert download.status_code == 200, download.text
        assert entry["hash"] == f"md5:{md5(download.content)}"
        manifest = await tester.get(entry["manifestUrl"])
        assert manifest.status_code == 200, manifest.text
        media_url = parse(manifest.content).findtext(
            f"{{{MANIFEST_NS}}}mediaFile/{{{MANIFEST_NS}}}downloadUrl"
        )
        assert media_url == f"{draft_base}/attachments/logo.png"
        logo = await tester.get(media_url)
        assert logo.status_code == 200, logo.text
        assert logo.content == LOGO_PNG

        head = await tester.head(f"{draft_base}/submission")
        assert head.status_code == 204
        instance_id = new_instance_id()
        front = jpeg(20_000)
        xml = site_visit_xml(instance_id, "front.jpg", "back.jpg")
        sent = await tester.submit(
            f"{draft_base}/submission", xml, [("front.jpg", front, "image/jpeg")]
        )
        assert sent.status_code == 201, sent.text
        assert openrosa_message(sent)
        found = await stored(world, "site_visit")
        assert [(s.instance_id, s.draft) for s in found.submissions] == [(instance_id, True)]
        assert found.submissions[0].device_id == DEVICE_ID
        await assert_blob(world, front, "image/jpeg")
        published = await world.admin.get(f"/v1/projects/{pid}/forms/site_visit/submissions")
        assert published.status_code == 200, published.text
        assert published.json() == []

        # The same instance sent as a real submission is a different submission.
        real = await world.collect.submit(f"{world.base}/submission", xml)
        assert real.status_code == 201, real.text

        # Once the draft is published, its test link tells the tester what to do.
        done = await world.admin.post(
            f"/v1/projects/{pid}/forms/site_visit/draft/publish?version=2026010102"
        )
        assert done.status_code == 200, done.text
        gone = await tester.get(f"{draft_base}/formList")
        assert gone.status_code == 404, gone.text
        assert "draft" in openrosa_message(gone)
    found = await stored(world, "site_visit")
    assert sorted(s.draft for s in found.submissions) == [False, True]

    # Phones see the new version, and the advertised hash matches the new bytes.
    listing = await world.collect.get(f"{world.base}/formList")
    entry = xform_entries(listing.content)["site_visit"]
    assert entry["version"] == "2026010102"
    download = await world.collect.get(entry["downloadUrl"])
    assert entry["hash"] == f"md5:{md5(download.content)}"
    assert b'version="2026010102"' in download.content
    manifest = await world.collect.get(entry["manifestUrl"])
    assert f"md5:{md5(LOGO_PNG)}".encode() in manifest.content  # the media carried over
    # A phone that has not updated yet still sends the old version: accepted.
    old = site_visit_xml(new_instance_id(), "front.jpg", "back.jpg")
    assert SITE_VISIT_VERSION.encode() in old
    still = await world.collect.submit(f"{world.base}/submission", old)
    assert still.status_code == 201, still.text
    new = site_visit_xml(new_instance_id(), "front.jpg", "back.jpg").replace(
        SITE_VISIT_VERSION.encode(), b"2026010102"
    )
    current = await world.collect.submit(f"{world.base}/submission", new)
    assert current.status_code == 201, current.text
    assert len((await stored(world, "site_visit")).submissions) == 4


async def test_draft_token_is_published_in_the_draft_json(world: CollectWorld) -> None:
    pid = world.project_id
    created = await world.admin.post(f"/v1/projects/{pid}/forms/site_visit/draft")
    assert created.status_code == 200, created.text
    token = await draft_token_from_api(world, "site_visit")
    async with world.runtime.transaction() as db:
        stored = await db.scalar(
            select(Form.draft_token).where(Form.project_id == pid, Form.xml_form_id == "site_visit")
        )
    assert stored
    assert stored not in token  # the database holds no usable token
    draft_base = f"{world.url}/v1/test/{token}/projects/{pid}/forms/site_visit/draft"
    async with httpx.AsyncClient(timeout=60) as tester_http:
        listing = await Collect(tester_http).get(f"{draft_base}/formList")
    assert listing.status_code == 200, listing.text


# --- many phones at once -------------------------------------------------------------------


async def test_many_phones_at_once_and_a_raced_resend(world: CollectWorld) -> None:
    """Eight phones reach the network together: every submission lands, none fails.
    Then auto-send and a manual send of one submission race: one submission, no 5xx."""
    photos = {new_instance_id(): jpeg(30_000) for _ in range(8)}

    async def send(instance_id: str, photo: bytes) -> httpx.Response:
        xml = intake_xml(instance_id, "consent.jpg")
        return await world.collect.submit(
            f"{world.base}/submission", xml, [("consent.jpg", photo, "image/jpeg")]
        )

    responses = await asyncio.gather(*(send(i, p) for i, p in photos.items()))
    assert [r.status_code for r in responses] == [201] * len(photos), [
        r.text for r in responses if r.status_code != 201
    ]
    found = await stored(world, "intake")
    assert sorted(s.instance_id for s in found.submissions) == sorted(photos)
    by_instance = {d.instance_id: found.attachments[d.id] for d in found.defs}
    for instance_id, photo in photos.items():
        assert by_instance[instance_id] == {"consent.jpg": sha256(photo)}

    instance_id = new_instance_id()
    photo = jpeg(30_000)
    xml = intake_xml(instance_id, "consent.jpg")
    responses = await asyncio.gather(
        *(
            world.collect.submit(
                f"{world.base}/submission", xml, [("consent.jpg", photo, "image/jpeg")]
            )
            for _ in range(4)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert 201 in statuses
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    for response in responses:
        assert openrosa_message(response)
    found = await stored(world, "intake")
    assert len(found.submissions) == len(photos) + 1
    raced = next(d for d in found.defs if d.instance_id == instance_id)
    assert found.attachments[raced.id] == {"consent.jpg": sha256(photo)}


# --- encrypted forms -----------------------------------------------------------------------

PUBLIC_KEY = base64.b64encode(b"\x30\x82\x01\x22" + bytes(range(256)) + b"\x02\x03\x01\x00\x01")
SECRET_FORM = (
    b'<?xml version="1.0"?>'
    b'<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"'
    b' xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">'
    b"<h:head><h:title>Secret interview</h:title><model>"
    b'<instance><data id="secret" version="3"><story/><photo/>'
    b"<meta><instanceID/></meta></data></instance>"
    b'<bind nodeset="/data/story" type="string"/>'
    b'<bind nodeset="/data/photo" type="binary"/>'
    b'<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>'
    b'<submission method="post" base64RsaPublicKey="' + PUBLIC_KEY + b'"/>'
    b"</model></h:head><h:body>"
    b'<input ref="/data/story"><label>Story</label></input>'
    b'<upload ref="/data/photo" mediatype="image/*"><label>Photo</label></upload>'
    b"</h:body></h:html>"
)


def encrypted_manifest(instance_id: str) -> bytes:
    """What Collect sends in place of the XML for an encrypted form."""
    return (
        '<?xml version="1.0"?><data xmlns="http://www.opendatakit.org/xforms/encrypted" '
        'xmlns:orx="http://openrosa.org/xforms" encrypted="yes" id="secret" version="3">'
        f"<base64EncryptedKey>{base64.b64encode(os.urandom(256)).decode()}</base64EncryptedKey>"
        f"<orx:meta><orx:instanceID>{instance_id}</orx:instanceID></orx:meta>"
        "<media><file>1732355702123.jpg.enc</file></media>"
        "<encryptedXmlFile>submission.xml.enc</encryptedXmlFile>"
        f"<base64EncryptedElementSignature>{base64.b64encode(os.urandom(256)).decode()}"
        "</base64EncryptedElementSignature></data>"
    ).encode()


async def test_encrypted_submission_is_stored_as_sent(world: CollectWorld) -> None:
    pid = world.project_id
    form = await world.admin.post(
        f"/v1/projects/{pid}/forms?publish=true",
        content=SECRET_FORM,
        headers={"Content-Type": "application/xml"},
    )
    assert form.status_code == 200, form.text
    assigned = await world.admin.post(
        f"/v1/projects/{pid}/forms/secret/assignments/app-user/{world.submitter_id}"
    )
    assert assigned.status_code == 200, assigned.text
    listing = await world.collect.get(f"{world.base}/formList")
    entry = xform_entries(listing.content)["secret"]
    download = await world.collect.get(entry["downloadUrl"])
    assert b"base64RsaPublicKey" in download.content  # the phone encrypts with this key

    instance_id = new_instance_id()
    manifest = encrypted_manifest(instance_id)
    encrypted_xml, encrypted_photo = os.urandom(2_000), os.urandom(40_000)
    sent = await world.collect.submit(
        f"{world.base}/submission",
        manifest,
        [
            ("submission.xml.enc", encrypted_xml, "application/octet-stream"),
            ("1732355702123.jpg.enc", encrypted_photo, "application/octet-stream"),
        ],
    )
    assert sent.status_code == 201, sent.text
    assert openrosa_message(sent)
    found = await stored(world, "secret")
    assert [s.instance_id for s in found.submissions] == [instance_id]
    sub_def = found.defs[0]
    assert sub_def.encrypted is True
    assert sub_def.xml == manifest
    assert found.attachments[sub_def.id] == {
        "submission.xml.enc": sha256(encrypted_xml),
        "1732355702123.jpg.enc": sha256(encrypted_photo),
    }
    await assert_blob(world, encrypted_xml, "application/octet-stream")
    await assert_blob(world, encrypted_photo, "application/octet-stream")
