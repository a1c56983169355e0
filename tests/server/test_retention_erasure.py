"""Retention pseudonymises personal answers in place after a project's months;
erasure removes one returnee everywhere. Both are audited without personal data."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
from datetime import UTC, datetime, timedelta

import msgspec
import polars as pl
import pytest
from sqlalchemy import select, update

from forms.personal import pseudonym
from server.cli import main
from server.db.models import (
    AnalysisSegment,
    Audit,
    Base,
    CleaningEntry,
    EntityBacklog,
    EntityDef,
    EntityRow,
    ExportRun,
    Project,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services import analysis, export_runs
from server.services.erasure import ERASE_ACTION
from server.services.forms import find_form
from server.services.retention import EXPIRE_ACTION, expire_personal_answers, months_before
from server.settings import Settings
from storage.filesystem import FilesystemBlobStore
from storage.s3 import S3BlobStore
from tests.e2e.conftest import server_environment
from tests.server.conftest import World
from tests.server.personal_world import (
    DOCUMENT,
    ENTITY_ID,
    NAME,
    PHOTO,
    add_case,
    add_returnee,
    leaked,
    make_callers,
    publish_returnee_form,
    readable_text,
)

OTHER_PHOTO = b"JPEG face of Besa"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def everything_stored(rt: Runtime) -> bytes:
    """Every value of every table, as bytes, to look for what must be gone."""
    parts: list[bytes] = []
    async with rt.read() as db:
        for table in Base.metadata.sorted_tables:
            for row in await db.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes):
                        parts.append(value)
                    elif value is not None:
                        parts.append(str(value).encode())
    return b"\n".join(parts)


async def everything_in_store(rt: Runtime) -> bytes:
    """Every object of the blob store (files, copies, kept exports), zips and Parquet opened."""
    store = rt.blobs
    found: list[bytes] = []
    if isinstance(store, FilesystemBlobStore):
        found = [path.read_bytes() for path in store.root.rglob("*") if path.is_file()]
    else:
        assert isinstance(store, S3BlobStore)
        client = store._client
        for item in client.list_objects(store.bucket, prefix=store.prefix, recursive=True):
            assert item.object_name is not None
            response = client.get_object(store.bucket, item.object_name)
            found.append(response.read())
            response.close()
            response.release_conn()
    parts = []
    for data in found:
        if data.startswith(b"PAR1"):
            parts.append(pl.read_parquet(io.BytesIO(data)).write_csv())
        else:
            parts.append(readable_text(data))
    return "\n".join(parts).encode()


async def derived_copies(world: World) -> None:
    """What derives from the returnee form: its analysis copy, a kept export file,
    a cleaning log entry on Arben's name (it holds the old and new values)."""
    form = f"/v1/projects/{world.project_id}/forms/returnee"
    entry = await world.client.post(
        f"{form}/cleaning-log",
        json={
            "instanceId": "uuid:arben",
            "field": "full_name",
            "newValue": f"{NAME} B",
            "reason": "x",
        },
        headers=world.admin_headers,
    )
    assert entry.status_code == 200, entry.text
    job = await world.client.post(f"{form}/export-jobs", headers=world.admin_headers)
    assert job.status_code == 201, job.text
    assert await export_runs.run_waiting_exports(world.runtime) == 1
    async with world.runtime.read() as db:
        returnee = await find_form(db, world.project_id, "returnee")
    assert await analysis.rebuild_copy(world.runtime, returnee.id) == 2


async def two_returnees(world: World) -> None:
    await publish_returnee_form(world)
    await add_returnee(world, "uuid:arben", case_id="R-001")
    await add_returnee(
        world,
        "uuid:besa",
        case_id="R-002",
        edited=False,
        name="Besa Krasniqi",
        phone="+38344111222",
        photo=OTHER_PHOTO,
    )


async def received_months_ago(world: World, instance_id: str, months: int) -> None:
    async with world.runtime.transaction() as db:
        await db.execute(
            update(Submission)
            .where(Submission.instance_id == instance_id)
            .values(created_at=months_before(datetime.now(UTC), months) - timedelta(days=1))
        )


