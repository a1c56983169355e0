"""Central's CSV exports over HTTP: submissions.csv.zip (GET, POST) and submissions.csv.

Submissions arrive the way Collect sends them (OpenRosa, app-user key); the
export is read back as an analyst's script would: file names, header, rows
newest first, media. One golden replay compares with what ODK Central answered.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import update

from server.db.models import Submission
from server.services import accounts
from server.services import exports as export_service
from server.services.export_slots import export_slots
from server.services.forms import find_form
from tests.server.conftest import XLSX, World, sign_in, submission_xml
from tests.server.test_submissions import assert_created, submit

PHOTO = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"
ROOT_HEADER = [
    "SubmissionDate",
    "name",
    "age",
    "photo",
    "meta-instanceID",
    "KEY",
    "SubmitterID",
    "SubmitterName",
    "AttachmentsPresent",
    "AttachmentsExpected",
    "Status",
    "ReviewState",
    "DeviceID",
    "Edits",
    "FormVersion",
]
VOLATILE = "<volatile>"


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def as_dicts(data: bytes) -> list[dict[str, str]]:
    header, *rows = parse_csv(data)
    return [dict(zip(header, row, strict=True)) for row in rows]


async def export(
    world: World,
    query: str = "",
    *,
    file: str = "submissions.csv.zip",
    method: str = "GET",
    form: str = "simple",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    url = f"/v1/projects/{world.project_id}/forms/{form}/{file}{query}"
    return await world.client.request(
        method, url, headers=world.admin_headers if headers is None else headers
    )


async def three_submissions(world: World) -> list[str]:
    """Oldest first: one without a photo, one with, one without."""
    ids = ["uuid:exp-1", "uuid:exp-2", "uuid:exp-3"]
    assert_created(
        await submit(
            world,
            submission_xml(ids[0], name="Arta", age=30, photo=""),
            query="?deviceID=collect%3Aabc",
        )
    )
    assert_created(
        await submit(world, submission_xml(ids[1], name="Besa, B.", age=41), {"p.jpg": PHOTO})
    )
    assert_created(await submit(world, submission_xml(ids[2], name='Drita "D"', age=52, photo="")))
    return ids


def assert_zip_response(response: httpx.Response, file_name: str = "simple.csv.zip") -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith(f'attachment; filename="{file_name}"')


async def test_csv_zip_has_root_table_newest_first_and_media(world: World) -> None:
    ids = await three_submissions(world)

    response = await export(world)

    assert_zip_response(response)
    files = read_zip(response.content)
    assert list(files) == ["simple.csv", "media/p.jpg"]
    assert files["media/p.jpg"] == PHOTO
    assert parse_csv(files["simple.csv"])[0] == ROOT_HEADER
    rows = as_dicts(files["simple.csv"])
    assert [row["KEY"] for row in rows] == list(reversed(ids))
    assert [row["name"] for row in rows] == ['Drita "D"', "Besa, B.", "Arta"]
    assert [row["age"] for row in rows] == ["52", "41", "30"]
    newest, with_photo, oldest = rows
    assert with_photo["photo"] == "p.jpg"
    assert (with_photo["AttachmentsPresent"], with_photo["AttachmentsExpected"]) == ("1", "1")
    assert (oldest["AttachmentsPresent"], oldest["AttachmentsExpected"]) == ("0", "0")
    assert oldest["DeviceID"] == "collect:abc"
    assert newest["DeviceID"] == ""
    for row, instance_id in zip(rows, reversed(ids), strict=True):
        assert row["meta-instanceID"] == instance_id
        assert row["SubmitterID"] == str(world.app_user_id)
        assert row["SubmitterName"] == "Phone 1"
        assert row["Status"] == row["ReviewState"] == ""
        assert row["Edits"] == "0"
        assert row["FormVersion"] == "1"
        assert row["SubmissionDate"].endswith("Z")
    assert rows[0]["SubmissionDate"] >= rows[1]["SubmissionDate"] >= rows[2]["SubmissionDate"]


async def test_attachments_false_leaves_media_out(world: World) -> None:
    await three_submissions(world)

    response = await export(world, "?attachments=false")

    assert_zip_response(response)
    assert list(read_zip(response.content)) == ["simple.csv"]


async def test_post_gives_the_same_export_as_get(world: World) -> None:
    await three_submissions(world)

    got = await export(world, "?attachments=False")
    posted = await export(world, "?attachments=False", method="POST")

    assert_zip_response(posted)
    assert read_zip(posted.content) == read_zip(got.content)


async def test_group_paths_false_uses_leaf_names(world: World) -> None:
    await three_submissions(world)

    response = await export(world, "?groupPaths=false&attachments=false")

    header = parse_csv(read_zip(response.content)["simple.csv"])[0]
    assert "instanceID" in header
    assert "meta-instanceID" not in header


async def test_root_csv_is_the_zips_root_table(world: World) -> None:
    await three_submissions(world)

    zipped = read_zip((await export(world, "?attachments=false")).content)["simple.csv"]
    response = await export(world, file="submissions.csv")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="simple.csv"')
    assert parse_csv(response.content) == parse_csv(zipped)


async def test_export_without_submissions_is_a_header(world: World) -> None:
    response = await export(world, file="submissions.csv")

    assert parse_csv(response.content) == [ROOT_HEADER]


async def test_callers_without_rights_get_json_errors(world: World) -> None:
    await three_submissions(world)
    async with world.runtime.transaction() as db:
        await accounts.create_user(db, email="nobody@example.org", password="long password 1")
    nobody = await sign_in(world.client, "nobody@example.org", "long password 1")
    app_user = {"Authorization": f"Bearer {world.app_user_token}"}

    anonymous = await export(world, headers={})
    not_allowed = await export(world, headers=nobody)
    with_app_token = await export(world, headers=app_user)

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 401.4)
    assert (not_allowed.status_code, not_allowed.json()["code"]) == (403, 403.1)
    # An app user's token is a Bearer token too (as in Central); it may not export.
    assert (with_app_token.status_code, with_app_token.json()["code"]) == (403, 403.1)
    for response in (anonymous, not_allowed, with_app_token):
        assert response.headers["content-type"].startswith("application/json")
        assert "content-disposition" not in response.headers


async def test_unknown_form_is_404(world: World) -> None:
    response = await export(world, form="nothing")
    csv_response = await export(world, form="nothing", file="submissions.csv")

    assert (response.status_code, response.json()["code"]) == (404, 404.1)
    assert csv_response.status_code == 404


async def _set_review_state(world: World, instance_id: str, state: str) -> None:
    async with world.runtime.transaction() as db:
        await db.execute(
            update(Submission)
            .where(Submission.instance_id == instance_id)
            .values(review_state=state)
        )


async def _keys(world: World, expression: str) -> list[str]:
    response = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple/submissions.csv",
        params={"$filter": expression},
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text
    return [row["KEY"] for row in as_dicts(response.content)]


async def test_filter_by_review_state(world: World) -> None:
    ids = await three_submissions(world)
    assert await _keys(world, "__system/reviewState eq 'approved'") == []

    await _set_review_state(world, ids[1], "approved")

    assert await _keys(world, "__system/reviewState eq 'approved'") == [ids[1]]
    assert await _keys(world, "__system/reviewState ne 'approved'") == [ids[2], ids[0]]
    assert await _keys(world, "__system/reviewState eq null") == [ids[2], ids[0]]
    zipped = await export(
        world, "?attachments=false&$filter=__system/reviewState%20eq%20%27approved%27"
    )
    assert [row["ReviewState"] for row in as_dicts(read_zip(zipped.content)["simple.csv"])] == [
        "approved"
    ]


async def test_filter_by_submission_date(world: World) -> None:
    ids = await three_submissions(world)
    newest_first = list(reversed(ids))

    assert await _keys(world, "__system/submissionDate ge 2000-01-01") == newest_first
    assert await _keys(world, "__system/submissionDate lt 2000-01-01T00:00:00Z") == []
    assert await _keys(world, "__system/submissionDate gt 2999-01-01T00:00:00.000Z") == []
    assert (
        await _keys(
            world,
            "__system/submissionDate ge 2000-01-01"
            " and __system/submissionDate le 2999-12-31T23:59:59+02:00",
        )
        == newest_first
    )


async def test_filter_reads_the_whole_odata_subset(world: World) -> None:
    ids = await three_submissions(world)
    await _set_review_state(world, ids[1], "approved")

    assert await _keys(world, "__system/submitterId eq 5") == []
    either = "__system/reviewState eq 'approved' or __system/reviewState eq null"
    assert await _keys(world, either) == list(reversed(ids))
    assert await _keys(world, "(__system/reviewState eq 'approved')") == [ids[1]]
    assert await _keys(world, "not (__system/reviewState eq 'approved')") == [ids[2], ids[0]]
    assert await _keys(world, "year(__system/submissionDate) ge 2026") == list(reversed(ids))
    assert await _keys(world, "__system/submissionDate eq 2026-01-01") == []
    assert await _keys(world, f"__id eq '{ids[0]}'") == [ids[0]]


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("name eq 'Arta'", 501.5),
        ("__system/submitterName eq 'Phone 1'", 501.5),
        ("contains(__id, 'uuid')", 501.4),
        ("__system/reviewState has 'approved'", 501.4),
    ],
)
async def test_unsupported_filters_are_501(world: World, expression: str, code: float) -> None:
    response = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple/submissions.csv.zip",
        params={"$filter": expression},
        headers=world.admin_headers,
    )

    assert (response.status_code, response.json()["code"]) == (501, code)


async def test_malformed_filter_date_is_400(world: World) -> None:
    response = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple/submissions.csv",
        params={"$filter": "__system/submissionDate ge 2026-13-45"},
        headers=world.admin_headers,
    )

    assert response.status_code == 400


async def test_pages_join_up_without_gaps_or_repeats(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await three_submissions(world)
    monkeypatch.setattr(export_service, "BATCH_SIZE", 1)

    files = read_zip((await export(world)).content)

    assert [row["KEY"] for row in as_dicts(files["simple.csv"])] == list(reversed(ids))
    assert files["media/p.jpg"] == PHOTO


async def test_output_pushed_from_the_csv_library_s_own_threads_arrives(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polars writes CSV output from threads of its own; with one-byte chunks every
    # write is handed to the event loop from such a thread (a large export does the
    # same with 64 KiB chunks).
    ids = await three_submissions(world)
    monkeypatch.setattr(export_service, "CHUNK_BYTES", 1)
    for suffix in ("csv.zip", "csv"):
        response = await world.client.get(
            f"/v1/projects/{world.project_id}/forms/simple/submissions.{suffix}",
            headers=world.admin_headers,
        )
        assert response.status_code == 200
    files = read_zip((await export(world)).content)
    assert [row["KEY"] for row in as_dicts(files["simple.csv"])] == list(reversed(ids))


async def _job(world: World) -> tuple[export_service.ExportJob, export_service.Page]:
    from exports import ExportOptions

    async with world.runtime.read() as db:
        form = await find_form(db, world.project_id, "simple")
        job = await export_service.prepare_export(
            db,
            form,
            ExportOptions(),
            (),
            media=True,
            spool_dir=world.runtime.settings.data_dir / "tmp",
        )
        return job, await export_service.fetch_page(db, job, None)


async def _paged_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> tuple[export_service.ExportJob, export_service.Page]:
    """Three submissions in pages of one: the writer asks for pages after the first."""
    await three_submissions(world)
    monkeypatch.setattr(export_service, "BATCH_SIZE", 1)
    return await _job(world)


async def test_client_leaving_stops_the_writer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_service, "CHUNK_BYTES", 1)
    monkeypatch.setattr(export_service, "PENDING_CHUNKS", 1)
    job, first = await _paged_job(world, monkeypatch)
    body = export_service.stream_export(world.runtime, job, first)

    with anyio.fail_after(10):
        assert await anext(body)
        await body.aclose()  # what the server does when the client disconnects


async def test_failure_after_the_first_byte_breaks_the_download(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_service, "CHUNK_BYTES", 1)
    job, first = await _paged_job(world, monkeypatch)

    async def broken_page(*_: Any) -> export_service.Page:
        raise RuntimeError("database went away")

    monkeypatch.setattr(export_service, "fetch_page", broken_page)
    received = bytearray()

    async def download() -> None:
        async for chunk in export_service.stream_export(world.runtime, job, first):
            received.extend(chunk)

    with pytest.raises(RuntimeError, match="database went away"):
        await download()
    assert received  # the failure came after the first byte
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(bytes(received)))


async def test_an_export_to_a_file_holds_the_download_s_bytes_and_frees_its_slot(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    job, first = await _paged_job(world, monkeypatch)
    downloaded = b"".join(
        [c async for c in export_service.stream_export(world.runtime, job, first)]
    )
    job, first = await _job(world)
    reported: list[int] = []
    path = tmp_path / "simple.csv.zip"

    written = await export_service.export_to_file(
        world.runtime, job, first, path, on_written=reported.append
    )

    assert written == path.stat().st_size == reported[-1]
    # The same zip (member dates aside): the same members, each the same bytes.
    made = zipfile.ZipFile(path)
    expected = zipfile.ZipFile(io.BytesIO(downloaded))
    assert made.namelist() == expected.namelist()
    assert all(made.read(name) == expected.read(name) for name in made.namelist())
    assert any(name.startswith("media/") for name in made.namelist())  # the photo
    slots = export_slots(world.runtime.settings.max_exports)
    assert slots.running == 0


async def test_a_failing_export_to_a_file_raises_and_frees_its_slot(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    job, first = await _paged_job(world, monkeypatch)

    async def broken_page(*_: Any) -> export_service.Page:
        raise RuntimeError("database went away")

    monkeypatch.setattr(export_service, "fetch_page", broken_page)

    with anyio.fail_after(10), pytest.raises(RuntimeError, match="database went away"):
        await export_service.export_to_file(world.runtime, job, first, tmp_path / "broken.zip")
    assert export_slots(world.runtime.settings.max_exports).running == 0


# --- golden replay against ODK Central ------------------------------------------------

GOLDEN = "pyodk__fav_color"


def assert_matches_golden(expected: dict[str, Any], data: bytes) -> None:
    assert data.startswith(b"\xef\xbb\xbf") == expected["bom"]
    header, *rows = parse_csv(data)
    assert header == expected["header"]
    assert len(rows) == len(expected["rows"])
    for number, (got, want) in enumerate(zip(rows, expected["rows"], strict=True), 1):
        masked = [g if w != VOLATILE else VOLATILE for g, w in zip(got, want, strict=True)]
        assert masked == want, f"row {number}"


async def test_csv_zip_matches_central_golden(world: World, shared_dir: Path) -> None:
    golden = json.loads((shared_dir / "central-golden" / f"{GOLDEN}.json").read_text("utf-8"))
    xlsform = shared_dir / "xlsforms" / golden["file"]
    headers = world.admin_headers
    uploaded = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?ignoreWarnings=true&publish=true",
        content=xlsform.read_bytes(),
        headers=headers | {"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": GOLDEN},
    )
    assert uploaded.status_code == 200, uploaded.text
    form_id = golden["xmlFormId"]
    assert uploaded.json()["xmlFormId"] == form_id
    app_user = await world.client.post(
        f"/v1/projects/{world.project_id}/app-users",
        json={"displayName": "Golden"},
        headers=headers,
    )
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/{form_id}/assignments/app-user/{app_user.json()['id']}",
        headers=headers,
    )
    assert assigned.status_code == 200, assigned.text
    key_base = f"/v1/key/{app_user.json()['token']}/projects/{world.project_id}"
    for submission in golden["submissions"]:
        files = {name: PHOTO for name in submission["attachments"]}
        assert_created(await submit(world, submission["xml"].encode(), files, base=key_base))

    for query, tables in golden["csv"].items():
        suffix = "?attachments=false" + ("" if query == "default" else f"&{query}")
        response = await export(world, suffix, form=form_id)
        assert_zip_response(response, f"{form_id}.csv.zip")
        files = read_zip(response.content)
        assert set(files) == set(tables), query
        for name, table in tables.items():
            assert_matches_golden(table, files[name])
