"""The analysis copy over the real stores: exports read it, and never show less.

Submissions arrive as Collect sends them; the copy is extended as the
background worker would; every export is compared with the export of the row
store alone, including after edits, deletions, review and new submissions
that the copy does not hold yet.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from exports import ExportOptions
from forms.personal import pseudonym
from server.db.models import AnalysisCopy, AnalysisSegment, Project, Submission
from server.services import analysis, analysis_export, export_runs
from server.services import exports as export_service
from server.services.forms import find_form
from server.services.purge import purge_deleted
from server.settings import Settings
from storage import BlobNotFound
from tests.server.conftest import World, submission_xml
from tests.server.personal_world import (
    NAME,
    add_returnee,
    leaked,
    make_callers,
    publish_returnee_form,
    readable_text,
)
from tests.server.test_cli_export import run_cli
from tests.server.test_csv_export import (
    _set_review_state,
    as_dicts,
    export,
    read_zip,
    three_submissions,
)
from tests.server.test_submissions import assert_created, submit

FORMATS = ["submissions.csv.zip", "submissions.csv", "submissions.xlsx", "submissions.parquet.zip"]


@pytest.fixture(autouse=True)
def settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Submissions join the copy as soon as they are stored (no 60 s wait)."""
    monkeypatch.setattr(analysis, "SETTLE", timedelta(seconds=-1))


async def form_id(world: World) -> int:
    async with world.runtime.read() as db:
        return (await find_form(db, world.project_id, "simple")).id


async def copy_used(world: World) -> bool:
    """Whether an export of the form now reads the copy."""
    async with world.runtime.read() as db:
        form = await find_form(db, world.project_id, "simple")
        job = await export_service.prepare_export(
            db,
            form,
            ExportOptions(),
            (),
            media=False,
            spool_dir=world.runtime.settings.data_dir / "tmp",
        )
    return job.copy is not None


