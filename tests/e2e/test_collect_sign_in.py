"""A web user signs in from ODK Collect with e-mail and password, over plain HTTP.

Collect answers a 401 challenge with Digest (MD5, qop auth) over HTTP and with
Basic only over HTTPS. The server here runs with ``HOMEWARD_DIGEST_AUTH=true``;
the counsellor is created with the ``homeward user-create`` command (so the
Digest credential is stored), given the Data Collector role on the project, and
then runs the whole Collect loop under ``/v1/projects/{id}``.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from server.runtime import Runtime
from server.settings import Settings
from tests.e2e.collect import (
    DEVICE_ID,
    LOGO_PNG,
    USER_AGENT,
    Collect,
    CollectWorld,
    assert_blob,
    assert_openrosa_headers,
    create_project_with_forms,
    intake_xml,
    jpeg,
    md5,
    new_instance_id,
    openrosa_message,
    parse,
    sign_in_admin,
    stored,
    xform_entries,
)
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, REPO_ROOT, server_environment

pytestmark = pytest.mark.slow  # a real server process per test

COUNSELLOR_EMAIL = "counsellor@example.org"
COUNSELLOR_PASSWORD = "rruga e kthimit 2026"
DIGEST_ENV = {"HOMEWARD_DIGEST_AUTH": "true"}


@pytest.fixture
def server_extra_env() -> dict[str, str]:
    return DIGEST_ENV


def create_user_with_cli(settings: Settings, email: str, password: str) -> None:
    """``homeward user-create`` as an administrator runs it: password on stdin."""
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "user-create", "--email", email],
        cwd=REPO_ROOT,
        env=server_environment(settings, 0, DIGEST_ENV),
        input=f"{password}\n".encode(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    assert f"Created user {email}" in output


@pytest.fixture
async def world(
    live_server: str, runtime: Runtime, settings: Settings
) -> AsyncIterator[CollectWorld]:
    """Collect configured with the server URL ``/v1/projects/{id}`` and a web user."""
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as admin:
        await sign_in_admin(admin)
        pid = await create_project_with_forms(admin)
        create_user_with_cli(settings, COUNSELLOR_EMAIL, COUNSELLOR_PASSWORD)
        users = await admin.get("/v1/users")
        assert users.status_code == 200, users.text
        actor_id = next(u["id"] for u in users.json() if u["email"] == COUNSELLOR_EMAIL)
        assigned = await admin.post(f"/v1/projects/{pid}/assignments/formfill/{actor_id}")
        assert assigned.status_code == 200, assigned.text
        auth = httpx.DigestAuth(COUNSELLOR_EMAIL, COUNSELLOR_PASSWORD)
        async with httpx.AsyncClient(timeout=60, auth=auth) as phone:
            base = f"{live_server}/v1/projects/{pid}"
            yield CollectWorld(live_server, runtime, admin, Collect(phone), pid, actor_id, base)


async def check_challenges(world: CollectWorld) -> None:
    """No, wrong or unusable credentials: a Digest challenge, so Collect asks again."""
    async with httpx.AsyncClient(timeout=60) as anonymous:
        collect = Collect(anonymous)
        for response in (
            await collect.get(f"{world.base}/formList"),
            await collect.head(f"{world.base}/submission"),
        ):
            assert response.status_code == 401
            assert_openrosa_headers(response)
            challenge = response.headers.get("www-authenticate", "")
            assert challenge.startswith("Digest "), response.headers
            assert 'qop="auth"' in challenge
            assert "MD5" in challenge

        # A wrong password is challenged again (Collect asks the user once more).
        wrong = Collect(
            httpx.AsyncClient(timeout=60, auth=httpx.DigestAuth(COUNSELLOR_EMAIL, "not it at all"))
        )
        async with wrong.http:
            refused = await wrong.get(f"{world.base}/formList")
        assert refused.status_code == 401
        assert refused.headers.get("www-authenticate", "").startswith("Digest ")

        # A user whose password predates Digest has no Digest credential.
        admin = Collect(
            httpx.AsyncClient(timeout=60, auth=httpx.DigestAuth(ADMIN_EMAIL, ADMIN_PASSWORD))
        )
        async with admin.http:
            no_credential = await admin.get(f"{world.base}/formList")
        assert no_credential.status_code == 401

        # Basic is refused over plain HTTP: the password would travel in the clear.
        basic = base64.b64encode(f"{COUNSELLOR_EMAIL}:{COUNSELLOR_PASSWORD}".encode()).decode()
        plain = await collect.get(
            f"{world.base}/formList", headers={"Authorization": f"Basic {basic}"}
        )
        assert plain.status_code == 401
        assert "HTTPS" in openrosa_message(plain)


async def test_digest_sign_in_runs_the_whole_loop(world: CollectWorld) -> None:
    await check_challenges(world)
    collect = world.collect
    listing = await collect.get(f"{world.base}/formList")
    assert listing.status_code == 200, listing.text
    assert_openrosa_headers(listing)
    entries = xform_entries(listing.content)
    assert set(entries) == {"intake", "site_visit"}
    for form_id, entry in entries.items():
        assert entry["downloadUrl"] == f"{world.base}/forms/{form_id}.xml"
        download = await collect.get(entry["downloadUrl"])
        assert download.status_code == 200, download.text
        assert entry["hash"] == f"md5:{md5(download.content)}"

    manifest = await collect.get(entries["site_visit"]["manifestUrl"])
    assert manifest.status_code == 200, manifest.text
    media_url = parse(manifest.content).findtext(
        "{http://openrosa.org/xforms/xformsManifest}mediaFile/"
        "{http://openrosa.org/xforms/xformsManifest}downloadUrl"
    )
    assert media_url == f"{world.base}/forms/site_visit/attachments/logo.png"
    logo = await collect.get(media_url)
    assert logo.status_code == 200, logo.text
    assert logo.content == LOGO_PNG

    head = await collect.head(f"{world.base}/submission")
    assert head.status_code == 204, head.text
    assert_openrosa_headers(head)

    instance_id = new_instance_id()
    photo = jpeg(200_000)
    xml = intake_xml(instance_id, "consent.jpg")
    sent = await collect.submit(
        f"{world.base}/submission", xml, [("consent.jpg", photo, "image/jpeg")]
    )
    assert sent.status_code == 201, sent.text
    assert openrosa_message(sent)
    found = await stored(world, "intake")
    assert [s.instance_id for s in found.submissions] == [instance_id]
    submission = found.submissions[0]
    assert submission.submitter_id == world.submitter_id
    assert submission.device_id == DEVICE_ID
    assert submission.user_agent == USER_AGENT
    await assert_blob(world, photo, "image/jpeg")
