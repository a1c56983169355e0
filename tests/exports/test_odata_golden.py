"""The pure OData pieces against ODK Central's answers, without a server.

Records come from the golden submissions parsed as ingest parses them; the rows
(less ``__system``, which the server adds; ``<volatile>`` matches anything) and
the reduced ``$metadata`` must equal what Central answered.
tests/server/test_odata_golden.py does the same over HTTP on both backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exports.odata import RowOptions, RowWriter, build_model, render_metadata
from tests.exports.test_golden_csv import GOLDEN_FILES, golden_case
from tests.server.odata_helpers import mask, reduce_metadata


@pytest.mark.parametrize("stem", GOLDEN_FILES)
def test_rows_and_metadata_match_central(shared_dir: Path, stem: str) -> None:
    golden, schema, records = golden_case(shared_dir, stem)
    model = build_model(schema)
    writer = RowWriter(model, model.root, RowOptions(expand=True))

    rows = []
    for item in records:
        assert isinstance(item.record, dict)  # golden_case gives decoded records
        rows.append(writer.rows(item.meta.instance_id, item.record)[0])

    expected: list[dict[str, Any]] = [
        {key: value for key, value in row.items() if key != "__system"}
        for row in golden["odata"]["rows"]["value"]
    ]
    # Preloads such as start/end differ from run to run: Central's <volatile>.
    assert [mask(want, got) for want, got in zip(expected, rows, strict=True)] == expected
    assert reduce_metadata(render_metadata(model)) == golden["odata"]["metadata"]
