"""The official pyodk client, unchanged, against a live Homeward server.

pyodk speaks synchronous HTTP (requests) and validates every response with
pydantic, so a missing key or a wrong type fails here even when the status is
right. These are plain sync tests: the server is another process.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from pyodk.client import Client

from tests.e2e.collect import (
    LOGO_PNG,
    SITE_VISIT_TITLE,
    SITE_VISIT_VERSION,
    md5,
    png_1x1,
    site_visit_xlsx,
)
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, REPO_ROOT

pytestmark = pytest.mark.slow  # a real server process per test

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INTAKE = REPO_ROOT / "forms" / "programme" / "intake.xlsx"
INTAKE_VERSION = "2026120401"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_pyodk_config(path: Path, base_url: str, project_id: int | None = None) -> Path:
    lines = [
        "[central]",
        f"base_url = {_toml_string(base_url)}",
        f"username = {_toml_string(ADMIN_EMAIL)}",
        f"password = {_toml_string(ADMIN_PASSWORD)}",
    ]
    if project_id is not None:
        lines.append(f"default_project_id = {project_id}")
    path.write_text("\n".join(lines) + "\n")
    return path


class Seeded:
    def __init__(self, project_id: int, second_project_id: int) -> None:
        self.project_id = project_id
        self.second_project_id = second_project_id


@pytest.fixture
def seeded(live_server: str) -> Seeded:
    """Two projects; the first holds the published intake form (through the JSON API)."""
    with httpx.Client(base_url=live_server, timeout=60) as http:
        session = http.post("/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert session.status_code == 200, session.text
        headers = {"Authorization": f"Bearer {session.json()['token']}"}
        first = http.post("/v1/projects", json={"name": "Returns Albania"}, headers=headers)
        assert first.status_code == 200, first.text
        second = http.post("/v1/projects", json={"name": "Returns Kosovo"}, headers=headers)
        assert second.status_code == 200, second.text
        form = http.post(
            f"/v1/projects/{first.json()['id']}/forms?publish=true",
            content=INTAKE.read_bytes(),
            headers=headers | {"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": "intake"},
        )
        assert form.status_code == 200, form.text
        return Seeded(first.json()["id"], second.json()["id"])


@pytest.fixture
def pyodk_client(live_server: str, seeded: Seeded, tmp_path: Path) -> Iterator[Client]:
    """A signed-in pyodk client (``Client.open`` logs in through POST /v1/sessions)."""
    config = write_pyodk_config(tmp_path / "pyodk_config.toml", live_server)
    client = Client(config_path=config, cache_path=tmp_path / "pyodk_cache.toml")
    client.open()
    try:
        yield client
    finally:
        client.close()


def test_sign_in_projects_and_forms(live_server: str, seeded: Seeded, tmp_path: Path) -> None:
    config = write_pyodk_config(tmp_path / "pyodk_config.toml", live_server)
    cache = tmp_path / "pyodk_cache.toml"
    with Client(config_path=config, cache_path=cache) as client:
        projects = client.projects.list()
        by_id = {p.id: p for p in projects}
        assert set(by_id) == {seeded.project_id, seeded.second_project_id}
        assert by_id[seeded.project_id].name == "Returns Albania"
        assert by_id[seeded.second_project_id].name == "Returns Kosovo"
        project = client.projects.get(seeded.project_id)
        assert project.id == seeded.project_id
        assert project.name == "Returns Albania"
        assert project.archived in (False, None)
        assert isinstance(project.createdAt, datetime)
        assert project.createdAt.tzinfo is not None

        forms = client.forms.list(project_id=seeded.project_id)
        assert [f.xmlFormId for f in forms] == ["intake"]
        assert client.forms.list(project_id=seeded.second_project_id) == []
        form = client.forms.get("intake", project_id=seeded.project_id)
        assert form.xmlFormId == "intake"
        assert form.projectId == seeded.project_id
        assert form.version == INTAKE_VERSION
        assert form.state == "open"
        assert form.name  # the form_title of the settings sheet
        assert form.publishedAt is not None
        assert isinstance(form.createdAt, datetime)
        # The hash pyodk reports is the md5 of the XForm the server serves.
        xml = client.get(f"projects/{seeded.project_id}/forms/intake.xml")
        assert xml.status_code == 200
        assert form.hash == md5(xml.content)
    assert cache.read_text().startswith("token = ")

    # A second client reuses the cached token (GET /v1/users/current accepts it) and
    # takes its default project from the config file.
    config = write_pyodk_config(tmp_path / "c.toml", live_server, project_id=seeded.project_id)
    with Client(config_path=config, cache_path=cache) as again:
        assert again.projects.get().name == "Returns Albania"
        assert again.forms.get("intake").xmlFormId == "intake"


def test_create_app_users_assigns_forms_with_role_id_2(
    live_server: str, pyodk_client: Client, seeded: Seeded
) -> None:
    users = list(
        pyodk_client.projects.create_app_users(
            display_names=["Phone Tirana", "Phone Durrës"],
            forms=["intake"],
            project_id=seeded.project_id,
        )
    )
    assert sorted(u.displayName for u in users) == ["Phone Durrës", "Phone Tirana"]
    for user in users:
        assert user.projectId == seeded.project_id
        assert user.token
        # The app user now sees the form in Collect's form list.
        listing = httpx.get(
            f"{live_server}/v1/key/{user.token}/projects/{seeded.project_id}/formList",
            headers={"X-OpenRosa-Version": "1.0"},
        )
        assert listing.status_code == 200, listing.text
        assert b"<formID>intake</formID>" in listing.content
    # Creating the same names again creates nobody (pyodk lists app users first).
    again = list(
        pyodk_client.projects.create_app_users(
            display_names=["Phone Tirana"], forms=["intake"], project_id=seeded.project_id
        )
    )
    assert again == []


def test_submissions_create_list_get(pyodk_client: Client, seeded: Seeded) -> None:
    instance_id = f"uuid:{uuid.uuid4()}"
    xml = (
        f'<data id="intake" version="{INTAKE_VERSION}"><consent>no</consent>'
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    )
    created = pyodk_client.submissions.create(
        xml=xml, form_id="intake", project_id=seeded.project_id, device_id="pyodk:test"
    )
    assert created.instanceId == instance_id
    listed = pyodk_client.submissions.list(form_id="intake", project_id=seeded.project_id)
    assert [s.instanceId for s in listed] == [instance_id]
    got = pyodk_client.submissions.get(
        instance_id=instance_id, form_id="intake", project_id=seeded.project_id
    )
    assert got.instanceId == instance_id
    assert got.deviceId == "pyodk:test"
    assert isinstance(got.submitterId, int)


def test_forms_create_and_update_with_attachments(
    live_server: str, pyodk_client: Client, seeded: Seeded, tmp_path: Path
) -> None:
    """A researcher's pyodk script: upload an XLSForm with its media, later new media."""
    pid = seeded.project_id
    definition = tmp_path / "site_visit.xlsx"
    definition.write_bytes(site_visit_xlsx())
    logo = tmp_path / "logo.png"
    logo.write_bytes(LOGO_PNG)

    created = pyodk_client.forms.create(definition=definition, attachments=[logo], project_id=pid)
    assert created.xmlFormId == "site_visit"
    assert created.name == SITE_VISIT_TITLE
    form = pyodk_client.forms.get("site_visit", project_id=pid)
    assert form.version == SITE_VISIT_VERSION
    assert form.publishedAt is not None

    def attachments() -> list[tuple[str, bool, str | None]]:
        response = pyodk_client.get(f"projects/{pid}/forms/site_visit/attachments")
        assert response.status_code == 200, response.text
        return [(a["name"], a["exists"], a.get("hash")) for a in response.json()]

    assert attachments() == [("logo.png", True, md5(LOGO_PNG))]

    # New media only: pyodk makes a draft, uploads, and publishes under a new version.
    new_logo = png_1x1(b"\x00\x66\xcc")
    logo.write_bytes(new_logo)
    pyodk_client.forms.update(
        "site_visit", project_id=pid, attachments=[logo], version_updater=lambda v: f"{v}-2"
    )
    updated = pyodk_client.forms.get("site_visit", project_id=pid)
    assert updated.version == f"{SITE_VISIT_VERSION}-2"
    assert updated.hash != form.hash
    assert attachments() == [("logo.png", True, md5(new_logo))]
    versions = pyodk_client.get(f"projects/{pid}/forms/site_visit/versions")
    assert [v["version"] for v in versions.json()] == [
        f"{SITE_VISIT_VERSION}-2",
        SITE_VISIT_VERSION,
    ]

    # What a phone downloads is the new media.
    with httpx.Client(timeout=60, follow_redirects=True) as phone:
        token = next(
            iter(pyodk_client.projects.create_app_users(["Phone"], ["site_visit"], pid))
        ).token
        manifest = phone.get(
            f"{live_server}/v1/key/{token}/projects/{pid}/forms/site_visit/manifest",
            headers={"X-OpenRosa-Version": "1.0"},
        )
        assert manifest.status_code == 200, manifest.text
        assert f"md5:{md5(new_logo)}".encode() in manifest.content
        media = phone.get(
            f"{live_server}/v1/key/{token}/projects/{pid}/forms/site_visit/attachments/logo.png",
            headers={"X-OpenRosa-Version": "1.0"},
        )
        assert media.content == new_logo


