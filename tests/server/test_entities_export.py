"""`GET .../datasets/{name}/entities.csv`: Central's columns, not the file Collect gets."""

from __future__ import annotations

import csv
import io
import re

from tests.server.conftest import World

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
COLUMNS = [
    "__id",
    "label",
    "state",
    "population",
    "__createdAt",
    "__creatorId",
    "__creatorName",
    "__updates",
    "__updatedAt",
    "__version",
]


async def _cities(world: World) -> tuple[str, list[str]]:
    """A list with two properties and three cities; Perth was updated twice."""
    base = f"/v1/projects/{world.project_id}/datasets"
    headers = world.admin_headers
    assert (await world.client.post(base, json={"name": "cities"}, headers=headers)).is_success
    for name in ("state", "population"):
        added = await world.client.post(
            f"{base}/cities/properties", json={"name": name}, headers=headers
        )
        assert added.is_success
    uuids = []
    for label, state in (("Sydney", "NSW"), ("Perth", "WA"), ("Hobart", "TAS")):
        made = await world.client.post(
            f"{base}/cities/entities",
            json={"label": label, "data": {"state": state}},
            headers=headers,
        )
        assert made.status_code == 200, made.text
        uuids.append(made.json()["uuid"])
    for version, population in ((1, "2,100,000"), (2, 'said "two million"')):
        updated = await world.client.patch(
            f"{base}/cities/entities/{uuids[1]}?baseVersion={version}",
            json={"data": {"population": population}},
            headers=headers,
        )
        assert updated.status_code == 200, updated.text
    return f"{base}/cities/entities.csv", uuids


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_the_download_has_centrals_columns_newest_entity_first(world: World) -> None:
    url, (sydney, perth, hobart) = await _cities(world)
    me = (await world.client.get("/v1/users/current", headers=world.admin_headers)).json()

    response = await world.client.get(url, headers=world.admin_headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="cities.csv"'
    header, *rows = _rows(response.text)
    assert header == COLUMNS
    assert [row[0] for row in rows] == [hobart, perth, sydney]
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    updated = by_id[perth]
    assert updated["label"] == "Perth"
    assert updated["state"] == "WA"
    assert updated["population"] == 'said "two million"'
    assert updated["__creatorId"] == str(me["id"])
    assert updated["__creatorName"] == me["displayName"]
    assert updated["__updates"] == "2"
    assert updated["__version"] == "3"
    assert ISO.match(updated["__createdAt"])
    assert ISO.match(updated["__updatedAt"])
    assert updated["__updatedAt"] >= updated["__createdAt"]
    untouched = by_id[sydney]
    assert untouched["population"] == ""
    assert (untouched["__updates"], untouched["__updatedAt"], untouched["__version"]) == (
        "0",
        "",
        "1",
    )


async def test_filter_and_search_still_narrow_the_download(world: World) -> None:
    url, (sydney, perth, _) = await _cities(world)
    headers = world.admin_headers

    filtered = await world.client.get(
        url, params={"$filter": "__system/version gt 1"}, headers=headers
    )
    assert [row[0] for row in _rows(filtered.text)[1:]] == [perth]
    assert "etag" not in filtered.headers  # a narrowed file is not the list's

    searched = await world.client.get(url, params={"$search": "nsw"}, headers=headers)
    header, *rows = _rows(searched.text)
    assert header == COLUMNS
    assert [row[0] for row in rows] == [sydney]

    nothing = await world.client.get(
        url, params={"$filter": f"__id eq '{sydney}' and __system/version eq 2"}, headers=headers
    )
    assert _rows(nothing.text) == [COLUMNS]


async def test_the_download_has_an_etag_that_moves_with_the_list(world: World) -> None:
    url, (sydney, _, _) = await _cities(world)
    headers = world.admin_headers
    first = await world.client.get(url, headers=headers)
    etag = first.headers["etag"]

    cached = await world.client.get(url, headers=headers | {"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""

    deleted = await world.client.delete(
        url.replace("entities.csv", f"entities/{sydney}"), headers=headers
    )
    assert deleted.is_success
    changed = await world.client.get(url, headers=headers | {"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert sydney not in changed.text


async def test_collect_still_gets_its_own_columns(world: World) -> None:
    url, (_, perth, _) = await _cities(world)
    form = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
<h:head><h:title>Visit</h:title><model>
<instance><data id="visit"><city/><meta><instanceID/></meta></data></instance>
<instance id="cities" src="jr://file-csv/cities.csv"/>
<bind nodeset="/data/city" type="string"/>
</model></h:head>
<h:body><input ref="/data/city"><label>City</label></input></h:body></h:html>"""
    published = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true",
        content=form,
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert published.status_code == 200, published.text
    attachment = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/visit/attachments/cities.csv",
        headers=world.admin_headers,
    )
    header, *rows = _rows(attachment.text)
    assert header == ["name", "label", "__version", "state", "population"]
    assert [perth, "Perth", "3", "WA", 'said "two million"'] in rows
    assert url.endswith("entities.csv")
