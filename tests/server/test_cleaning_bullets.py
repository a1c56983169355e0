"""Issue 14's bullets that had no test over HTTP yet (the others are listed in the report)."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import polars as pl

from tests.server.conftest import World
from tests.server.test_csv_export import as_dicts, read_zip
from tests.server.test_export_options import intake_world


def url(world: World, file: str) -> str:
    return f"/v1/projects/{world.project_id}/forms/intake/{file}"


async def test_language_by_its_code_alone_is_the_forms_shqip_sq_in_every_format(
    world: World,
) -> None:
    await intake_world(world)
    query = "?labels=true&language=sq"

    csv_zip = await world.client.get(
        url(world, f"submissions.csv.zip{query}"), headers=world.admin_headers
    )
    xlsx = await world.client.get(
        url(world, f"submissions.xlsx{query}"), headers=world.admin_headers
    )
    parquet = await world.client.get(
        url(world, f"submissions.parquet.zip{query}"), headers=world.admin_headers
    )
    unknown = await world.client.get(
        url(world, "submissions.csv.zip?labels=true&language=de"), headers=world.admin_headers
    )

    assert [r.status_code for r in (csv_zip, xlsx, parquet)] == [200, 200, 200], csv_zip.text
    assert [r["country"] for r in as_dicts(read_zip(csv_zip.content)["intake.csv"])] == [
        "Kosova",
        "Shqipëria",
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["intake"]
    header = [c.value for c in sheet[1]]
    column = header.index("country")
    assert [row[column].value for row in sheet.iter_rows(min_row=2)] == ["Kosova", "Shqipëria"]
    with zipfile.ZipFile(io.BytesIO(parquet.content)) as archive:
        frame = pl.read_parquet(archive.read("intake.parquet"))
    assert frame.get_column("country").to_list() == ["Kosova", "Shqipëria"]
    assert unknown.status_code == 400
