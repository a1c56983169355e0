"""Homeward's export options over HTTP: labels and language, personal data by role,
date range and review state. Central's own options are in test_csv_export."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from exports.tabulate import pseudonym
from server.db.models import Project, Submission
from server.roles import ROLES_BY_SYSTEM
from server.services import accounts
from tests.server.conftest import World, sign_in
from tests.server.test_csv_export import as_dicts, read_zip
from tests.server.test_submissions import assert_created, submit

FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa" xmlns:homeward="urn:homeward:xforms">
<h:head><h:title>Intake</h:title><model>
<itext>
<translation lang="English (en)">
 <text id="/intake/country/al:label"><value>Albania</value></text>
 <text id="/intake/country/xk:label"><value>Kosovo</value></text>
</translation>
<translation lang="Shqip (sq)">
 <text id="/intake/country/al:label"><value>Shqip\xc3\xabria</value></text>
 <text id="/intake/country/xk:label"><value>Kosova</value></text>
</translation>
</itext>
<instance><intake id="intake" version="1"><full_name/><country/>
<meta><instanceID/></meta></intake></instance>
<bind nodeset="/intake/full_name" type="string" homeward:personal="yes"/>
<bind nodeset="/intake/country" type="string"/>
<bind nodeset="/intake/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
</model></h:head>
<h:body><input ref="/intake/full_name"><label>Name</label></input>
<select1 ref="/intake/country"><label>Country</label>
<item><label ref="jr:itext('/intake/country/al:label')"/><value>al</value></item>
<item><label ref="jr:itext('/intake/country/xk:label')"/><value>xk</value></item>
</select1></h:body></h:html>"""


def intake(instance_id: str, name: str, country: str) -> bytes:
    return (
        f'<intake id="intake" version="1"><full_name>{name}</full_name>'
        f"<country>{country}</country><meta><instanceID>{instance_id}</instanceID></meta>"
        "</intake>"
    ).encode()


async def intake_world(world: World) -> None:
    created = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true",
        content=FORM,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert created.status_code == 200, created.text
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/intake/assignments/app-user/{world.app_user_id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text
    for instance_id, name, country in (
        ("uuid:i-1", "Arta Hoxha", "al"),
        ("uuid:i-2", "Besnik Krasniqi", "xk"),
    ):
        assert_created(await submit(world, intake(instance_id, name, country), base=world.key_base))


async def rows(
    world: World, query: str = "", headers: dict[str, str] | None = None
) -> list[dict[str, str]]:
    response = await fetch(world, query, headers)
    assert response.status_code == 200, response.text
    return as_dicts(read_zip(response.content)["intake.csv"])


async def fetch(
    world: World, query: str = "", headers: dict[str, str] | None = None
) -> httpx.Response:
    return await world.client.get(
        f"/v1/projects/{world.project_id}/forms/intake/submissions.csv.zip{query}",
        headers=world.admin_headers if headers is None else headers,
    )


async def viewer(world: World) -> dict[str, str]:
    async with world.runtime.transaction() as db:
        actor, _ = await accounts.create_user(
            db, email="viewer@example.org", password="a viewer pw"
        )
        await accounts.assign(
            db,
            actor_id=actor.id,
            role=ROLES_BY_SYSTEM["viewer"],
            project_id=world.project_id,
            by=None,
        )
    return await sign_in(world.client, "viewer@example.org", "a viewer pw")


async def test_labels_in_each_language_and_values_by_default(world: World) -> None:
    await intake_world(world)

    values = await rows(world)
    english = await rows(world, "?labels=true")
    albanian = await rows(world, "?labels=True&language=Shqip%20(sq)")

    assert [r["country"] for r in values] == ["xk", "al"]
    assert [r["country"] for r in english] == ["Kosovo", "Albania"]
    assert [r["country"] for r in albanian] == ["Kosova", "Shqipëria"]


async def test_unknown_language_is_refused_before_any_byte(world: World) -> None:
    await intake_world(world)

    response = await fetch(world, "?labels=true&language=Klingon")

    assert response.status_code == 400
    assert response.json()["code"] == 400.8
    assert "Shqip (sq)" in response.json()["message"]


async def test_managers_see_personal_fields_viewers_get_stable_pseudonyms(world: World) -> None:
    await intake_world(world)
    async with world.runtime.read() as db:
        project = await db.get(Project, world.project_id)
        assert project is not None
        key = project.pseudonym_secret.encode()
    as_viewer = await viewer(world)

    admin_rows = await rows(world)
    first = await rows(world, headers=as_viewer)
    second = await rows(world, headers=as_viewer)
    dropped = await rows(world, "?personal=drop", headers=as_viewer)
    refused = await fetch(world, "?personal=keep", headers=as_viewer)

    assert [r["full_name"] for r in admin_rows] == ["Besnik Krasniqi", "Arta Hoxha"]
    assert [r["full_name"] for r in first] == [
        pseudonym(key, "Besnik Krasniqi"),
        pseudonym(key, "Arta Hoxha"),
    ]
    assert first == second
    assert "full_name" not in dropped[0]
    assert dropped[0]["country"] == "xk"
    assert (refused.status_code, refused.json()["code"]) == (403, 403.1)
    assert "personal" in refused.json()["message"]


async def test_administrators_may_ask_for_pseudonyms_too(world: World) -> None:
    await intake_world(world)

    pseudonymised = await rows(world, "?personal=pseudonymise")
    bad = await fetch(world, "?personal=hide")

    assert "Arta Hoxha" not in {r["full_name"] for r in pseudonymised}
    assert all(len(r["full_name"]) == 16 for r in pseudonymised)
    assert (bad.status_code, bad.json()["code"]) == (400, 400.8)


async def test_date_range_and_review_states_select_submissions(world: World) -> None:
    await intake_world(world)
    async with world.runtime.transaction() as db:
        await db.execute(
            update(Submission)
            .where(Submission.instance_id == "uuid:i-1")
            .values(review_state="approved")
        )

    approved = await rows(world, "?reviewState=approved")
    not_reviewed = await rows(world, "?reviewState=null")
    either = await rows(world, "?reviewState=approved,null")
    future = await rows(world, "?start=2999-01-01")
    past = await rows(world, "?end=2000-01-01T00:00:00Z")
    everything = await rows(world, "?start=2000-01-01&end=2999-01-01")
    bad_state = await fetch(world, "?reviewState=liked")
    bad_date = await fetch(world, "?start=yesterday")

    assert [r["KEY"] for r in approved] == ["uuid:i-1"]
    assert [r["KEY"] for r in not_reviewed] == ["uuid:i-2"]
    assert [r["KEY"] for r in either] == ["uuid:i-2", "uuid:i-1"]
    assert future == []
    assert past == []
    assert len(everything) == 2
    for response in (bad_state, bad_date):
        assert (response.status_code, response.json()["code"]) == (400, 400.8)
