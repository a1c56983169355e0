"""The OData feed against what a real ODK Central answered (shared/central-golden).

For each golden form: upload the XLSForm, send its two submissions as Collect
would, then compare ``$metadata`` (reduced the way the golden files keep it)
and ``Submissions?$expand=*`` with Central's answers; values Central marks
``<volatile>`` (times, submitter, device, version) match anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import World
from tests.server.odata_helpers import (
    assert_odata_collection,
    mask,
    project_relative,
    reduce_metadata,
    replay_golden,
)

GOLDEN_FILES = [
    "fmtm__slum_assessment_survey",
    "odkcentral__all-question-types-v2024091201-3",
    "onadata__nested_repeats",
    "pyodk__fav_color",
]


@pytest.mark.parametrize("stem", GOLDEN_FILES)
async def test_odata_matches_central_golden(world: World, shared_dir: Path, stem: str) -> None:
    golden = await replay_golden(world, shared_dir, stem)
    base = f"/v1/projects/{world.project_id}/forms/{golden['xmlFormId']}.svc"

    metadata = await world.client.get(f"{base}/$metadata", headers=world.admin_headers)
    assert metadata.status_code == 200, metadata.text
    assert metadata.headers["content-type"].startswith("application/xml")
    assert reduce_metadata(metadata.content) == golden["odata"]["metadata"]

    response = await world.client.get(
        f"{base}/Submissions", params={"$expand": "*"}, headers=world.admin_headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_odata_collection(body, table="Submissions")
    expected = golden["odata"]["rows"]
    assert project_relative(body["@odata.context"], world.project_id) == expected["@odata.context"]
    assert len(body["value"]) == len(expected["value"])
    for got, want in zip(body["value"], expected["value"], strict=True):
        assert mask(want, got) == want
