"""pyodk's ``submissions.get_table`` against a live server: Central's OData feed.

A nested-repeat form from the shared XLSForms is uploaded and filled in through
pyodk itself; the analyst's calls (filter, expand, top/skip, count, wkt, a
repeat table) must give the rows Central would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyodk.client import Client

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.slow  # a real server process per test

GOLDEN = "onadata__nested_repeats"


@pytest.fixture
def pyodk_client(live_server: str, tmp_path: Path) -> Iterator[Client]:
    config = tmp_path / "pyodk_config.toml"
    config.write_text(
        f'[central]\nbase_url = "{live_server}"\n'
        f'username = "{ADMIN_EMAIL}"\npassword = "{ADMIN_PASSWORD}"\n'
    )
    client = Client(config_path=config, cache_path=tmp_path / "pyodk_cache.toml")
    client.open()
    try:
        yield client
    finally:
        client.close()


def _assert_odata(body: dict[str, Any], table: str) -> None:
    assert body["@odata.context"].endswith(f".svc/$metadata#{table}")
    assert isinstance(body["value"], list)


def test_get_table_with_every_option(
    pyodk_client: Client, shared_dir: Path, tmp_path: Path
) -> None:
    golden = json.loads((shared_dir / "central-golden" / f"{GOLDEN}.json").read_text("utf-8"))
    created = pyodk_client.post("projects", json={"name": "OData"})
    project_id = created.json()["id"]
    definition = tmp_path / f"{GOLDEN}.xlsx"
    definition.write_bytes((shared_dir / "xlsforms" / golden["file"]).read_bytes())
    form = pyodk_client.forms.create(definition=definition, project_id=project_id)
    form_id = form.xmlFormId
    assert form_id == golden["xmlFormId"]
    for submission in golden["submissions"]:
        pyodk_client.submissions.create(
            xml=submission["xml"], form_id=form_id, project_id=project_id
        )
    first, second = (s["instanceID"] for s in golden["submissions"])

    everything = pyodk_client.submissions.get_table(
        form_id=form_id, project_id=project_id, expand="*", count=True, wkt=True
    )
    _assert_odata(everything, "Submissions")
    assert everything["@odata.count"] == 2
    assert [row["__id"] for row in everything["value"]] == [second, first]
    newest = everything["value"][0]
    assert newest["gps"] == "POINT (21.167 42.664 515)"
    assert [kid["kids_age"] for kid in newest["kids"]["kids_details"]] == [103, 107]

    page = pyodk_client.submissions.get_table(
        form_id=form_id,
        project_id=project_id,
        filter="__system/submissionDate ge 2000-01-01 and __system/reviewState eq null",
        top=1,
        skip=1,
        count=True,
    )
    _assert_odata(page, "Submissions")
    assert [row["__id"] for row in page["value"]] == [first]
    assert page["@odata.count"] == 2
    assert "@odata.nextLink" not in page
    assert page["value"][0]["gps"]["type"] == "Point"

    first_page = pyodk_client.submissions.get_table(form_id=form_id, project_id=project_id, top=1)
    assert "$skiptoken=01" in first_page["@odata.nextLink"]

    table = "Submissions.kids.kids_details.kids_immunization"
    shots = pyodk_client.submissions.get_table(
        form_id=form_id,
        project_id=project_id,
        table_name=table,
        filter=f"$root/Submissions/__id eq '{first}'",
        count=True,
    )
    _assert_odata(shots, table)
    assert shots["@odata.count"] == 4
    assert [row["immunization_info"] for row in shots["value"]] == [
        f'A "text", {n} ü' for n in (4, 5, 8, 9)
    ]
    assert all(row["__Submissions-kids-kids_details-id"] for row in shots["value"])
