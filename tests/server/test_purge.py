"""Purge: deleted submissions, forms and projects leave the database and the blob store."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from server.db.models import Audit, Blob, Submission, SubmissionAttachment, SubmissionDef
from server.services.purge import purge_deleted
from server.settings import Settings
from storage.blobs import hash_bytes
from tests.server.conftest import SIMPLE_FORM, World, submission_xml
from tests.server.test_cli_export import run_cli

OPENROSA = {"X-OpenRosa-Version": "1.0"}
EVERYTHING = timedelta(0)
PHOTO_A = b"\xff\xd8 photo of a signed consent form"
PHOTO_B = b"\xff\xd8 photo of a house"


async def submit(world: World, instance_id: str, photo: bytes) -> None:
    response = await world.client.post(
        f"{world.key_base}/submission",
        files={
            "xml_submission_file": ("i.xml", submission_xml(instance_id), "text/xml"),
            "p.jpg": ("p.jpg", photo, "image/jpeg"),
        },
        headers=OPENROSA,
    )
    assert response.status_code == 201, response.text


async def count(world: World, model: type[Submission] | type[SubmissionDef]) -> int:
    async with world.runtime.read() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_purge_removes_deleted_submissions_and_files_no_one_else_uses(world: World) -> None:
    submissions = f"/v1/projects/{world.project_id}/forms/simple/submissions"
    await submit(world, "uuid:1", PHOTO_A)
    await submit(world, "uuid:2", PHOTO_B)
    await submit(world, "uuid:3", PHOTO_A)  # the same bytes: one blob for two submissions
    photo_a, photo_b = hash_bytes(PHOTO_A).sha256, hash_bytes(PHOTO_B).sha256
    deleted = await world.client.delete(f"{submissions}/uuid:1", headers=world.admin_headers)
    assert deleted.status_code == 200

    # Deleted a moment ago: kept for restore under the default age.
    nothing = await purge_deleted(world.runtime, older_than=timedelta(days=30))
    assert (nothing.submissions, nothing.files) == (0, 0)
    assert await count(world, Submission) == 3

    first = await purge_deleted(world.runtime, older_than=EVERYTHING)
    assert (first.submissions, first.forms, first.projects, first.files) == (1, 0, 0, 0)
    assert await count(world, Submission) == 2
    assert await count(world, SubmissionDef) == 2
    gone = await world.client.get(f"{submissions}/uuid:1", headers=world.admin_headers)
    assert gone.status_code == 404
    restore = await world.client.post(f"{submissions}/uuid:1/restore", headers=world.admin_headers)
    assert restore.status_code == 404
    assert await world.runtime.blobs.read_bytes(photo_a) == PHOTO_A  # uuid:3 still has it

    await world.client.delete(f"{submissions}/uuid:3", headers=world.admin_headers)
    second = await purge_deleted(world.runtime, older_than=EVERYTHING)
    assert (second.submissions, second.files) == (1, 1)
    assert not await world.runtime.blobs.exists(photo_a)
    assert await world.runtime.blobs.read_bytes(photo_b) == PHOTO_B
    async with world.runtime.read() as db:
        assert await db.get(Blob, photo_a) is None
        attachments = (await db.scalars(select(SubmissionAttachment.blob_sha256))).all()
        assert attachments == [photo_b]
        actions = (await db.scalars(select(Audit.action).where(Audit.action.like("%.purge")))).all()
    assert actions == ["submission.purge", "submission.purge"]


async def test_purging_a_form_and_a_project_takes_what_is_in_them(world: World) -> None:
    forms = f"/v1/projects/{world.project_id}/forms"
    await submit(world, "uuid:1", PHOTO_B)
    deleted = await world.client.delete(f"{forms}/simple", headers=world.admin_headers)
    assert deleted.status_code == 200
    # While the deleted form is kept, its id cannot be used again.
    again = await world.client.post(
        f"{forms}?publish=true",
        content=SIMPLE_FORM,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert again.status_code == 409

    purged = await purge_deleted(world.runtime, older_than=EVERYTHING)
    assert (purged.forms, purged.submissions, purged.files) == (1, 1, 1)
    assert not await world.runtime.blobs.exists(hash_bytes(PHOTO_B).sha256)
    assert await count(world, Submission) == 0
    again = await world.client.post(
        f"{forms}?publish=true",
        content=SIMPLE_FORM,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert again.status_code == 200, again.text

    project = f"/v1/projects/{world.project_id}"
    assert (await world.client.delete(project, headers=world.admin_headers)).status_code == 200
    purged = await purge_deleted(world.runtime, older_than=EVERYTHING)
    assert (purged.projects, purged.forms) == (1, 1)
    assert (await world.client.get(project, headers=world.admin_headers)).status_code == 404
    listing = await world.client.get(f"{world.key_base}/formList", headers=OPENROSA)
    assert listing.status_code in (401, 403)  # the project's app user ended with it


async def test_purge_from_the_command_line(world: World, settings: Settings) -> None:
    await submit(world, "uuid:1", PHOTO_A)
    url = f"/v1/projects/{world.project_id}/forms/simple/submissions/uuid:1"
    assert (await world.client.delete(url, headers=world.admin_headers)).status_code == 200

    kept = run_cli(settings, "purge")
    assert kept.returncode == 0, kept.stderr
    assert "Purged 0 projects, 0 forms and 0 submissions deleted 30 or more days ago" in kept.stdout
    done = run_cli(settings, "purge", "--days", "0")
    assert done.returncode == 0, done.stderr
    assert "0 forms and 1 submissions" in done.stdout
    assert "1 files removed" in done.stdout
    assert await count(world, Submission) == 0
    refused = run_cli(settings, "purge", "--days", "-1")
    assert refused.returncode != 0
    assert "--days" in refused.stderr