def test_submissions_edit_review_and_comments(pyodk_client: Client, seeded: Seeded) -> None:
    """A reviewer's pyodk script: correct a submission, approve it, leave notes."""
    pid = seeded.project_id
    first = f"uuid:{uuid.uuid4()}"
    second = f"uuid:{uuid.uuid4()}"

    def intake(instance_id: str, consent: str, deprecated: str = "") -> str:
        meta = f"<deprecatedID>{deprecated}</deprecatedID>" if deprecated else ""
        return (
            f'<data id="intake" version="{INTAKE_VERSION}"><consent>{consent}</consent>'
            f"<meta><instanceID>{instance_id}</instanceID>{meta}</meta></data>"
        )

    pyodk_client.submissions.create(xml=intake(first, "no"), form_id="intake", project_id=pid)
    pyodk_client.submissions.edit(
        instance_id=first,
        xml=intake(second, "no", deprecated=first),
        form_id="intake",
        project_id=pid,
        comment="fixed a typo",
    )
    edited = pyodk_client.submissions.get(instance_id=first, form_id="intake", project_id=pid)
    assert edited.reviewState == "edited"
    assert edited.updatedAt is not None
    xml = pyodk_client.get(f"projects/{pid}/forms/intake/submissions/{first}.xml")
    assert second.encode() in xml.content

    pyodk_client.submissions.review(
        instance_id=first,
        review_state="approved",
        form_id="intake",
        project_id=pid,
        comment="looks right",
    )
    reviewed = pyodk_client.submissions.get(instance_id=first, form_id="intake", project_id=pid)
    assert reviewed.reviewState == "approved"

    added = pyodk_client.submissions.add_comment(
        instance_id=first, comment="call back in May", form_id="intake", project_id=pid
    )
    assert added.body == "call back in May"
    assert isinstance(added.actorId, int)
    comments = list(
        pyodk_client.submissions.list_comments(instance_id=first, form_id="intake", project_id=pid)
    )
    assert [c.body for c in comments] == ["call back in May", "looks right", "fixed a typo"]
    assert all(isinstance(c.createdAt, datetime) for c in comments)

    listed = pyodk_client.submissions.list(form_id="intake", project_id=pid)
    assert [(s.instanceId, s.reviewState) for s in listed] == [(first, "approved")]
