"""Real XLSForms from the shared corpus, uploaded the way pyodk and Central's web page do.

A representative few (the whole corpus is converted in tests/forms): a form named by
its file, a legacy .xls saved under an .xlsx name, an external_choices sheet that
becomes itemsets.csv, and two that pyxform rejects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.server.conftest import XLSX, World
from tests.server.test_forms_api import body_of

SAMPLE = [
    "onadata__GeoLocationForm.xlsx",
    "odkcentral__ifrc-distribution-site-assessment-v1.xlsx",
    "onadata__external_choice_form_v1.xlsx",
    "fmtm__simple_building_survey_wildfires.xlsx",
    "onadata__duplicate_choice_form.xlsx",
]


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> Path:
    return shared_dir / "xlsforms"


@pytest.fixture(scope="module")
def expected(corpus: Path) -> dict[str, dict[str, Any]]:
    decoded: dict[str, dict[str, Any]] = msgspec.json.decode(
        (corpus / "expected.json").read_bytes()
    )
    return decoded


@pytest.mark.parametrize("file_name", SAMPLE)
async def test_corpus_form_uploads_as_expected(
    world: World, corpus: Path, expected: dict[str, dict[str, Any]], file_name: str
) -> None:
    want = expected[file_name]
    path = corpus / file_name
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true&ignoreWarnings=true",
        content=path.read_bytes(),
        headers=world.admin_headers
        | {"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": path.stem},
    )
    if not want["converts"]:
        assert response.status_code == 400, response.text
        problem = response.json()
        assert problem["code"] == 400.15
        assert want["error_contains"] in problem["message"]
        forms = await world.client.get(
            f"/v1/projects/{world.project_id}/forms", headers=world.admin_headers
        )
        assert [f["xmlFormId"] for f in forms.json()] == ["simple"]
        return

    assert response.status_code == 200, response.text
    form = response.json()
    assert form["xmlFormId"] == want["form_id"]
    assert form["publishedAt"] is not None
    attachments = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/{want['form_id']}/attachments",
        headers=world.admin_headers,
    )
    assert attachments.status_code == 200
    present = {a["name"]: a["exists"] for a in attachments.json()}
    for name in want.get("attachments", []):
        assert present.get(name) is False
    for name in want.get("generated_attachments", []):
        assert present.get(name) is True
    if want.get("converts_from_path") is False:
        # A legacy .xls under an .xlsx name: the workbook comes back byte for byte.
        workbook = await world.client.get(
            f"/v1/projects/{world.project_id}/forms/{want['form_id']}.xlsx",
            headers=world.admin_headers,
        )
        assert await body_of(world.client, workbook) == path.read_bytes()
        if workbook.status_code == 200:
            assert workbook.headers["content-type"] == "application/vnd.ms-excel"
