"""The Collect loop in-process: formList, form, submission with a photo."""

from __future__ import annotations

from sqlalchemy import select

from server.db.models import SubmissionAttachment
from tests.server.conftest import World, submission_xml


async def test_app_user_sees_form_and_submits_with_photo(world: World) -> None:
    client = world.client
    listing = await client.get(f"{world.key_base}/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert listing.status_code == 200
    assert b"<formID>simple</formID>" in listing.content
    response = await client.post(
        f"{world.key_base}/submission?deviceID=collect%3Aabc",
        files={
            "xml_submission_file": ("instance.xml", submission_xml("uuid:1"), "text/xml"),
            "p.jpg": ("p.jpg", b"\xff\xd8photo-bytes", "image/jpeg"),
        },
        headers={"X-OpenRosa-Version": "1.0"},
    )
    assert response.status_code == 201, response.text
    async with world.runtime.transaction() as db:
        attachment = await db.scalar(select(SubmissionAttachment))
    assert attachment is not None
    assert attachment.blob_sha256 is not None
    assert await world.runtime.blobs.read_bytes(attachment.blob_sha256) == b"\xff\xd8photo-bytes"
