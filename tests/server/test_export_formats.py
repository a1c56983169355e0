"""XLSX, Parquet and GeoJSON exports over HTTP and from the CLI, and deletedFields.

The writers themselves are tested in tests/exports; here the routes: status,
headers, options reaching the writer, refusals before the first byte, and the
same bytes from the command line.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import openpyxl
import polars as pl

from server.cli import EXPORT_FORMATS
from server.services.exports import ExportFormat
from server.settings import Settings
from tests.server.conftest import World
from tests.server.test_cli_export import run_cli
from tests.server.test_export_options import viewer
from tests.server.test_submissions import assert_created, submit

FORM = """<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa" xmlns:homeward="urn:homeward:xforms">
<h:head><h:title>Visit</h:title><model>
<instance><visit id="visit" version="{version}"><name/><age/>{extra}<home/>
<member><first/></member>
<meta><instanceID/></meta></visit></instance>
<bind nodeset="/visit/name" type="string" homeward:personal="yes"/>
<bind nodeset="/visit/age" type="int"/>{extra_bind}
<bind nodeset="/visit/home" type="geopoint"/>
<bind nodeset="/visit/member/first" type="string"/>
<bind nodeset="/visit/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
</model></h:head>
<h:body><input ref="/visit/name"><label>Name</label></input>
<input ref="/visit/age"><label>Age</label></input>{extra_body}
<input ref="/visit/home"><label>Home</label></input>
<group ref="/visit/member"><label>Member</label><repeat nodeset="/visit/member">
<input ref="/visit/member/first"><label>First name</label></input></repeat></group>
</h:body></h:html>"""


def form(version: str, *, with_notes: bool) -> bytes:
    return FORM.format(
        version=version,
        extra="<notes/>" if with_notes else "",
        extra_bind='\n<bind nodeset="/visit/notes" type="string"/>' if with_notes else "",
        extra_body='\n<input ref="/visit/notes"><label>Notes</label></input>' if with_notes else "",
    ).encode()


def visit(instance_id: str, version: str, *, notes: str | None = None) -> bytes:
    extra = f"<notes>{notes}</notes>" if notes is not None else ""
    return (
        f'<visit id="visit" version="{version}"><name>Arta</name><age>34</age>{extra}'
        "<home>42.66 21.16 600 5</home><member><first>Besa</first></member>"
        f"<member><first>Dua</first></member><meta><instanceID>{instance_id}</instanceID>"
        "</meta></visit>"
    ).encode()


async def visit_world(world: World) -> None:
    created = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true",
        content=form("1", with_notes=True),
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert created.status_code == 200, created.text
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/visit/assignments/app-user/{world.app_user_id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text
    assert_created(await submit(world, visit("uuid:v-1", "1", notes="=1+1")))


async def fetch(
    world: World, file: str, query: str = "", headers: dict[str, str] | None = None
) -> httpx.Response:
    return await world.client.get(
        f"/v1/projects/{world.project_id}/forms/visit/{file}{query}",
        headers=world.admin_headers if headers is None else headers,
    )


async def test_xlsx_has_a_sheet_per_table_typed_cells_and_label_row(world: World) -> None:
    await visit_world(world)

    response = await fetch(world, "submissions.xlsx", "?labelRow=true&formulaGuard=true")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="visit.xlsx"' in response.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == ["visit", "visit-member"]
    rows = list(book["visit"].iter_rows(values_only=True))
    names, labels, first = rows[0], rows[1], rows[2]
    assert names[1:3] == ("name", "age")
    assert labels[1:3] == ("Name", "Age")
    assert first[2] == 34  # a number, not the text "34"
    # A typed string is never run: written as collected, whatever the CSV's guard says.
    assert first[names.index("notes")] == "=1+1"
    members = list(book["visit-member"].iter_rows(values_only=True))
    assert [row[0] for row in members[2:]] == ["Besa", "Dua"]


async def test_xlsx_has_one_header_row_unless_asked_and_csv_guard_is_an_option(
    world: World,
) -> None:
    await visit_world(world)

    plain = await fetch(world, "submissions.xlsx")
    raw_csv = await fetch(world, "submissions.csv")
    guarded_csv = await fetch(world, "submissions.csv", "?formulaGuard=true")
    refused = await fetch(world, "submissions.csv", "?formulaGuard=maybe")

    rows = list(
        openpyxl.load_workbook(io.BytesIO(plain.content), read_only=True)["visit"].iter_rows(
            values_only=True
        )
    )
    assert len(rows) == 2  # the header, then the submission
    assert rows[1][2] == 34
    assert ",=1+1," in raw_csv.text  # Central's bytes by default
    assert ",'=1+1," in guarded_csv.text
    assert refused.status_code == 400


async def test_parquet_zip_has_typed_tables(world: World) -> None:
    await visit_world(world)

    response = await fetch(world, "submissions.parquet.zip")

    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["visit.parquet", "visit-member.parquet"]
        root = pl.read_parquet(archive.read("visit.parquet"))
        members = pl.read_parquet(archive.read("visit-member.parquet"))
    assert root.schema["age"] == pl.Int64
    assert root.schema["home-Latitude"] == pl.Float64
    assert root.row(0, named=True)["age"] == 34
    assert root.row(0, named=True)["notes"] == "=1+1"  # data for analysis stays as typed
    assert members.get_column("first").to_list() == ["Besa", "Dua"]
    assert set(members.get_column("PARENT_KEY").to_list()) == {"uuid:v-1"}


async def test_geojson_has_a_point_per_submission(world: World) -> None:
    await visit_world(world)

    response = await fetch(world, "submissions.geojson")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = json.loads(response.content)
    assert collection["type"] == "FeatureCollection"
    [feature] = collection["features"]
    assert feature["id"] == "uuid:v-1"
    assert feature["geometry"] == {"type": "Point", "coordinates": [21.16, 42.66, 600.0]}
    assert feature["properties"]["age"] == 34


async def test_geojson_refusals_come_before_any_byte(world: World) -> None:
    await visit_world(world)

    unknown_table = await fetch(world, "submissions.geojson", "?table=nothing")
    unknown_field = await fetch(world, "submissions.geojson", "?geoField=age")
    no_geo = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple/submissions.geojson",
        headers=world.admin_headers,
    )

    for response in (unknown_table, unknown_field, no_geo):
        assert (response.status_code, response.json()["code"]) == (400, 400.8), response.text
    assert "geo" in no_geo.json()["message"]


async def test_personal_fields_are_pseudonymised_for_viewers_in_every_format(
    world: World,
) -> None:
    await visit_world(world)
    as_viewer = await viewer(world)

    xlsx = await fetch(world, "submissions.xlsx", headers=as_viewer)
    parquet = await fetch(world, "submissions.parquet.zip", headers=as_viewer)
    geojson = await fetch(world, "submissions.geojson", headers=as_viewer)

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)["visit"]
    assert list(sheet.iter_rows(values_only=True))[1][1] != "Arta"
    with zipfile.ZipFile(io.BytesIO(parquet.content)) as archive:
        names = pl.read_parquet(archive.read("visit.parquet")).get_column("name").to_list()
    assert names != ["Arta"]
    assert len(names[0]) == 16
    properties = json.loads(geojson.content)["features"][0]["properties"]
    assert properties["name"] != "Arta"


async def test_deleted_fields_bring_back_questions_of_older_versions(world: World) -> None:
    await visit_world(world)
    draft = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/visit/draft",
        content=form("2", with_notes=False),
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert draft.status_code == 200, draft.text
    published = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/visit/draft/publish",
        headers=world.admin_headers,
    )
    assert published.status_code == 200, published.text
    assert_created(await submit(world, visit("uuid:v-2", "2")))

    current = await fetch(world, "submissions.parquet.zip")
    merged = await fetch(world, "submissions.parquet.zip", "?deletedFields=true")

    with zipfile.ZipFile(io.BytesIO(current.content)) as archive:
        assert "notes" not in pl.read_parquet(archive.read("visit.parquet")).columns
    with zipfile.ZipFile(io.BytesIO(merged.content)) as archive:
        root = pl.read_parquet(archive.read("visit.parquet"))
    by_key = {row["KEY"]: row["notes"] for row in root.iter_rows(named=True)}
    assert by_key == {"uuid:v-1": "=1+1", "uuid:v-2": None}


async def test_cli_writes_every_format(world: World, settings: Settings, tmp_path: Path) -> None:
    await visit_world(world)
    assert set(EXPORT_FORMATS) == {f.value for f in ExportFormat}
    for fmt in ("xlsx", "parquet.zip", "geojson"):
        done = run_cli(
            settings,
            "export",
            "--project",
            str(world.project_id),
            "--form",
            "visit",
            "--format",
            fmt,
            "--out",
            str(tmp_path),
        )
        assert done.returncode == 0, done.stderr
    geojson = json.loads((tmp_path / "visit.geojson").read_bytes())
    assert len(geojson["features"]) == 1
    with zipfile.ZipFile(tmp_path / "visit.parquet.zip") as archive:
        assert pl.read_parquet(archive.read("visit.parquet")).height == 1
    book = openpyxl.load_workbook(tmp_path / "visit.xlsx", read_only=True)
    assert book.sheetnames == ["visit", "visit-member"]
    refused = run_cli(
        settings,
        "export",
        "--project",
        str(world.project_id),
        "--form",
        "simple",
        "--format",
        "geojson",
        "--out",
        str(tmp_path),
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("homeward: ")