async def without_copy(world: World, file: str, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The same export read from the row store alone."""

    async def none(*_: object) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(export_service, "usable_copy", none)
        response = await export(world, file=file)
    assert response.status_code == 200, response.text
    return response.content


# XLSX column widths are sized from the first batch a writer sees, and the
# copy's first batch (what the copy does not reach yet) differs from the row
# store's first page; the cells must not. Date serials are computed by Polars a
# batch at a time, whose vector code may round the last digits either way (seen:
# 46361.3621894212 against ...213), so they compare to 1e-8 of a day (under a ms).
_WIDTHS = re.compile(rb"<cols>.*?</cols>")
_SERIAL = re.compile(rb"<v>(\d+\.\d{8,})</v>")


def _serial(match: re.Match[bytes]) -> bytes:
    return b"<v>%.8f</v>" % float(match.group(1))


def contents(file: str, data: bytes) -> object:
    if file.endswith(".zip") or file.endswith(".xlsx"):
        return {
            name: _SERIAL.sub(_serial, _WIDTHS.sub(b"", value))
            for name, value in read_zip(data).items()
            if "docProps" not in name
        }
    return data


async def assert_same_as_row_store(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for file in FORMATS:
        response = await export(world, file=file)
        assert response.status_code == 200, response.text
        want = await without_copy(world, file, monkeypatch)
        assert contents(file, response.content) == contents(file, want), file


async def test_exports_from_the_copy_equal_the_row_store_through_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await three_submissions(world)
    rt = world.runtime
    assert not await copy_used(world)
    monkeypatch.setattr(analysis_export, "BATCH_SUBMISSIONS", 1)  # a segment in slices

    assert await analysis.extend_copy(rt, await form_id(world)) == 3

    assert await copy_used(world)
    await assert_same_as_row_store(world, monkeypatch)
    # Changed after the copy was written: an edit, a review, a deletion, a new one.
    edited = submission_xml("uuid:exp-2b", name="Besa edited", age=42, deprecated_id=ids[1])
    assert_created(await submit(world, edited))
    await _set_review_state(world, ids[2], "approved")
    deleted = await world.client.delete(
        f"/v1/projects/{world.project_id}/forms/simple/submissions/{ids[0]}",
        headers=world.admin_headers,
    )
    assert deleted.status_code == 200, deleted.text
    assert_created(await submit(world, submission_xml("uuid:exp-4", name="Vjosa", photo="")))

    rows = as_dicts(read_zip((await export(world, "?attachments=false")).content)["simple.csv"])

    assert [r["KEY"] for r in rows] == ["uuid:exp-4", ids[2], ids[1]]
    assert [r["name"] for r in rows] == ["Vjosa", 'Drita "D"', "Besa edited"]
    assert [r["ReviewState"] for r in rows] == ["", "approved", "edited"]
    assert [r["Edits"] for r in rows] == ["0", "0", "1"]
    await assert_same_as_row_store(world, monkeypatch)


async def test_small_segments_are_compacted_into_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "SEGMENT_SUBMISSIONS", 1)
    await three_submissions(world)
    rt = world.runtime
    form = await form_id(world)
    assert await analysis.extend_copy(rt, form) == 3
    monkeypatch.setattr(analysis, "SEGMENT_SUBMISSIONS", 100)
    monkeypatch.setattr(analysis, "SMALL_SEGMENT", 25)

    assert await analysis.compact_copy(rt, form) == 2

    async with rt.read() as db:
        segments = (await db.scalars(select(AnalysisSegment))).all()
    assert [(s.first_submission_id, s.last_submission_id, s.submissions) for s in segments] == [
        (1, 3, 3)
    ]
    await assert_same_as_row_store(world, monkeypatch)
    assert await segment_files(world) == {4}  # the merged ones are removed
    assert await analysis.rebuild_copy(rt, form) == 3
    assert await segment_files(world) == {1}  # a rebuild leaves no file of the old copy
    await assert_same_as_row_store(world, monkeypatch)


async def segment_files(world: World) -> set[int]:
    """Numbers of the root table's segment files in storage (1 to 9 looked for)."""
    async with world.runtime.read() as db:
        form = await find_form(db, world.project_id, "simple")
        layout = await analysis.copy_layout(db, form)
    assert layout is not None
    found = set()
    for number in range(1, 10):
        try:
            await world.runtime.blobs.read_object(layout.object_name(layout.plan.root.name, number))
        except BlobNotFound:
            continue
        found.add(number)
    return found


async def test_a_held_copy_is_left_alone_and_rebuild_writes_it_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await three_submissions(world)
    rt = world.runtime
    form = await form_id(world)
    async with rt.transaction() as db:
        db.add(
            AnalysisCopy(
                form_id=form,
                layout="",
                copied_through=0,
                claimed_until=analysis._now() + timedelta(minutes=5),
                claimed_by="another-process",
            )
        )

    assert await analysis.extend_copy(rt, form) == 0
    assert await analysis.update_copies(rt) == 0
    async with rt.transaction() as db:
        state = await db.get(AnalysisCopy, form)
        assert state is not None
        state.claimed_until = analysis._now() - timedelta(seconds=1)  # that process died

    assert await analysis.rebuild_copy(rt, form) == 3
    assert await analysis.rebuild_copy(rt, form) == 3
    async with rt.read() as db:
        count = await db.scalar(select(func.count()).select_from(AnalysisSegment))
        state = await db.get(AnalysisCopy, form)
    assert count == 1
    assert state is not None
    assert state.claimed_by is None
    assert state.copied_through == 3
    await assert_same_as_row_store(world, monkeypatch)


async def test_rebuild_analysis_from_the_command_line(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await three_submissions(world)
    async with world.runtime.transaction() as db:  # received long enough ago to settle
        await db.execute(update(Submission).values(created_at=analysis._now() - timedelta(hours=1)))

    done = run_cli(settings, "rebuild-analysis", "--form", "simple")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "simple: 3 submissions copied\n"
    assert await copy_used(world)
    await assert_same_as_row_store(world, monkeypatch)


async def test_purge_removes_the_copy_and_kept_export_files_with_the_submissions(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await three_submissions(world)
    rt = world.runtime
    form = await form_id(world)
    assert await analysis.extend_copy(rt, form) == 3
    async with rt.read() as db:
        layout = await analysis.copy_layout(db, await find_form(db, world.project_id, "simple"))
    assert layout is not None
    segment = layout.object_name(layout.plan.root.name, 1)
    assert await rt.blobs.read_object(segment)
    asked = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/simple/export-jobs", headers=world.admin_headers
    )
    assert await export_runs.run_waiting_exports(rt) == 1
    kept = f"exports/{asked.json()['id']}/simple.csv.zip"
    assert await rt.blobs.read_object(kept)
    deleted = await world.client.delete(
        f"/v1/projects/{world.project_id}/forms/simple/submissions/{ids[1]}",
        headers=world.admin_headers,
    )
    assert deleted.status_code == 200

    await purge_deleted(rt, older_than=timedelta(0))

    for name in (segment, kept):
        with pytest.raises(BlobNotFound):
            await rt.blobs.read_object(name)
    assert not await copy_used(world)
    assert await analysis.extend_copy(rt, form) == 2  # written again without it
    await assert_same_as_row_store(world, monkeypatch)
    # A purged form takes its copy and its jobs along (no row is left pointing at it).
    assert (
        await world.client.delete(
            f"/v1/projects/{world.project_id}/forms/simple", headers=world.admin_headers
        )
    ).status_code == 200
    purged = await purge_deleted(rt, older_than=timedelta(0))
    assert purged.forms == 1


async def test_a_viewer_s_exports_from_the_copy_hold_pseudonyms_and_drop_drops(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy holds answers in clear; what a viewer gets from it is the policy's."""
    await publish_returnee_form(world)
    await add_returnee(world, "uuid:r1", edited=False)
    viewer = (await make_callers(world))["view"]
    async with world.runtime.read() as db:
        form = await find_form(db, world.project_id, "returnee")
        project = await db.get(Project, world.project_id)
        assert project is not None
        key = project.pseudonym_secret.encode()
        asked = ExportOptions(personal="pseudonymise", pseudonym_key=key)
        before = await export_service.prepare_export(
            db, form, asked, (), media=False, spool_dir=world.runtime.settings.data_dir / "tmp"
        )
    assert before.copy is None
    assert await analysis.rebuild_copy(world.runtime, form.id) == 1
    async with world.runtime.read() as db:
        after = await export_service.prepare_export(
            db, form, asked, (), media=False, spool_dir=world.runtime.settings.data_dir / "tmp"
        )
    assert after.copy is not None  # the fast path serves the viewer's export

    stand_in = pseudonym(key, f"{NAME} A1")
    url = f"/v1/projects/{world.project_id}/forms/returnee"
    for file in ("submissions.csv.zip", "submissions.xlsx", "submissions.parquet.zip"):
        got = await world.client.get(f"{url}/{file}", headers=viewer)
        dropped = await world.client.get(f"{url}/{file}?personal=drop", headers=viewer)
        assert got.status_code == dropped.status_code == 200, file
        assert leaked(got.content) == [], file
        assert stand_in in readable_text(got.content), file
        assert leaked(dropped.content) == [], file
        assert stand_in not in readable_text(dropped.content), file
        assert "Shkoder" in readable_text(dropped.content), file  # the rest is there
    csv_zip = await world.client.get(f"{url}/submissions.csv.zip", headers=viewer)
    assert "media/face.jpg" not in read_zip(csv_zip.content)
