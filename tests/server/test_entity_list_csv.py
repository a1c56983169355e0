"""The entity list's CSV spliced from stored lines is the CSV rendered from the entities' data.

Each create and update stores the entity's CSV line (server.services.entity_lists);
a download joins the stored lines, or renders an entity whose line is missing or
was written for other properties. Here every download Collect or the API makes is
compared, byte for byte, with the list rendered from the data alone, after each
kind of change and across several pages.
"""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from sqlalchemy import select, update

from forms.personal import pseudonym
from forms.xlsform import compile_xlsform
from server.db.models import Dataset, EntityRow
from server.services import entity_lists
from tests.server.conftest import World
from tests.server.test_entities import INTAKE

FOLLOW_UP = """
| survey |
| | type | name | label | save_to |
| | select_one_from_file returnees.csv | who | Who | |
| | text | status | Status | status |
| entities |
| | list_name | entity_id |
| | returnees | ${who} |
| settings |
| | form_id | version |
| | follow_up | 1 |
"""

# Values CSV must quote or keep as they are.
AWKWARD = ["Ana", 'Dritë "Drita"', "Kukës, Fier", "line\nbreak", "tab\there", "çë ñ ü 日本"]


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of three entities, so that every list here spans several."""
    monkeypatch.setattr(entity_lists, "_BATCH", 3)


async def _publish(world: World, markdown: str, form_id: str) -> None:
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true",
        content=compile_xlsform(markdown.encode(), file_name="f.md").xml,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/{form_id}/assignments/app-user/{world.app_user_id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


async def _submit(world: World, xml: str) -> None:
    response = await world.client.post(
        f"{world.key_base}/submission",
        files={"xml_submission_file": ("s.xml", xml.encode(), "text/xml")},
        headers={"X-OpenRosa-Version": "1.0"},
    )
    assert response.status_code == 201, response.text


async def _register(world: World, first: str, town: str) -> str:
    entity_id = str(uuid.uuid4())
    await _submit(
        world,
        f'<data id="intake" version="1"><first_name>{_escape(first)}</first_name>'
        f"<town>{_escape(town)}</town><status>new</status>"
        f"<meta><instanceID>uuid:{uuid.uuid4()}</instanceID>"
        f'<entity dataset="returnees" create="1" id="{entity_id}">'
        f"<label>{_escape(first)} {_escape(town)}</label></entity></meta></data>",
    )
    return entity_id


async def _follow_up(world: World, entity_id: str, status: str, base: int) -> None:
    await _submit(
        world,
        f'<data id="follow_up" version="1"><who>{entity_id}</who>'
        f"<status>{_escape(status)}</status><meta><instanceID>uuid:{uuid.uuid4()}</instanceID>"
        f'<entity dataset="returnees" update="1" id="{entity_id}" baseVersion="{base}"/>'
        "</meta></data>",
    )


async def _collect_download(world: World) -> bytes:
    """The list as the phone downloads it (the form attachment)."""
    response = await world.client.get(f"{world.key_base}/forms/follow_up/attachments/returnees.csv")
    assert response.status_code == 200, response.text
    return response.content


async def _api_download(world: World) -> list[list[str]]:
    """Central's entities.csv, in Collect's columns (it has its own order and more)."""
    response = await world.client.get(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities.csv",
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text
    header, *rows = csv.reader(io.StringIO(response.content.decode()))
    properties = header[2 : header.index("__createdAt")]
    picked = [header.index(name) for name in ["__id", "label", "__version", *properties]]
    lines = sorted([row[i] for i in picked] for row in rows)
    return [["name", "label", "__version", *properties], *lines]


def _sorted_rows(listed: bytes) -> list[list[str]]:
    header, *rows = csv.reader(io.StringIO(listed.decode()))
    return [header, *sorted(rows)]


async def _rendered(world: World, owner: int | None = None) -> bytes:
    """The list rendered from each entity's data, no stored line used (the masked
    path with nothing to mask)."""
    async with world.runtime.read() as db:
        dataset_id = await db.scalar(select(Dataset.id).where(Dataset.name == "returnees"))
        assert dataset_id is not None
        properties = await entity_lists.published_properties(db, dataset_id)
    chunks = entity_lists.stream_csv(
        world.runtime, dataset_id, properties, owner, masked=(frozenset(), b"")
    )
    return b"".join([chunk async for chunk in chunks])


async def _stored_lines(world: World) -> list[str | None]:
    async with world.runtime.read() as db:
        return list(await db.scalars(select(EntityRow.csv_line).order_by(EntityRow.id)))


async def _assert_spliced_is_rendered(world: World) -> list[list[str]]:
    rendered = await _rendered(world)
    assert await _collect_download(world) == rendered
    assert await _api_download(world) == _sorted_rows(rendered)
    return list(csv.reader(io.StringIO(rendered.decode())))


async def test_stored_lines_serve_the_list_as_rendering_would_through_every_change(
    world: World,
) -> None:
    await _publish(world, INTAKE, "intake")
    await _publish(world, FOLLOW_UP, "follow_up")
    ids = [
        await _register(world, first, town)
        for first, town in zip(AWKWARD, AWKWARD[::-1], strict=True)
    ]
    assert None not in await _stored_lines(world)
    rows = await _assert_spliced_is_rendered(world)
    assert rows[0] == ["name", "label", "__version", "first_name", "municipality", "status"]
    assert [row[3] for row in rows[1:]] == AWKWARD
    assert rows[2][:3] == [ids[1], f"{AWKWARD[1]} {AWKWARD[-2]}", "1"]

    # A property added later: lines stored before it get an empty column.
    added = await world.client.post(
        f"/v1/projects/{world.project_id}/datasets/returnees/properties",
        json={"name": "phone"},
        headers=world.admin_headers,
    )
    assert added.status_code == 200, added.text
    rows = await _assert_spliced_is_rendered(world)
    assert rows[0][-1] == "phone"
    assert {row[-1] for row in rows[1:]} == {""}
    created = await world.client.post(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities",
        json={"label": "Besa, K", "data": {"phone": '+355 "69"', "status": "new"}},
        headers=world.admin_headers,
    )
    assert created.status_code == 200, created.text
    rows = await _assert_spliced_is_rendered(world)
    assert rows[-1][1:] == ["Besa, K", "1", "", "", "new", '+355 "69"']

    # Updates: from a follow-up submission and through the API.
    await _follow_up(world, ids[2], "visited, 3 months", base=1)
    patched = await world.client.patch(
        f"/v1/projects/{world.project_id}/datasets/returnees/entities/{ids[3]}?force=true",
        json={"label": "Renamed\nlabel", "data": {"phone": "0"}},
        headers=world.admin_headers,
    )
    assert patched.status_code == 200, patched.text
    rows = await _assert_spliced_is_rendered(world)
    assert rows[3][2:] == ["2", AWKWARD[2], AWKWARD[-3], "visited, 3 months", ""]
    assert rows[4][1:3] == ["Renamed\nlabel", "2"]
    assert rows[4][-1] == "0"

    # Deleted entities leave the list; restored ones come back as they were.
    for action in ("delete", "restore"):
        url = f"/v1/projects/{world.project_id}/datasets/returnees/entities/{ids[0]}"
        if action == "delete":
            answer = await world.client.delete(url, headers=world.admin_headers)
        else:
            answer = await world.client.post(f"{url}/restore", headers=world.admin_headers)
        assert answer.status_code == 200, answer.text
        rows = await _assert_spliced_is_rendered(world)
        assert (ids[0] in [row[0] for row in rows]) is (action == "restore")


async def test_entities_without_a_stored_line_are_rendered_among_those_with_one(
    world: World,
) -> None:
    await _publish(world, INTAKE, "intake")
    await _publish(world, FOLLOW_UP, "follow_up")
    ids = [await _register(world, first, "Vlorë") for first in AWKWARD]
    spliced = await _collect_download(world)
    # As entities written before lines were stored, or written for other properties.
    async with world.runtime.transaction() as db:
        await db.execute(
            update(EntityRow).where(EntityRow.uuid.in_(ids[1::2])).values(csv_line=None)
        )
        await db.execute(
            update(EntityRow).where(EntityRow.uuid == ids[0]).values(csv_key="0123456789abcdef")
        )
    assert await _collect_download(world) == spliced == await _rendered(world)
    # The next update stores the line again.
    await _follow_up(world, ids[1], "moved", base=1)
    assert (await _stored_lines(world))[1] is not None
    assert await _collect_download(world) == await _rendered(world)


def test_an_entity_holding_a_property_not_yet_published_stores_no_line() -> None:
    # Columns published later would not be empty for it: rendered at download instead.
    stored = entity_lists.render_stored_line(["a", "b"], "u", "L", 1, {"a": "x", "c": "later"})
    assert stored == {"csv_key": None, "csv_line": None}
    assert entity_lists.render_stored_line(["a", "b"], "u", "L, M", 3, {"b": "y"}) == {
        "csv_key": entity_lists.properties_key(["a", "b"]),
        "csv_line": 'u,"L, M",3,,y',
    }


async def test_owner_only_lists_splice_only_the_callers_entities(world: World) -> None:
    await _publish(world, INTAKE, "intake")
    await _publish(world, FOLLOW_UP, "follow_up")
    mine = [await _register(world, first, "Durrës") for first in AWKWARD[:4]]
    for label in ("Someone, else", "Another"):
        other = await world.client.post(
            f"/v1/projects/{world.project_id}/datasets/returnees/entities",
            json={"label": label, "data": {"status": "new"}},
            headers=world.admin_headers,
        )
        assert other.status_code == 200, other.text
    patched = await world.client.patch(
        f"/v1/projects/{world.project_id}/datasets/returnees",
        json={"ownerOnly": True},
        headers=world.admin_headers,
    )
    assert patched.status_code == 200, patched.text
    downloaded = await _collect_download(world)
    assert downloaded == await _rendered(world, owner=world.app_user_id)
    assert [row[0] for row in csv.reader(io.StringIO(downloaded.decode()))][1:] == mine
    assert await _api_download(world) == _sorted_rows(await _rendered(world))  # all of them


async def test_a_masked_caller_gets_pseudonyms_not_the_stored_lines(world: World) -> None:
    await _publish(world, INTAKE, "intake")
    await _publish(world, FOLLOW_UP, "follow_up")
    for first in AWKWARD:
        await _register(world, first, "Berat")
    async with world.runtime.read() as db:
        dataset_id = await db.scalar(select(Dataset.id).where(Dataset.name == "returnees"))
        assert dataset_id is not None
        properties = await entity_lists.published_properties(db, dataset_id)
    key = b"project secret"
    chunks = entity_lists.stream_csv(
        world.runtime, dataset_id, properties, None, masked=(frozenset({"first_name"}), key)
    )
    masked = list(csv.reader(io.StringIO(b"".join([c async for c in chunks]).decode())))
    clear = list(csv.reader(io.StringIO((await _rendered(world)).decode())))
    assert masked[0] == clear[0]
    column = clear[0].index("first_name")
    assert [row[column] for row in masked[1:]] == [pseudonym(key, v) for v in AWKWARD]
    for shown, plain in zip(masked[1:], clear[1:], strict=True):
        assert shown[:column] + shown[column + 1 :] == plain[:column] + plain[column + 1 :]
