"""Issue 12's "done when", with the programme's own forms, over real HTTP.

A counsellor registers a returnee with ``intake`` on one phone; a second
counsellor, on their own phone, downloads the follow-up form's case list as
Collect does, finds the returnee by case ID and first name (never the surname),
and sends the 3-month follow-up made offline. The entity then shows the
follow-up's values and keeps everything intake saved. A needs assessment made
offline from the same version of the entity is not applied over the follow-up
silently: it is recorded as a conflict, and both versions stay.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from lxml import etree

from server.runtime import Runtime
from tests.e2e.collect import (
    DEVICE_ID,
    INTAKE,
    INTAKE_VERSION,
    XLSX,
    Collect,
    intake_xml,
    jpeg,
    new_instance_id,
    parse,
    sign_in_admin,
    xform_entries,
)

pytestmark = pytest.mark.slow  # a real server process

FORMS = ("intake", "needs_assessment", "follow_up")  # intake first: it declares the list
CASE_ID = "RW-20261123-a1b2c3"  # what intake_xml sends
LABEL = f"{CASE_ID} Arta"


@dataclass
class Programme:
    admin: httpx.AsyncClient
    pid: int
    first: Collect  # the counsellor who registers
    first_base: str
    second: Collect  # the counsellor who follows up
    second_base: str

    async def entity(self, entity_id: str) -> dict[str, object]:
        response = await self.admin.get(
            f"/v1/projects/{self.pid}/datasets/returnees/entities/{entity_id}"
        )
        assert response.status_code == 200, response.text
        found: dict[str, object] = response.json()
        return found

    async def versions(self, entity_id: str) -> list[dict[str, object]]:
        response = await self.admin.get(
            f"/v1/projects/{self.pid}/datasets/returnees/entities/{entity_id}/versions"
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()
        return found


async def _app_user(admin: httpx.AsyncClient, pid: int, name: str, forms: tuple[str, ...]) -> str:
    user = await admin.post(f"/v1/projects/{pid}/app-users", json={"displayName": name})
    assert user.status_code == 200, user.text
    actor_id, token = user.json()["id"], user.json()["token"]
    for form_id in forms:
        assigned = await admin.post(
            f"/v1/projects/{pid}/forms/{form_id}/assignments/app-user/{actor_id}"
        )
        assert assigned.status_code == 200, assigned.text
    return str(token)


@pytest.fixture
async def programme(live_server: str, runtime: Runtime) -> AsyncIterator[Programme]:
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=60) as admin,
        httpx.AsyncClient(timeout=60) as phone_1,
        httpx.AsyncClient(timeout=60) as phone_2,
    ):
        await sign_in_admin(admin)
        project = await admin.post("/v1/projects", json={"name": "Programme case list"})
        pid = project.json()["id"]
        for form_id in FORMS:
            published = await admin.post(
                f"/v1/projects/{pid}/forms?publish=true",
                content=INTAKE.with_name(f"{form_id}.xlsx").read_bytes(),
                headers={"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": form_id},
            )
            assert published.status_code == 200, published.text
        first = await _app_user(admin, pid, "Counsellor Tirana", ("intake",))
        second = await _app_user(admin, pid, "Counsellor Shkodër", FORMS[1:])
        yield Programme(
            admin,
            pid,
            Collect(phone_1),
            f"{live_server}/v1/key/{first}/projects/{pid}",
            Collect(phone_2),
            f"{live_server}/v1/key/{second}/projects/{pid}",
        )


def _update_meta(entity_id: str, *, base: int, branch: str) -> str:
    return (
        f'<meta><entity dataset="returnees" update="1" id="{entity_id}" baseVersion="{base}"'
        f' trunkVersion="{base}" branchId="{branch}"/>'
        f"<instanceID>{new_instance_id()}</instanceID>"
    )


def follow_up_xml(entity_id: str, *, base: int, branch: str) -> bytes:
    """The 3-month follow-up as Collect sends it (answers mostly left empty)."""
    return (
        f'<?xml version="1.0"?><data id="follow_up" version="{INTAKE_VERSION}">'
        "<start>2027-01-10T10:00:00.000+01:00</start><end>2027-01-10T10:40:00.000+01:00</end>"
        f"<today>2027-01-10</today><deviceid>collect:phone2</deviceid><returnee>{entity_id}"
        f"</returnee><case_id>{CASE_ID}</case_id><returnee_label>{LABEL}</returnee_label>"
        "<returnee_municipality>Tirana</returnee_municipality>"
        "<returnee_last_contact>2026-11-23</returnee_last_contact><returnee_note/>"
        "<returnee_last_wave/><wave>month_3</wave><interview_date>2027-01-10</interview_date>"
        "<interview_mode>phone</interview_mode><consent_today>yes</consent_today>"
        "<no_consent_end/><status>followed_up_month_3</status>"
        "<last_contact>2027-01-10</last_contact><interview/>"
        f"{_update_meta(entity_id, base=base, branch=branch)}"
        f"<instanceName>{CASE_ID} / month_3 / 2027-01-10</instanceName></meta></data>"
    ).encode()


def needs_xml(entity_id: str, *, base: int, branch: str) -> bytes:
    return (
        f'<?xml version="1.0"?><data id="needs_assessment" version="{INTAKE_VERSION}">'
        "<start>2027-01-09T10:00:00.000+01:00</start><end>2027-01-09T10:40:00.000+01:00</end>"
        f"<today>2027-01-09</today><deviceid>collect:phone2</deviceid><returnee>{entity_id}"
        f"</returnee><case_id>{CASE_ID}</case_id><returnee_label>{LABEL}</returnee_label>"
        "<returnee_municipality>Tirana</returnee_municipality>"
        "<returnee_last_contact>2026-11-23</returnee_last_contact><returnee_note/>"
        "<status>assessed</status><last_contact>2027-01-09</last_contact>"
        "<consent_today>yes</consent_today><no_consent_end/><assessment/>"
        f"{_update_meta(entity_id, base=base, branch=branch)}"
        f"<instanceName>{CASE_ID} / needs / 2027-01-09</instanceName></meta></data>"
    ).encode()


def _list_entry(manifest: bytes) -> dict[str, str]:
    [entry] = [m for m in parse(manifest) if m.get("type") == "entityList"]
    return {etree.QName(child).localname: child.text or "" for child in entry}


async def _case_list(collect: Collect, base: str, form_id: str) -> tuple[str, list[dict[str, str]]]:
    """What the phone downloads for ``form_id``: the list's manifest hash and its rows."""
    listing = await collect.get(f"{base}/formList")
    assert listing.status_code == 200, listing.text
    manifest = await collect.get(xform_entries(listing.content)[form_id]["manifestUrl"])
    assert manifest.status_code == 200, manifest.text
    entry = _list_entry(manifest.content)
    assert entry["filename"] == "returnees.csv"
    download = await collect.get(entry["downloadUrl"])
    assert download.status_code == 200, download.text
    assert download.headers["etag"].strip('"') == entry["hash"].removeprefix("md5:")
    return entry["hash"], list(csv.DictReader(io.StringIO(download.text)))


