"""Exports as jobs: asked for, run by a worker of any process, followed, downloaded."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from forms.personal import pseudonym
from server.db.models import ExportRun, Project
from server.services import export_runs
from server.services import exports as export_service
from tests.server.conftest import World
from tests.server.personal_world import (
    NAME,
    add_returnee,
    leaked,
    make_callers,
    publish_returnee_form,
)
from tests.server.test_csv_export import PHOTO, export, read_zip, three_submissions


def jobs_url(world: World, form: str = "simple") -> str:
    return f"/v1/projects/{world.project_id}/forms/{form}/export-jobs"


async def test_job_runs_reports_progress_and_gives_the_download_s_file(world: World) -> None:
    await three_submissions(world)
    asked = await world.client.post(
        jobs_url(world), params={"format": "csv.zip"}, headers=world.admin_headers
    )
    assert asked.status_code == 201, asked.text
    job = asked.json()
    assert (job["state"], job["done"], job["fileName"]) == ("queued", 0, "simple.csv.zip")
    url = f"{jobs_url(world)}/{job['id']}"
    early = await world.client.get(f"{url}/file", headers=world.admin_headers)
    assert early.status_code == 409
    assert early.json()["details"] == {"state": "queued"}

    assert await export_runs.run_waiting_exports(world.runtime) == 1

    state = (await world.client.get(url, headers=world.admin_headers)).json()
    assert (state["state"], state["total"], state["done"]) == ("done", 3, 3)
    assert state["expiresAt"] is not None
    file = await world.client.get(f"{url}/file", headers=world.admin_headers)
    assert file.status_code == 200
    assert file.headers["content-type"] == "application/zip"
    assert int(file.headers["content-length"]) == state["size"] == len(file.content)
    got, want = read_zip(file.content), read_zip((await export(world)).content)
    assert got == want
    assert got["media/p.jpg"] == PHOTO


async def test_job_options_are_checked_when_asked_for(world: World) -> None:
    bad_format = await world.client.post(
        jobs_url(world), params={"format": "pdf"}, headers=world.admin_headers
    )
    bad_language = await world.client.post(
        jobs_url(world), params={"labels": "true", "language": "xx"}, headers=world.admin_headers
    )
    unknown_form = await world.client.post(jobs_url(world, "nope"), headers=world.admin_headers)

    assert bad_format.status_code == 400
    assert "pdf" in bad_format.json()["message"]
    assert bad_language.status_code == 400
    assert unknown_form.status_code == 404
    assert await export_runs.run_waiting_exports(world.runtime) == 0


async def test_job_of_a_process_that_died_is_run_again_and_files_expire(world: World) -> None:
    await three_submissions(world)
    asked = await world.client.post(
        jobs_url(world), params={"format": "csv"}, headers=world.admin_headers
    )
    job_id = asked.json()["id"]
    rt = world.runtime
    async with rt.transaction() as db:  # claimed by a process that stopped renewing it
        await db.execute(
            update(ExportRun)
            .where(ExportRun.id == job_id)
            .values(
                state="running",
                claimed_by="gone:1",
                claimed_until=export_runs._now() - timedelta(seconds=1),
            )
        )

    assert await export_runs.run_waiting_exports(rt) == 1

    url = f"{jobs_url(world)}/{job_id}"
    assert (await world.client.get(url, headers=world.admin_headers)).json()["state"] == "done"
    file = await world.client.get(f"{url}/file", headers=world.admin_headers)
    assert file.content == (await export(world, file="submissions.csv")).content
    async with rt.transaction() as db:
        await db.execute(
            update(ExportRun)
            .where(ExportRun.id == job_id)
            .values(expires_at=export_runs._now() - timedelta(seconds=1))
        )

    await export_runs.run_waiting_exports(rt)

    assert (await world.client.get(url, headers=world.admin_headers)).json()["state"] == "expired"
    gone = await world.client.get(f"{url}/file", headers=world.admin_headers)
    assert gone.status_code == 409


async def test_jobs_need_the_right_to_read_submissions(world: World) -> None:
    asked = await world.client.post(jobs_url(world), headers=world.admin_headers)
    url = f"{jobs_url(world)}/{asked.json()['id']}"

    assert (await world.client.post(jobs_url(world))).status_code == 401
    assert (await world.client.get(url)).status_code == 401
    assert (await world.client.get(f"{url}/file")).status_code == 401
    assert (await world.client.get(f"{url}9", headers=world.admin_headers)).status_code == 404


async def test_jobs_wait_while_downloads_hold_the_slots(world: World) -> None:
    asked = await world.client.post(jobs_url(world), headers=world.admin_headers)
    rt = world.runtime
    # Jobs leave the last slot to people waiting for a download.
    held = [export_service.claim_export_slot(rt) for _ in range(rt.settings.max_exports - 1)]

    assert await export_runs.run_waiting_exports(rt) == 0

    url = f"{jobs_url(world)}/{asked.json()['id']}"
    assert (await world.client.get(url, headers=world.admin_headers)).json()["state"] == "queued"
    held.pop().release()
    assert await export_runs.run_waiting_exports(rt) == 1
    for slot in held:
        slot.release()


async def test_viewer_s_job_gets_pseudonyms_no_personal_media_and_the_cleaning_log(
    world: World,
) -> None:
    """The worker gives a viewer's job what the viewer's download gives, cleaned if asked."""
    await publish_returnee_form(world)
    await add_returnee(world, "uuid:r1", edited=False)
    callers = await make_callers(world)
    cleaned = await world.client.post(
        f"{jobs_url(world, 'returnee')[: -len('/export-jobs')]}/cleaning-log",
        json={"instanceId": "uuid:r1", "field": "district", "newValue": "Tirana", "reason": "typo"},
        headers=world.admin_headers,
    )
    assert cleaned.status_code == 200, cleaned.text
    asked = await world.client.post(
        jobs_url(world, "returnee"), params={"cleaned": "true"}, headers=callers["view"]
    )
    kept = await world.client.post(jobs_url(world, "returnee"), headers=callers["mgr"])
    assert asked.status_code == kept.status_code == 201, asked.text

    assert await export_runs.run_waiting_exports(world.runtime) == 2

    url = f"{jobs_url(world, 'returnee')}/{asked.json()['id']}/file"
    file = await world.client.get(url, headers=callers["view"])
    assert file.status_code == 200, file.text
    files = read_zip(file.content)
    assert "media/doc.jpg" in files
    assert "media/face.jpg" not in files
    assert leaked(file.content) == []
    root = files["returnee.csv"].decode()
    assert pseudonym(await _secret(world), f"{NAME} A1") in root
    assert "Tirana" in root
    assert "Shkoder" not in root
    # A manager's job kept personal fields: its file is not the viewer's to read.
    managers = f"{jobs_url(world, 'returnee')}/{kept.json()['id']}/file"
    refused = await world.client.get(managers, headers=callers["view"])
    assert refused.status_code == 403
    mine = await world.client.get(managers, headers=callers["mgr"])
    assert mine.status_code == 200
    assert NAME in read_zip(mine.content)["returnee.csv"].decode()


async def _secret(world: World) -> bytes:
    async with world.runtime.read() as db:
        project = await db.get(Project, world.project_id)
        assert project is not None
        return project.pseudonym_secret.encode()
