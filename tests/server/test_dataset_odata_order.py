"""`$orderby` on an entity list's OData feed, and the paging that goes with it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.server.conftest import World


async def _cities(world: World, labels: list[str]) -> str:
    base = f"/v1/projects/{world.project_id}/datasets"
    headers = world.admin_headers
    assert (await world.client.post(base, json={"name": "cities"}, headers=headers)).is_success
    added = await world.client.post(
        f"{base}/cities/properties", json={"name": "state"}, headers=headers
    )
    assert added.is_success
    for label in labels:  # one by one, so creation order is the list's order
        made = await world.client.post(
            f"{base}/cities/entities", json={"label": label, "data": {}}, headers=headers
        )
        assert made.status_code == 200, made.text
    return f"{base}/cities"


async def _labels(world: World, url: str, **params: str) -> list[str]:
    response = await world.client.get(
        f"{url}.svc/Entities", params=params, headers=world.admin_headers
    )
    assert response.status_code == 200, response.text
    return [row["label"] for row in response.json()["value"]]


async def _touch(world: World, url: str, label: str) -> None:
    rows = (
        await world.client.get(
            f"{url}.svc/Entities",
            params={"$filter": f"label eq '{label}'"},
            headers=world.admin_headers,
        )
    ).json()["value"]
    updated = await world.client.patch(
        f"{url}/entities/{rows[0]['__id']}?force=true",
        json={"data": {"state": "x"}},
        headers=world.admin_headers,
    )
    assert updated.status_code == 200, updated.text


async def test_orderby_sorts_by_label_and_by_creation_time(world: World) -> None:
    url = await _cities(world, ["Perth", "Adelaide", "Sydney", "Hobart"])

    assert await _labels(world, url, **{"$orderby": "label"}) == [
        "Adelaide",
        "Hobart",
        "Perth",
        "Sydney",
    ]
    assert await _labels(world, url, **{"$orderby": "label DESC"}) == [
        "Sydney",
        "Perth",
        "Hobart",
        "Adelaide",
    ]
    assert await _labels(world, url, **{"$orderby": "__system/createdAt desc"}) == [
        "Hobart",
        "Sydney",
        "Adelaide",
        "Perth",
    ]
    assert await _labels(world, url, **{"$orderby": "__system/createdAt asc", "$top": "2"}) == [
        "Perth",
        "Adelaide",
    ]


async def test_orderby_updated_at_puts_never_updated_entities_first_going_up(
    world: World,
) -> None:
    url = await _cities(world, ["Perth", "Adelaide", "Sydney"])
    await _touch(world, url, "Sydney")
    await _touch(world, url, "Perth")

    assert await _labels(world, url, **{"$orderby": "__system/updatedAt desc"}) == [
        "Perth",
        "Sydney",
        "Adelaide",
    ]
    assert await _labels(world, url, **{"$orderby": "__system/updatedAt asc"}) == [
        "Adelaide",
        "Sydney",
        "Perth",
    ]
    # Several keys: version first (the two touched share version 2), then label.
    assert await _labels(world, url, **{"$orderby": "__system/version desc, label asc"}) == [
        "Perth",
        "Sydney",
        "Adelaide",
    ]


async def test_orderby_refuses_what_it_cannot_sort_by(world: World) -> None:
    url = await _cities(world, ["Perth"])
    for expression in ("state", "label sideways", "label asc desc", ""):
        response = await world.client.get(
            f"{url}.svc/Entities", params={"$orderby": expression}, headers=world.admin_headers
        )
        if expression:
            assert response.json()["code"] == 501.5, expression
        else:
            assert response.status_code == 200


async def test_a_sorted_feed_pages_without_losing_its_query(world: World) -> None:
    base = f"/v1/projects/{world.project_id}/datasets"
    headers = world.admin_headers
    assert (await world.client.post(base, json={"name": "cities"}, headers=headers)).is_success
    labels = [f"city {n:03d}" for n in range(260)]
    bulk = await world.client.post(
        f"{base}/cities/entities",
        json={"entities": [{"label": label} for label in labels], "source": {"name": "x.csv"}},
        headers=headers,
    )
    assert bulk.status_code == 200, bulk.text

    first = await world.client.get(
        f"{base}/cities.svc/Entities",
        params={"$orderby": "label desc", "$filter": "__system/version eq 1", "$count": "true"},
        headers=headers,
    )
    body = first.json()
    assert len(body["value"]) == 250
    assert body["@odata.count"] == 260
    following = urlsplit(body["@odata.nextLink"])
    query = parse_qs(following.query)
    assert query["$orderby"] == ["label desc"]
    assert query["$filter"] == ["__system/version eq 1"]
    second = await world.client.get(f"{following.path}?{following.query}", headers=headers)
    rest = second.json()
    assert "@odata.nextLink" not in rest
    seen = [row["label"] for row in body["value"] + rest["value"]]
    assert seen == sorted(labels, reverse=True)

    # In id order too, the next page keeps the filter, and `$top` counts what is left.
    capped = await world.client.get(
        f"{base}/cities.svc/Entities",
        params={"$top": "255", "$filter": "__system/version eq 1"},
        headers=headers,
    )
    link = urlsplit(capped.json()["@odata.nextLink"])
    assert parse_qs(link.query)["$top"] == ["5"]
    tail = await world.client.get(f"{link.path}?{link.query}", headers=headers)
    assert [row["label"] for row in tail.json()["value"]] == labels[250:255]
    assert "@odata.nextLink" not in tail.json()
