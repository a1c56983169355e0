"""A case list end to end, over real HTTP, as Collect and a researcher use it.

Intake (an XLSForm with an entities sheet) registers a returnee; the follow-up
form downloads the list as Collect does (manifest with an entityList entry and
its hash, the CSV, the integrity URL); offline updates arrive out of order and
are applied in branch order; two updates from one base version make a
conflict, which is resolved through the API.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator

import httpx
import openpyxl
import pytest
from lxml import etree

from server.runtime import Runtime
from tests.e2e.collect import (
    MANIFEST_NS,
    XLSX,
    Collect,
    md5,
    parse,
    sign_in_admin,
    xform_entries,
)

pytestmark = pytest.mark.slow  # a real server process

Sheet = list[tuple[str, ...]]


def workbook(sheets: dict[str, Sheet]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


INTAKE = workbook(
    {
        "survey": [
            ("type", "name", "label", "save_to"),
            ("text", "first_name", "First name", "first_name"),
            ("text", "municipality", "Municipality", "municipality"),
            ("text", "status", "Status", "status"),
        ],
        "entities": [
            ("list_name", "label"),
            ("returnees", "concat(${first_name}, ' – ', ${municipality})"),
        ],
        "settings": [("form_id", "version"), ("case_intake", "1")],
    }
)
FOLLOW_UP = workbook(
    {
        "survey": [
            ("type", "name", "label", "save_to"),
            ("select_one_from_file returnees.csv", "returnee", "Returnee", ""),
            ("text", "status", "Status", "status"),
        ],
        "entities": [("list_name", "entity_id"), ("returnees", "${returnee}")],
        "settings": [("form_id", "version"), ("case_follow_up", "1")],
    }
)


def intake_xml(entity_id: str) -> bytes:
    return (
        '<data id="case_intake" version="1"><first_name>Arta</first_name>'
        "<municipality>Shkodër</municipality><status>registered</status>"
        f"<meta><instanceID>uuid:{uuid.uuid4()}</instanceID>"
        f'<entity dataset="returnees" create="1" id="{entity_id}"><label>Arta – Shkodër</label>'
        "</entity></meta></data>"
    ).encode()


def update_xml(entity_id: str, status: str, *, base: int, trunk: int, branch: str) -> bytes:
    return (
        f'<data id="case_follow_up" version="1"><returnee>{entity_id}</returnee>'
        f"<status>{status}</status><meta><instanceID>uuid:{uuid.uuid4()}</instanceID>"
        f'<entity dataset="returnees" update="1" id="{entity_id}" baseVersion="{base}"'
        f' trunkVersion="{trunk}" branchId="{branch}"/></meta></data>'
    ).encode()


class Case:
    def __init__(self, admin: httpx.AsyncClient, collect: Collect, pid: int, base: str) -> None:
        self.admin, self.collect, self.pid, self.base = admin, collect, pid, base

    async def submit(self, xml: bytes) -> None:
        response = await self.collect.submit(f"{self.base}/submission", xml)
        assert response.status_code == 201, response.text

    async def entity(self, entity_id: str) -> dict[str, object]:
        response = await self.admin.get(
            f"/v1/projects/{self.pid}/datasets/returnees/entities/{entity_id}"
        )
        assert response.status_code == 200, response.text
        found: dict[str, object] = response.json()
        return found


@pytest.fixture
async def case(live_server: str, runtime: Runtime) -> AsyncIterator[Case]:
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=60) as admin,
        httpx.AsyncClient(timeout=60) as phone,
    ):
        await sign_in_admin(admin)
        project = await admin.post("/v1/projects", json={"name": "Case lists"})
        pid = project.json()["id"]
        for form in (INTAKE, FOLLOW_UP):
            published = await admin.post(
                f"/v1/projects/{pid}/forms?publish=true",
                content=form,
                headers={"Content-Type": XLSX},
            )
            assert published.status_code == 200, published.text
        user = await admin.post(f"/v1/projects/{pid}/app-users", json={"displayName": "Phone"})
        actor_id, token = user.json()["id"], user.json()["token"]
        for form_id in ("case_intake", "case_follow_up"):
            assigned = await admin.post(
                f"/v1/projects/{pid}/forms/{form_id}/assignments/app-user/{actor_id}"
            )
            assert assigned.status_code == 200, assigned.text
        yield Case(admin, Collect(phone), pid, f"{live_server}/v1/key/{token}/projects/{pid}")


def _list_entry(manifest: bytes) -> etree._Element:
    root = parse(manifest)
    [entry] = [m for m in root if m.get("type") == "entityList"]
    return entry


async def test_a_returnee_registered_at_intake_is_found_and_updated_at_follow_up(
    case: Case,
) -> None:
    forms = await case.admin.get(f"/v1/projects/{case.pid}/forms")
    assert {f["xmlFormId"]: f["entityRelated"] for f in forms.json()} == {
        "case_follow_up": True,
        "case_intake": True,
    }
    entity_id = str(uuid.uuid4())
    await case.submit(intake_xml(entity_id))
    entity = await case.entity(entity_id)
    assert entity["currentVersion"]["label"] == "Arta – Shkodër"  # type: ignore[index]

    listing = await case.collect.get(f"{case.base}/formList")
    follow_up = xform_entries(listing.content)["case_follow_up"]
    manifest = await case.collect.get(follow_up["manifestUrl"])
    assert manifest.status_code == 200, manifest.text
    entry = _list_entry(manifest.content)
    names = {etree.QName(child).localname: child.text or "" for child in entry}
    assert names["filename"] == "returnees.csv"
    assert names["hash"].startswith("md5:")
    download = await case.collect.get(names["downloadUrl"])
    assert download.status_code == 200, download.text
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0][:3] == ["name", "label", "__version"]
    assert rows[1][:3] == [entity_id, "Arta – Shkodër", "1"]
    assert download.headers["etag"].strip('"') == names["hash"].removeprefix("md5:")
    assert md5(b"") != names["hash"]  # the hash is the list's, not an empty file's

    # Offline on one phone: two updates on branch b1, the second arriving first.
    await case.submit(update_xml(entity_id, "contacted", base=2, trunk=1, branch="b1"))
    await case.submit(update_xml(entity_id, "visited", base=1, trunk=1, branch="b1"))
    versions = await case.admin.get(
        f"/v1/projects/{case.pid}/datasets/returnees/entities/{entity_id}/versions"
    )
    assert [v["data"]["status"] for v in versions.json()] == [
        "registered",
        "visited",
        "contacted",
    ]
    entity = await case.entity(entity_id)
    assert entity["conflict"] is None

    again = await case.collect.get(follow_up["manifestUrl"])
    assert _list_entry(again.content).findtext(f"{{{MANIFEST_NS}}}hash") != names["hash"]

    # Two phones update version 3: the second is a conflict, recorded and visible.
    await case.submit(update_xml(entity_id, "moved", base=3, trunk=3, branch="b2"))
    await case.submit(update_xml(entity_id, "stayed", base=3, trunk=3, branch="b3"))
    entity = await case.entity(entity_id)
    assert entity["conflict"] == "hard"
    assert entity["currentVersion"]["conflictingProperties"] == ["status"]  # type: ignore[index]
    versions = await case.admin.get(
        f"/v1/projects/{case.pid}/datasets/returnees/entities/{entity_id}/versions"
    )
    assert [v["data"]["status"] for v in versions.json()][-2:] == ["moved", "stayed"]

    resolved = await case.admin.patch(
        f"/v1/projects/{case.pid}/datasets/returnees/entities/{entity_id}",
        params={"resolve": "true"},
        json={},
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["conflict"] is None

    integrity_url = names["integrityUrl"]
    check = await case.collect.get(f"{integrity_url}?id={entity_id}")
    assert check.status_code == 200, check.text
    assert parse(check.content).findtext(f"entities/entity[@id='{entity_id}']/deleted") == "false"
    await case.admin.delete(f"/v1/projects/{case.pid}/datasets/returnees/entities/{entity_id}")
    check = await case.collect.get(f"{integrity_url}?id={entity_id}")
    assert parse(check.content).findtext(f"entities/entity[@id='{entity_id}']/deleted") == "true"
