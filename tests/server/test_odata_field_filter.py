"""The OData feed's `$filter` on a form's own answers (the web app's "filter by any field").

Central reads only `__system` fields; Homeward also reads the questions outside
repeats, typed by the form, and refuses personal ones to callers who see them masked.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from server.services import accounts
from tests.server.conftest import World, sign_in

XML = {"Content-Type": "application/xml"}

FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa" xmlns:homeward="urn:homeward:xforms">
<h:head><h:title>Visit</h:title><model>
<instance><visit id="visit" version="1"><municipality/><full_name/><gender/><languages/>
<size/><income/><visit_date/><location/><household><head_age/></household>
<members><member_name/></members><meta><instanceID/></meta></visit></instance>
<bind nodeset="/visit/municipality" type="string"/>
<bind nodeset="/visit/full_name" type="string" homeward:personal="yes"/>
<bind nodeset="/visit/gender" type="select1"/>
<bind nodeset="/visit/languages" type="select"/>
<bind nodeset="/visit/size" type="int"/>
<bind nodeset="/visit/income" type="decimal"/>
<bind nodeset="/visit/visit_date" type="date"/>
<bind nodeset="/visit/location" type="geopoint"/>
<bind nodeset="/visit/household/head_age" type="int"/>
<bind nodeset="/visit/members/member_name" type="string"/>
<bind nodeset="/visit/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
</model></h:head>
<h:body>
<input ref="/visit/municipality"><label>Municipality</label></input>
<input ref="/visit/full_name"><label>Name</label></input>
<select1 ref="/visit/gender"><label>Gender</label>
<item><label>Female</label><value>female</value></item>
<item><label>Male</label><value>male</value></item></select1>
<select ref="/visit/languages"><label>Languages</label>
<item><label>Albanian</label><value>sq</value></item>
<item><label>Serbian</label><value>sr</value></item>
<item><label>English</label><value>en</value></item></select>
<input ref="/visit/size"><label>Household size</label></input>
<input ref="/visit/income"><label>Income</label></input>
<input ref="/visit/visit_date"><label>Date</label></input>
<input ref="/visit/location"><label>Where</label></input>
<group ref="/visit/household"><label>Head</label>
<input ref="/visit/household/head_age"><label>Age</label></input></group>
<group ref="/visit/members"><label>Members</label><repeat nodeset="/visit/members">
<input ref="/visit/members/member_name"><label>Member</label></input></repeat></group>
</h:body></h:html>"""

# municipality, full name, gender, languages, size, income, date, location, head's age
VISITS = [
    ("Tirana", "Arben Hoxha", "male", "sq en", "5", "120.5", "2026-03-01", "41.3 19.8 0 5", "44"),
    ("Durrës", "Drita Kola", "female", "sq", "2", "80", "2026-03-15", "", "31"),
    ("tirana e re", "Besa Leka", "female", "sr", "", "", "2026-04-02", "", ""),
    ("Shkodër", "Ilir Marku", "male", "", "12", "1e3", "2026-05-20T08:00:00+02:00", "", "60"),
]


def visit_xml(number: int) -> bytes:
    town, name, gender, langs, size, income, day, where, head = VISITS[number]
    return (
        f'<visit id="visit" version="1"><municipality>{town}</municipality>'
        f"<full_name>{name}</full_name><gender>{gender}</gender><languages>{langs}</languages>"
        f"<size>{size}</size><income>{income}</income><visit_date>{day}</visit_date>"
        f"<location>{where}</location><household><head_age>{head}</head_age></household>"
        f"<members><member_name>M{number}</member_name></members>"
        f"<meta><instanceID>uuid:visit-{number}</instanceID></meta></visit>"
    ).encode()


@pytest.fixture
async def visits(world: World) -> World:
    client, admin, project = world.client, world.admin_headers, world.project_id
    created = await client.post(
        f"/v1/projects/{project}/forms?publish=true", content=FORM, headers=admin | XML
    )
    assert created.status_code == 200, created.text
    for number in range(len(VISITS)):
        sent = await client.post(
            f"/v1/projects/{project}/forms/visit/submissions",
            content=visit_xml(number),
            headers=admin | XML,
        )
        assert sent.status_code == 200, sent.text
    return world


async def feed(
    world: World, expression: str, headers: dict[str, str] | None = None, top: str = ""
) -> httpx.Response:
    params = {"$filter": expression, "$count": "true"} | ({"$top": top} if top else {})
    return await world.client.get(
        f"/v1/projects/{world.project_id}/forms/visit.svc/Submissions",
        params=params,
        headers=headers or world.admin_headers,
    )


