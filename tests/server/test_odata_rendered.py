"""Rows written at ingest (exports.odata.rendered) are the rows a page writes from records.

Each test reads a page while the stored rows match the form's shape (sent as
stored), then forgets the stored shapes and reads it again (written from the
records), and compares the two answers, key order included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select, update

from exports.odata import build_model, shape_key
from server.db.models import Form, FormDef, Submission, SubmissionDef
from server.services.forms import schema_of
from server.services.rendered_rows import Rendered, render_stored_rows
from server.settings import Settings
from tests.server.conftest import SIMPLE_FORM, World, submission_xml
from tests.server.odata_helpers import replay_golden
from tests.server.test_cli_export import run_cli
from tests.server.test_odata_golden import GOLDEN_FILES
from tests.server.test_submissions import assert_created, submit

URL_SAFE = "!'()*-._~"  # what encodeURIComponent leaves alone, as Central's links


async def _current_shape(world: World, xml_form_id: str) -> str:
    async with world.runtime.read() as db:
        form_def = (
            await db.execute(
                select(FormDef)
                .join(Form, Form.current_def_id == FormDef.id)
                .where(Form.xml_form_id == xml_form_id)
            )
        ).scalar_one()
        return shape_key(build_model(schema_of(form_def)).tables["Submissions"])


async def _stored_shapes(world: World, xml_form_id: str) -> list[str | None]:
    async with world.runtime.read() as db:
        rows = await db.execute(
            select(SubmissionDef.odata_shape)
            .join(Submission, Submission.id == SubmissionDef.submission_id)
            .join(Form, Form.id == Submission.form_id)
            .where(Form.xml_form_id == xml_form_id, SubmissionDef.current.is_(True))
        )
        return list(rows.scalars())


async def _forget_stored_rows(world: World) -> None:
    async with world.runtime.transaction() as db:
        await db.execute(update(SubmissionDef).values(odata_shape=None))


async def _page(world: World, xml_form_id: str, **params: str) -> list[Any]:
    response = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/{xml_form_id}.svc/Submissions",
        params=params,
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text
    rows: list[Any] = response.json()["value"]
    return [(list(row), row) for row in rows]  # key order too


def _links(row: dict[str, Any]) -> list[str]:
    """Navigation links anywhere in a row (repeats inside groups link from there)."""
    found = []
    for key, value in row.items():
        if key.endswith("@odata.navigationLink"):
            found.append(value)
        elif isinstance(value, dict) and key != "__system":
            found += _links(value)
    return found


@pytest.mark.parametrize("stem", GOLDEN_FILES)
async def test_stored_rows_equal_rows_from_records(
    world: World, shared_dir: Path, stem: str
) -> None:
    golden = await replay_golden(world, shared_dir, stem)
    form_id = golden["xmlFormId"]
    shape = await _current_shape(world, form_id)
    assert await _stored_shapes(world, form_id) == [shape] * len(golden["submissions"])
    stored = await _page(world, form_id)
    stored_filtered = await _page(world, form_id, **{"$top": "1", "$count": "true"})

    await _forget_stored_rows(world)

    assert stored == await _page(world, form_id)
    assert stored_filtered == await _page(world, form_id, **{"$top": "1", "$count": "true"})


async def test_an_edit_stores_its_row_under_the_submission(world: World, shared_dir: Path) -> None:
    """Repeat links and row ids of an edited version hang from the first instanceID."""
    golden = await replay_golden(world, shared_dir, "onadata__nested_repeats")
    form_id = golden["xmlFormId"]
    original = golden["submissions"][0]["xml"]
    first_id = re.search(r"<instanceID>([^<]+)</instanceID>", original)
    assert first_id is not None
    edited = original.replace(
        first_id.group(0),
        f"<instanceID>uuid:edited-1</instanceID><deprecatedID>{first_id[1]}</deprecatedID>",
    )
    key_base = f"/v1/key/{world.app_user_token}/projects/{world.project_id}"
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/{form_id}/assignments/app-user/{world.app_user_id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text
    assert_created(await submit(world, edited.encode(), base=key_base))
    stored = await _page(world, form_id)
    edited_row = next(row for _, row in stored if row["__id"] == first_id[1])
    links = _links(edited_row)
    assert await _current_shape(world, form_id) in await _stored_shapes(world, form_id)

    await _forget_stored_rows(world)

    assert stored == await _page(world, form_id)
    linked = f"Submissions('{quote(first_id[1], safe=URL_SAFE)}')/"
    assert links
    assert all(link.startswith(linked) for link in links)


async def _publish_version_with_a_town(world: World) -> None:
    two = SIMPLE_FORM.replace(b'version="1"', b'version="2"').replace(b"<age/>", b"<age/><town/>")
    two = two.replace(
        b'<bind nodeset="/data/age" type="int"/>',
        b'<bind nodeset="/data/age" type="int"/><bind nodeset="/data/town" type="string"/>',
    )
    base = f"/v1/projects/{world.project_id}/forms/simple"
    headers = world.admin_headers
    drafted = await world.client.post(
        f"{base}/draft", content=two, headers=headers | {"Content-Type": "application/xml"}
    )
    assert drafted.status_code == 200, drafted.text
    assert (await world.client.post(f"{base}/draft/publish", headers=headers)).status_code == 200


async def test_publishing_new_fields_rewrites_older_rows_for_them(world: World) -> None:
    assert_created(await submit(world, submission_xml("uuid:before", photo="")))
    first_shape = (await _stored_shapes(world, "simple"))[0]
    await _publish_version_with_a_town(world)  # rewrites after answering
    after = submission_xml("uuid:after", version="2", photo="").replace(
        b"<age>30</age>", b"<age>30</age><town>Durr\xc3\xabs</town>"
    )
    assert_created(await submit(world, after))

    rows = {row["__id"]: row for _, row in await _page(world, "simple")}
    shapes = await _stored_shapes(world, "simple")

    assert rows["uuid:before"]["town"] is None  # the old version had no town
    assert rows["uuid:after"]["town"] == "Durrës"
    assert rows["uuid:before"]["name"] == "Arta"
    current = await _current_shape(world, "simple")
    assert current != first_shape
    assert shapes == [current, current]


async def test_render_rows_brings_stale_and_missing_rows_to_the_current_shape(
    world: World,
) -> None:
    for number in range(5):
        assert_created(await submit(world, submission_xml(f"uuid:r{number}", photo="")))
    async with world.runtime.transaction() as db:
        # Written for other fields (or by an older Homeward), and not at all
        # (stored before migration 0006).
        await db.execute(update(SubmissionDef).values(odata_shape="0" * 32))
        await db.execute(
            update(SubmissionDef)
            .where(SubmissionDef.instance_id == "uuid:r0")
            .values(odata_shape=None, odata_row=None)
        )
    from_records = await _page(world, "simple")
    current = await _current_shape(world, "simple")

    rendered = await render_stored_rows(world.runtime, batch=2)
    again = await render_stored_rows(world.runtime, batch=2)

    assert rendered == Rendered(forms=1, rows=5)
    assert again == Rendered(forms=0, rows=0)
    assert await _stored_shapes(world, "simple") == [current] * 5
    assert await _page(world, "simple") == from_records
    assert [row["name"] for _, row in from_records] == ["Arta"] * 5


async def test_render_rows_from_the_command_line(world: World, settings: Settings) -> None:
    assert_created(await submit(world, submission_xml("uuid:cli", photo="")))
    await _forget_stored_rows(world)

    done = run_cli(settings, "render-rows")

    assert done.returncode == 0, done.stderr
    assert "Wrote 1 OData rows of 1 forms." in done.stdout
    assert await _stored_shapes(world, "simple") == [await _current_shape(world, "simple")]