def test_months_are_calendar_months() -> None:
    assert months_before(datetime(2026, 3, 31, 12, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, 12, tzinfo=UTC
    )
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(
        2024, 12, 15, tzinfo=UTC
    )


async def test_retention_is_a_project_setting(world: World) -> None:
    project = f"/v1/projects/{world.project_id}"
    admin = world.admin_headers

    set_ = await world.client.patch(project, json={"retentionMonths": 6}, headers=admin)
    shown = await world.client.get(project, headers=admin)
    zero = await world.client.patch(project, json={"retentionMonths": 0}, headers=admin)
    text = await world.client.patch(project, json={"retentionMonths": "six"}, headers=admin)
    renamed = await world.client.patch(project, json={"name": "Returns 2"}, headers=admin)
    off = await world.client.patch(project, json={"retentionMonths": None}, headers=admin)

    assert set_.status_code == 200, set_.text
    assert set_.json()["retentionMonths"] == 6
    assert shown.json()["retentionMonths"] == 6
    assert zero.status_code == 400
    assert text.status_code == 400
    assert renamed.json()["retentionMonths"] == 6  # untouched when not named
    assert off.json()["retentionMonths"] is None


async def test_retention_pseudonymises_old_submissions_in_place(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "SETTLE", timedelta(seconds=-1))
    await two_returnees(world)
    await derived_copies(world)
    await received_months_ago(world, "uuid:arben", 7)
    await world.client.patch(
        f"/v1/projects/{world.project_id}", json={"retentionMonths": 6}, headers=world.admin_headers
    )
    async with world.runtime.read() as db:
        project = await db.get(Project, world.project_id)
        assert project is not None
        key = project.pseudonym_secret.encode()

    expired = await expire_personal_answers(world.runtime)
    again = await expire_personal_answers(world.runtime)

    assert (expired.submissions, expired.files) == (1, 1)
    assert again.submissions == 0
    async with world.runtime.read() as db:
        versions = (
            await db.execute(
                select(SubmissionDef, Submission.instance_id).join(
                    Submission, Submission.id == SubmissionDef.submission_id
                )
            )
        ).all()
        attached = await db.execute(
            select(SubmissionAttachment.name, SubmissionAttachment.blob_sha256)
            .join(SubmissionDef, SubmissionDef.id == SubmissionAttachment.submission_def_id)
            .join(Submission, Submission.id == SubmissionDef.submission_id)
            .where(Submission.instance_id == "uuid:arben", SubmissionDef.current.is_(True))
        )
        files: dict[str, str | None] = {name: blob for name, blob in attached}
        audits = (await db.scalars(select(Audit).where(Audit.action == EXPIRE_ACTION))).all()
    old = [v for v, instance_id in versions if instance_id == "uuid:arben"]
    new = [v for v, instance_id in versions if instance_id == "uuid:besa"]
    assert len(old) == 2
    for version in old:
        stored = version.xml + version.record + (version.odata_row or b"")
        assert leaked(stored) == [], version.instance_id
        assert version.instance_name is None
        assert version.odata_row is not None
    answers = msgspec.json.decode(old[-1].record)
    assert answers["full_name"] == pseudonym(key, f"{NAME} EDITED")
    assert "age" not in answers  # a number: withheld, not pseudonymised
    assert answers["district"] == "Shkoder"  # not personal: kept
    assert b"Besa Krasniqi A1" in new[0].xml  # received a moment ago: kept
    assert files == {"face.jpg": None, "doc.jpg": sha(DOCUMENT)}
    assert not await world.runtime.blobs.exists(sha(PHOTO))
    assert await world.runtime.blobs.exists(sha(DOCUMENT))
    assert [msgspec.json.decode(a.details or "") for a in audits] == [
        {"submissions": 1, "retentionMonths": 6}
    ]
    # Nothing derived keeps the clear values: the cleaning log holds pseudonyms, the
    # analysis copy and the kept export file are gone (the worker writes the copy again).
    assert leaked(await everything_stored(world.runtime)) == []
    assert leaked(await everything_in_store(world.runtime)) == []
    async with world.runtime.read() as db:
        entry = (await db.scalars(select(CleaningEntry))).one()
    assert (entry.old_value, entry.new_value) == (
        pseudonym(key, f"{NAME} EDITED"),
        pseudonym(key, f"{NAME} B"),
    )
    async with world.runtime.read() as db:
        returnee = await find_form(db, world.project_id, "returnee")
    assert await analysis.rebuild_copy(world.runtime, returnee.id) == 2
    assert leaked(await everything_in_store(world.runtime)) == []

    # What a manager now reads of it: pseudonyms, even in clear.
    manager = (await make_callers(world))["mgr"]
    form = f"/v1/projects/{world.project_id}/forms/returnee"
    xml = await world.client.get(f"{form}/submissions/uuid:arben.xml", headers=manager)
    feed = await world.client.get(f"{form}.svc/Submissions('uuid:arben')", headers=manager)
    assert leaked(xml.content) == []
    assert pseudonym(key, f"{NAME} EDITED").encode() in xml.content
    assert feed.json()["value"][0]["full_name"] == pseudonym(key, f"{NAME} EDITED")


async def test_erasing_a_returnee_leaves_nothing_of_them(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "SETTLE", timedelta(seconds=-1))
    await two_returnees(world)
    await add_case(world)  # Arben's entity, made by a case_intake submission with R-001
    await derived_copies(world)
    await world.client.post(
        f"/v1/projects/{world.project_id}/forms/returnee/submissions/uuid:arben/comments",
        json={"body": "Called back on Monday"},
        headers=world.admin_headers,
    )
    callers = await make_callers(world)
    erasures = f"/v1/projects/{world.project_id}/erasures"
    case = {"caseField": "case_id", "caseValue": "R-001"}
    assert NAME.encode() in await everything_stored(world.runtime)
    assert NAME.encode() in await everything_in_store(world.runtime)

    refused = await world.client.post(erasures, json=case, headers=callers["view"])
    empty = await world.client.post(
        erasures, json={"caseField": "case_id", "caseValue": " "}, headers=callers["mgr"]
    )
    vague = await world.client.post(erasures, json={}, headers=callers["mgr"])
    erased = await world.client.post(erasures, json=case, headers=callers["mgr"])

    assert refused.status_code == 403
    assert empty.status_code == 400
    assert vague.status_code == 400
    assert erased.status_code == 200, erased.text
    # The returnee form's submission and the case intake's, the entity that made, one photo.
    assert erased.json() == {"submissions": 2, "files": 1, "entities": 1}
    stored = await everything_stored(world.runtime)
    assert leaked(stored) == []
    assert leaked(await everything_in_store(world.runtime)) == []
    # Ids stay only in audit entries (random, naming no one); no entity row is left.
    for table in (EntityRow, EntityDef, EntityBacklog, CleaningEntry, ExportRun, AnalysisSegment):
        async with world.runtime.read() as db:
            assert (await db.execute(select(table))).first() is None, table.__name__
    assert b"Called back on Monday" not in stored
    assert not await world.runtime.blobs.exists(sha(PHOTO))
    # The other returnee, and the file both had, stay.
    assert b"Besa Krasniqi" in stored
    assert await world.runtime.blobs.exists(sha(OTHER_PHOTO))
    assert await world.runtime.blobs.exists(sha(DOCUMENT))
    async with world.runtime.read() as db:
        left = await db.scalars(select(Submission.instance_id))
        audits = (await db.scalars(select(Audit).where(Audit.action == ERASE_ACTION))).all()
    assert list(left) == ["uuid:besa"]
    assert len(audits) == 1
    assert msgspec.json.decode(audits[0].details or "") == {
        "submissions": 2,
        "entities": 1,
        "files": 1,
    }
    feed = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/returnee.svc/Submissions",
        headers=callers["mgr"],
    )
    assert [row["__id"] for row in feed.json()["value"]] == ["uuid:besa"]


