"""Cleaned exports from the analysis copy equal those of the row store, in every format.

Entries of every kind (numbers, text, a location, roster rows, a value emptied,
a correction of a correction, a row that does not exist, a removed
submission) are added through the API to submissions in the copy, to one
edited after the copy was written and to one the copy does not reach yet.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from datetime import timedelta
from typing import Any

import pytest

from server.services import analysis, analysis_export
from server.services import exports as export_service
from server.services.forms import find_form
from tests.server.conftest import World
from tests.server.test_analysis_copy import contents
from tests.server.test_csv_export import as_dicts, read_zip
from tests.server.test_export_formats import fetch, visit_world
from tests.server.test_submissions import assert_created, submit

FILES = (
    "submissions.csv.zip",
    "submissions.csv",
    "submissions.xlsx",
    "submissions.parquet.zip",
    "submissions.geojson",
)
XML = {"Content-Type": "application/xml"}


def visit(instance_id: str, age: int, *members: str, deprecated: str | None = None) -> bytes:
    rows = "".join(f"<member><first>{first}</first></member>" for first in members)
    old = f"<deprecatedID>{deprecated}</deprecatedID>" if deprecated else ""
    return (
        f'<visit id="visit" version="1"><name>Name {age}</name><age>{age}</age>'
        f"<notes>note {age}</notes><home>42.{age} 21.16 600 5</home>{rows}"
        f"<meta><instanceID>{instance_id}</instanceID>{old}</meta></visit>"
    ).encode()


async def add_entry(world: World, instance_id: str, field: str | None, new: str = "") -> None:
    body: dict[str, str] = {"instanceId": instance_id, "reason": "checked by phone"}
    if field is not None:
        body |= {"field": field, "newValue": new}
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/visit/cleaning-log",
        json=body,
        headers=world.admin_headers,
    )
    assert response.status_code == 200, response.text


async def cleaned_world(world: World) -> None:
    await visit_world(world)  # uuid:v-1
    for n in range(2, 8):
        assert_created(await submit(world, visit(f"uuid:v-{n}", 20 + n, "Besa", "Dua")))
    async with world.runtime.read() as db:
        form = await find_form(db, world.project_id, "visit")
    assert await analysis.extend_copy(world.runtime, form.id) == 7
    edited = await world.client.put(
        f"/v1/projects/{world.project_id}/forms/visit/submissions/uuid:v-3",
        content=visit("uuid:v-3-b", 33, "Besa", "Dua", "Era", deprecated="uuid:v-3"),
        headers=world.admin_headers | XML,
    )
    assert edited.status_code == 200, edited.text
    assert_created(await submit(world, visit("uuid:v-8", 28, "Fatos")))  # beyond the copy
    for instance_id, field, new in (
        ("uuid:v-2", "/age", "32"),
        ("uuid:v-2", "/notes", "spelled, with a comma"),
        ("uuid:v-2", "/home", "41.5 20.5 100 3"),
        ("uuid:v-3", "/member[3]/first", "Eri"),  # a row the edit added
        ("uuid:v-4", "/member[2]/first", ""),  # emptied
        ("uuid:v-4", "/age", "40"),
        ("uuid:v-4", "/age", "41"),  # the later entry wins
        ("uuid:v-5", "/member[9]/first", "nobody"),  # no such row: nothing changes
        ("uuid:v-6", None, ""),  # a duplicate: left out with its roster
        ("uuid:v-8", "/age", "38"),
    ):
        await add_entry(world, instance_id, field, new)


async def test_cleaned_exports_from_the_copy_equal_the_row_stores_in_every_format(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "SETTLE", timedelta(seconds=-1))
    await cleaned_world(world)
    read_segments: list[int] = []
    real_batches = analysis_export.segment_batches

    def counted(*args: Any, **kwargs: Any) -> Any:
        read_segments.append(1)
        return real_batches(*args, **kwargs)

    async def no_copy(*_: object) -> None:
        return None

    monkeypatch.setattr(export_service, "segment_batches", counted)
    for file in FILES:
        read_segments.clear()
        from_copy = await fetch(world, file, "?cleaned=true")
        with monkeypatch.context() as patch:
            patch.setattr(export_service, "usable_copy", no_copy)
            from_rows = await fetch(world, file, "?cleaned=true")
        assert from_copy.status_code == from_rows.status_code == 200, from_copy.text
        assert contents(file, from_copy.content) == contents(file, from_rows.content), file
        assert read_segments == [1], file  # it did read the copy

    tables = read_zip((await fetch(world, "submissions.csv.zip", "?cleaned=true")).content)
    root = {row["KEY"]: row for row in as_dicts(tables["visit.csv"])}
    members = {row["KEY"]: row["first"] for row in as_dicts(tables["visit-member.csv"])}
    assert sorted(root) == [f"uuid:v-{n}" for n in (1, 2, 3, 4, 5, 7, 8)]
    assert (root["uuid:v-2"]["age"], root["uuid:v-2"]["notes"]) == ("32", "spelled, with a comma")
    assert (root["uuid:v-4"]["age"], root["uuid:v-8"]["age"]) == ("41", "38")
    assert root["uuid:v-3"]["age"] == "33"  # the edit, as collected
    assert (members["uuid:v-3/member[3]"], members["uuid:v-4/member[2]"]) == ("Eri", "")
    assert members["uuid:v-5/member[2]"] == "Dua"
    assert not [key for key in members if key.startswith("uuid:v-6/")]
    features = json.loads((await fetch(world, "submissions.geojson", "?cleaned=true")).content)
    points = {f["id"]: f["geometry"]["coordinates"] for f in features["features"]}
    assert points["uuid:v-2"] == [20.5, 41.5, 100.0]
    assert "uuid:v-6" not in points


def deflated_members(data: bytes) -> dict[str, bytes]:
    """Each member's bytes as stored in the zip (compressed), by name."""
    found = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name_length, extra_length = struct.unpack(
                "<HH", data[info.header_offset + 26 : info.header_offset + 30]
            )
            start = info.header_offset + 30 + name_length + extra_length
            found[info.filename] = data[start : start + info.compress_size]
    return found


async def test_a_cleaned_csv_zip_from_the_copy_is_written_as_a_raw_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "SETTLE", timedelta(seconds=-1))
    await visit_world(world)
    for n in range(2, 5):
        assert_created(await submit(world, visit(f"uuid:v-{n}", 20 + n, "Besa")))
    async with world.runtime.read() as db:
        form = await find_form(db, world.project_id, "visit")
    assert await analysis.extend_copy(world.runtime, form.id) == 4

    raw = await fetch(world, "submissions.csv.zip")
    cleaned = await fetch(world, "submissions.csv.zip", "?cleaned=true")  # an empty log

    # The same tables, deflated the same way (the root table is not streamed
    # through another deflater as rows from the row store are), and the log.
    assert raw.status_code == cleaned.status_code == 200, cleaned.text
    members = deflated_members(cleaned.content)
    assert list(members) == ["visit.csv", "visit-member.csv", "cleaning-log.csv"]
    assert {n: members[n] for n in ("visit.csv", "visit-member.csv")} == deflated_members(
        raw.content
    )
