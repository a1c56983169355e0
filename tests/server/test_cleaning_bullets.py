"""Issue 14's bullets that had no test over HTTP yet (the others are listed in the report)."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

import openpyxl
import polars as pl
import pytest

from server.services import analysis, analysis_export
from server.services import exports as export_service
from server.services.forms import find_form
from tests.server.conftest import World
from tests.server.test_analysis_copy import contents
from tests.server.test_check_findings import (
    ODD,
    check_round,
    families_world,
    family,
    findings,
    send,
)
from tests.server.test_check_findings import url as families_url
from tests.server.test_csv_export import as_dicts, export, read_zip
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


async def test_a_cleaned_export_reads_the_analysis_copy_and_equals_the_row_stores(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "SETTLE", timedelta(seconds=-1))
    await families_world(world)
    await send(world, ODD)
    await check_round(world)
    by_kind = {f["kind"]: f for f in await findings(world)}
    for kind, body in (("outlier", {"newValue": "40"}), ("other", {})):
        accepted = await world.client.post(
            families_url(world, f"cleaning-findings/{by_kind[kind]['id']}/accept"),
            json=body,
            headers=world.admin_headers,
        )
        assert accepted.status_code == 200, accepted.text
    removed = await world.client.post(
        families_url(world, "cleaning-log"),
        json={"instanceId": "uuid:f0", "reason": "a test interview"},
        headers=world.admin_headers,
    )
    assert removed.status_code == 200, removed.text
    async with world.runtime.read() as db:
        form = await find_form(db, world.project_id, "families")
    assert await analysis.extend_copy(world.runtime, form.id) == 7
    await send(world, family(12, ("33", "spouse", "")))  # beyond the copy

    async def no_copy(*_: object) -> None:
        return None

    read_segments: list[int] = []
    real_batches = analysis_export.segment_batches

    def counted(*args: Any, **kwargs: Any) -> Any:
        read_segments.append(1)
        return real_batches(*args, **kwargs)

    monkeypatch.setattr(export_service, "segment_batches", counted)
    for file in ("submissions.csv.zip", "submissions.xlsx", "submissions.parquet.zip"):
        read_segments.clear()
        from_copy = await export(world, "?cleaned=true", file=file, form="families")
        with monkeypatch.context() as patch:
            patch.setattr(export_service, "usable_copy", no_copy)
            from_rows = await export(world, "?cleaned=true", file=file, form="families")
        assert from_copy.status_code == from_rows.status_code == 200, from_copy.text
        assert contents(file, from_copy.content) == contents(file, from_rows.content), file
        assert read_segments == [1], file  # the cleaned export did read the copy

    rows = as_dicts(
        read_zip((await export(world, "?cleaned=true", form="families")).content)[
            "families-household.csv"
        ]
    )
    cleaned = {r["KEY"]: (r["age"], r["relation"]) for r in rows}
    assert cleaned["uuid:f9/household[3]"] == ("40", "spouse")
    assert not [key for key in cleaned if key.startswith("uuid:f0/")]
    assert "uuid:f12/household[1]" in cleaned