def homeward(settings: Settings, *args: str) -> str:
    """Run a command in this process (a subprocess would cost seconds of start-up)."""
    environment = {
        k: v for k, v in server_environment(settings, 0).items() if k.startswith("HOMEWARD_")
    }
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output):
        for name, value in environment.items():
            patch.setenv(name, value)
        main(list(args))
    return output.getvalue()


async def test_commands_erase_a_submission_and_run_retention(
    world: World, settings: Settings
) -> None:
    await two_returnees(world)
    await received_months_ago(world, "uuid:besa", 3)
    await world.client.patch(
        f"/v1/projects/{world.project_id}", json={"retentionMonths": 2}, headers=world.admin_headers
    )
    project = str(world.project_id)
    erase = ("erase", "--project", project, "--form", "returnee", "--submission", "uuid:arben")

    erased = await asyncio.to_thread(homeward, settings, *erase)
    retained = await asyncio.to_thread(homeward, settings, "retention")
    with pytest.raises(SystemExit, match="--case"):
        homeward(settings, "erase", "--project", project)

    assert "Erased 1 submissions and 0 entities; 1 files removed." in erased
    assert "of 1 submissions" in retained
    stored = await everything_stored(world.runtime)
    assert leaked(stored) == []
    assert b"Besa Krasniqi" not in stored


async def test_erasing_by_entity_takes_the_entity_and_the_submissions_that_made_it(
    world: World, settings: Settings
) -> None:
    await two_returnees(world)
    await add_case(world)
    callers = await make_callers(world)
    erasures = f"/v1/projects/{world.project_id}/erasures"
    unknown = await world.client.post(
        erasures, json={"entityUuid": "no-such-entity"}, headers=callers["mgr"]
    )
    assert unknown.status_code == 404

    project = str(world.project_id)
    erased = await asyncio.to_thread(
        homeward, settings, "erase", "--project", project, "--entity", ENTITY_ID
    )

    assert "Erased 1 submissions and 1 entities; 0 files removed." in erased
    async with world.runtime.read() as db:
        left = list(await db.scalars(select(Submission.instance_id).order_by(Submission.id)))
        entities = (await db.execute(select(EntityRow))).all()
        versions = (await db.execute(select(EntityDef))).all()
    assert left == ["uuid:arben", "uuid:besa"]  # the returnee form's are found by case id
    assert list(entities) == []
    assert list(versions) == []
    again = await world.client.post(
        erasures, json={"entityUuid": ENTITY_ID}, headers=callers["mgr"]
    )
    assert again.status_code == 404