def picked(body: dict[str, Any]) -> list[int]:
    return sorted(int(row["__id"].rsplit("-", 1)[1]) for row in body["value"])


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("municipality eq 'Tirana'", [0]),
        ("municipality ne 'Tirana'", [1, 2, 3]),
        ("contains(municipality, 'TIRANA')", [0, 2]),
        ("not contains(municipality, 'tirana')", [1, 3]),
        ("contains(municipality, '%')", []),
        ("gender eq 'female'", [1, 2]),
        ("contains(languages, 'sq')", [0, 1]),
        ("contains(languages, 's')", []),  # a choice, not a piece of one
        ("languages eq null", [3]),
        ("size gt 4", [0, 3]),  # numbers, not text ('12' < '4' as text)
        ("size le 5", [0, 1]),
        ("size eq null", [2]),
        ("income ge 100", [0, 3]),  # 1e3 is a number too
        ("income lt 100.5", [1]),
        ("visit_date ge 2026-03-15", [1, 2, 3]),
        ("visit_date lt 2026-04-01", [0, 1]),
        ("visit_date eq 2026-05-20", [3]),  # a dateTime by its day as collected
        ("location ne null", [0]),
        ("household/head_age ge 44", [0, 3]),
        ("gender eq 'male' and size gt 10", [3]),
        ("gender eq 'female' or municipality eq 'Tirana'", [0, 1, 2]),
        ("__system/reviewState eq null and size lt 3", [1]),
    ],
)
async def test_filter_by_an_answer(visits: World, expression: str, expected: list[int]) -> None:
    response = await feed(visits, expression)

    assert response.status_code == 200, response.text
    body = response.json()
    assert picked(body) == expected
    assert body["@odata.count"] == len(expected)


async def test_pages_of_a_filtered_table_keep_the_count(visits: World) -> None:
    first = (await feed(visits, "gender eq 'female' or size gt 4", top="2")).json()
    second = (
        await visits.client.get(first["@odata.nextLink"], headers=visits.admin_headers)
    ).json()

    assert first["@odata.count"] == 4
    assert len(first["value"]) == 2
    assert picked(first) + picked(second) != []
    assert sorted(picked(first) + picked(second)) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("members/member_name eq 'M1'", 501.5),  # inside a repeat: not a column
        ("nosuch eq 1", 501.5),
        ("location eq '41.3 19.8 0 5'", 400.8),
        ("size gt 'many'", 400.8),
        ("visit_date gt 'soon'", 400.8),
        ("contains(size, '1')", 400.8),
        ("contains(municipality, 3)", 400.8),
        ("year(visit_date) eq 2026", 400.8),
    ],
)
async def test_answers_that_cannot_be_compared_so_are_refused(
    visits: World, expression: str, code: float
) -> None:
    response = await feed(visits, expression)

    assert response.status_code == int(code), response.text
    assert response.json()["code"] == code


async def test_exports_filter_as_central_does(visits: World) -> None:
    response = await visits.client.get(
        f"/v1/projects/{visits.project_id}/forms/visit/submissions.csv",
        params={"$filter": "contains(municipality, 'x')"},
        headers=visits.admin_headers,
    )

    assert response.status_code == 501, response.text


async def member(world: World, role: str) -> dict[str, str]:
    email = f"filter-{role}-{world.project_id}@example.org"
    async with world.runtime.transaction() as db:
        actor, _ = await accounts.create_user(db, email=email, password="a long password here")
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/assignments/{role}/{actor.id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text
    return await sign_in(world.client, email, "a long password here")


async def test_personal_answers_filter_only_for_those_who_see_them(visits: World) -> None:
    callers = {"view": await member(visits, "viewer"), "mgr": await member(visits, "manager")}

    viewer = await feed(visits, "full_name eq 'Arben Hoxha'", callers["view"])
    hidden_in_or = await feed(
        visits, "municipality eq 'x' or contains(full_name, 'Arben')", callers["view"]
    )
    plain = await feed(visits, "municipality eq 'Tirana'", callers["view"])
    manager = await feed(visits, "full_name eq 'Arben Hoxha'", callers["mgr"])

    for refused in (viewer, hidden_in_or):
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == 403.1
        assert "full_name is marked personal" in refused.json()["message"]
    assert plain.status_code == 200, plain.text
    assert picked(plain.json()) == [0]
    assert manager.status_code == 200, manager.text
    assert picked(manager.json()) == [0]