async def test_a_returnee_registered_on_one_phone_is_followed_up_on_another(
    programme: Programme,
) -> None:
    forms = await programme.admin.get(f"/v1/projects/{programme.pid}/forms")
    assert {f["xmlFormId"]: f["entityRelated"] for f in forms.json()} == dict.fromkeys(FORMS, True)

    # Phone 1 registers Arta Hoxha.
    entity_id = str(uuid.uuid4())
    sent = await programme.first.submit(
        f"{programme.first_base}/submission",
        intake_xml(new_instance_id(), "consent.jpg", entity_id=entity_id),
        [("consent.jpg", jpeg(2_000), "image/jpeg")],
    )
    assert sent.status_code == 201, sent.text
    registered = await programme.entity(entity_id)
    assert registered["currentVersion"]["label"] == LABEL  # type: ignore[index]

    # Phone 2 finds her in the follow-up's case list, by case ID and first name only.
    before, rows = await _case_list(programme.second, programme.second_base, "follow_up")
    [row] = [r for r in rows if r["name"] == entity_id]
    assert row["label"] == LABEL
    assert (row["__version"], row["case_id"], row["municipality"]) == ("1", CASE_ID, "Tirana")
    assert (row["status"], row["return_date"], row["last_contact"]) == (
        "registered",
        "2026-10-01",
        "2026-11-23",
    )
    assert all("Hoxha" not in value for r in rows for value in r.values())
    needs_hash, _ = await _case_list(programme.second, programme.second_base, "needs_assessment")
    assert needs_hash == before  # one list, whichever form links it

    # Offline, phone 2 does the 3-month follow-up from the version it downloaded.
    sent = await programme.second.submit(
        f"{programme.second_base}/submission",
        follow_up_xml(entity_id, base=int(row["__version"]), branch=str(uuid.uuid4())),
    )
    assert sent.status_code == 201, sent.text
    entity = await programme.entity(entity_id)
    assert entity["conflict"] is None
    current = entity["currentVersion"]
    assert current["version"] == 2  # type: ignore[index]
    assert current["label"] == LABEL  # type: ignore[index]
    assert current["data"] == {  # type: ignore[index]
        "case_id": CASE_ID,
        "counsellor": DEVICE_ID,
        "status": "followed_up_month_3",
        "last_contact": "2027-01-10",
        "municipality": "Tirana",
        "return_date": "2026-10-01",
        "last_wave": "month_3",
    }
    after, rows = await _case_list(programme.second, programme.second_base, "follow_up")
    assert after != before
    [row] = [r for r in rows if r["name"] == entity_id]
    assert (row["__version"], row["last_wave"], row["status"]) == (
        "2",
        "month_3",
        "followed_up_month_3",
    )

    # A needs assessment made offline from version 1 arrives later: not applied
    # over the follow-up in silence, but recorded as a conflict, both kept.
    sent = await programme.second.submit(
        f"{programme.second_base}/submission",
        needs_xml(entity_id, base=1, branch=str(uuid.uuid4())),
    )
    assert sent.status_code == 201, sent.text
    entity = await programme.entity(entity_id)
    assert entity["conflict"] == "hard"
    assert "status" in entity["currentVersion"]["conflictingProperties"]  # type: ignore[index]
    statuses = [v["data"]["status"] for v in await programme.versions(entity_id)]  # type: ignore[index]
    assert statuses == ["registered", "followed_up_month_3", "assessed"]
