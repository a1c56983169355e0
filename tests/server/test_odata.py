"""The OData feed's query options, errors and paging, over HTTP on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from server.db.models import Submission
from server.services import odata as feed_service
from tests.server.conftest import World, submission_xml
from tests.server.odata_helpers import assert_odata_collection, replay_golden
from tests.server.test_submissions import assert_created, submit


def feed_url(world: World, path: str = "Submissions", form: str = "simple") -> str:
    return f"/v1/projects/{world.project_id}/forms/{form}.svc/{path}"


async def get_feed(
    world: World, path: str = "Submissions", form: str = "simple", **params: str
) -> httpx.Response:
    return await world.client.get(
        feed_url(world, path, form), params=params, headers=world.admin_headers
    )


async def ok(response: httpx.Response, table: str = "Submissions") -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert_odata_collection(body, table=table)
    return body


async def submit_simple(world: World, count: int, start: int = 0) -> list[str]:
    """`count` submissions, oldest first; their instance ids."""
    ids = []
    for number in range(start, start + count):
        instance_id = f"uuid:odata-{number:04d}"
        xml = submission_xml(instance_id, name=f"N{number}", age=number, photo="")
        assert_created(await submit(world, xml))
        ids.append(instance_id)
    return ids


def ids_of(body: dict[str, Any]) -> list[str]:
    return [row["__id"] for row in body["value"]]


def relative(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def test_rows_are_typed_and_newest_first(world: World) -> None:
    ids = await submit_simple(world, 3)

    body = await ok(await get_feed(world))

    assert ids_of(body) == list(reversed(ids))
    first = body["value"][0]
    assert first["name"] == "N2"
    assert first["age"] == 2
    assert first["photo"] is None
    assert first["meta"] == {"instanceID": ids[2]}
    assert first["__system"]["submitterName"] == "Phone 1"
    assert first["__system"]["submitterId"] == str(world.app_user_id)
    assert first["__system"]["submissionDate"].endswith("Z")
    assert "@odata.nextLink" not in body


async def test_default_order_is_submission_date_then_id(world: World) -> None:
    """Central's order (newest submission date first), not arrival order, also across pages."""
    ids = await submit_simple(world, 4)
    async with world.runtime.transaction() as db:
        # The oldest arrival gets the newest date; two others share one date.
        await db.execute(
            update(Submission)
            .where(Submission.instance_id == ids[0])
            .values(created_at=datetime(2099, 1, 1, tzinfo=UTC))
        )
        await db.execute(
            update(Submission)
            .where(Submission.instance_id.in_([ids[1], ids[3]]))
            .values(created_at=datetime(2001, 1, 1, tzinfo=UTC))
        )
    expected = [ids[0], ids[2], ids[3], ids[1]]

    whole = await ok(await get_feed(world))
    paged: list[str] = []
    url = feed_url(world) + "?$top=1"
    while url:
        body = await ok(await world.client.get(url, headers=world.admin_headers))
        paged += ids_of(body)
        url = relative(body["@odata.nextLink"]) if "@odata.nextLink" in body else ""

    assert ids_of(whole) == expected
    assert paged == expected


async def test_attachment_counts_on_a_sparse_page(world: World) -> None:
    """A filter that keeps a few submissions far apart counts their files, and only theirs."""
    kept = ["uuid:sparse-first", "uuid:sparse-last"]
    assert_created(await submit(world, submission_xml(kept[0], photo="a.jpg")))
    for number in range(12):
        xml = submission_xml(f"uuid:sparse-{number}", photo="b.jpg")
        assert_created(await submit(world, xml))
    assert_created(await submit(world, submission_xml(kept[1], photo="")))
    for instance_id in kept:
        await _review(world, instance_id, "hasIssues")

    body = await ok(await get_feed(world, **{"$filter": "__system/reviewState eq 'hasIssues'"}))

    system = {row["__id"]: row["__system"] for row in body["value"]}
    assert list(system) == [kept[1], kept[0]]
    assert (system[kept[0]]["attachmentsExpected"], system[kept[0]]["attachmentsPresent"]) == (1, 0)
    assert (system[kept[1]]["attachmentsExpected"], system[kept[1]]["attachmentsPresent"]) == (0, 0)


async def test_system_block_counts_edits_and_files(world: World) -> None:
    """`edits` and the attachment counts come from per-batch queries, not per row."""
    plain, edited, with_photo = "uuid:sys-plain", "uuid:sys-edited", "uuid:sys-photo"
    assert_created(await submit(world, submission_xml(plain, photo="")))
    assert_created(await submit(world, submission_xml(edited, photo="")))
    for number in (2, 3):  # two edits: three versions
        deprecated = edited if number == 2 else f"{edited}-v2"
        new_id = f"{edited}-v{number}"
        xml = submission_xml(new_id, age=number, photo="", deprecated_id=deprecated)
        assert_created(await submit(world, xml))
    assert_created(await submit(world, submission_xml(with_photo, photo="p.jpg")))

    body = await ok(await get_feed(world))

    system = {row["__id"]: row["__system"] for row in body["value"]}
    assert system[plain]["edits"] == 0
    assert system[edited]["edits"] == 2
    assert system[edited]["reviewState"] == "edited"
    assert (system[plain]["attachmentsExpected"], system[plain]["attachmentsPresent"]) == (0, 0)
    photo = system[with_photo]
    assert (photo["attachmentsExpected"], photo["attachmentsPresent"]) == (1, 0)


async def test_top_skip_count_and_next_link(world: World) -> None:
    ids = list(reversed(await submit_simple(world, 5)))

    first = await ok(await get_feed(world, **{"$top": "2", "$count": "true"}))
    assert ids_of(first) == ids[:2]
    assert first["@odata.count"] == 5
    second = await ok(
        await world.client.get(relative(first["@odata.nextLink"]), headers=world.admin_headers)
    )
    assert ids_of(second) == ids[2:4]
    assert second["@odata.count"] == 5
    third = await ok(
        await world.client.get(relative(second["@odata.nextLink"]), headers=world.admin_headers)
    )
    assert ids_of(third) == ids[4:]
    assert "@odata.nextLink" not in third

    skipped = await ok(await get_feed(world, **{"$skip": "3", "$top": "1"}))
    assert ids_of(skipped) == [ids[3]]
    query = parse_qs(urlsplit(skipped["@odata.nextLink"]).query)
    assert "$skip" not in query
    assert query["$top"] == ["1"]

    counted = await ok(await get_feed(world, **{"$top": "0", "$count": "True"}))
    assert counted["value"] == []
    assert counted["@odata.count"] == 5


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"$top": "-1"}, 400.8),
        ({"$top": "many"}, 400.8),
        ({"$skip": "x"}, 400.8),
        ({"$skiptoken": "nope"}, 400.35),
        ({"$skiptoken": "01!!"}, 400.35),
        ({"$filter": "nosuch eq 'N1'"}, 501.5),
        ({"$filter": "tolower(__id) eq 'x'"}, 501.4),
        ({"$filter": "__id eq"}, 400.18),
        ({"$filter": "__system/submissionDate gt 'soon'"}, 400.8),
        ({"$orderby": "name"}, 501.5),
        ({"$orderby": "__id asc, __system/submissionDate"}, 501.1),
        ({"$expand": "meta"}, 501.6),
        ({"$select": "name", "$expand": "*"}, 501.11),
        ({"$select": "nothing"}, 400.23),
        ({"$count": "perhaps"}, 400.8),
    ],
)
async def test_bad_options_answer_with_centrals_codes(
    world: World, params: dict[str, str], code: float
) -> None:
    response = await get_feed(world, **params)

    assert response.status_code == int(code), response.text
    assert response.json()["code"] == code


async def test_unknown_tables_forms_and_paths_are_404(world: World) -> None:
    for response in (
        await get_feed(world, "Nothing"),
        await get_feed(world, "Submissions.name"),
        await get_feed(world, "Submissions", form="missing"),
        await get_feed(world, "Submissions('uuid:missing')"),
        await world.client.get(
            f"/v1/projects/{world.project_id}/forms/simple/nothing", headers=world.admin_headers
        ),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == 404.1


async def test_sign_in_and_rights_as_for_exports(world: World) -> None:
    await submit_simple(world, 1)
    anonymous = await world.client.get(feed_url(world))
    app_user = await world.client.get(
        feed_url(world), headers={"Authorization": f"Bearer {world.app_user_token}"}
    )

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 401.4)
    assert app_user.status_code in (401, 403)


async def _review(world: World, instance_id: str, state: str) -> None:
    async with world.runtime.transaction() as db:
        await db.execute(
            update(Submission)
            .where(Submission.instance_id == instance_id)
            .values(review_state=state)
        )


@pytest.mark.parametrize(
    ("expression", "picked"),
    [
        ("__system/reviewState eq 'approved'", [1]),
        ("__system/reviewState ne 'approved'", [3, 2, 0]),
        ("__system/reviewState eq null", [3, 0]),
        ("not (__system/reviewState eq 'approved')", [3, 2, 0]),
        ("__system/reviewState eq 'approved' or __system/reviewState eq 'rejected'", [2, 1]),
        (
            "(__id eq 'uuid:odata-0000' or __id eq 'uuid:odata-0003')"
            " and __system/reviewState eq null",
            [3, 0],
        ),
        ("__id ne 'uuid:odata-0000' and __system/submissionDate ge 2000-01-01", [3, 2, 1]),
        ("__system/submissionDate lt 2000-01-01T00:00:00Z", []),
        (
            "year(__system/submissionDate) ge 2024"
            " and year(__system/submissionDate) le year(now())",
            [3, 2, 1, 0],
        ),
        (
            "month(__system/submissionDate) ge 1 and day(__system/submissionDate) le 31",
            [3, 2, 1, 0],
        ),
        (
            "hour(__system/submissionDate) lt 24 and minute(__system/submissionDate) lt 60",
            [3, 2, 1, 0],
        ),
        ("second(__system/submissionDate) lt 61", [3, 2, 1, 0]),
        ("__system/submissionDate le now()", [3, 2, 1, 0]),
        ("__system/updatedAt eq null", [3, 2, 1, 0]),
        ("__system/deletedAt eq null", [3, 2, 1, 0]),
        ("$root/Submissions/__id eq 'uuid:odata-0002'", [2]),
    ],
)
async def test_filters(world: World, expression: str, picked: list[int]) -> None:
    ids = await submit_simple(world, 4)
    await _review(world, ids[1], "approved")
    await _review(world, ids[2], "rejected")

    body = await ok(await get_feed(world, **{"$filter": expression, "$count": "true"}))

    assert ids_of(body) == [ids[index] for index in picked]
    assert body["@odata.count"] == len(picked)


async def test_deleted_rows_only_when_the_filter_asks_for_them(world: World) -> None:
    ids = await submit_simple(world, 3)
    async with world.runtime.transaction() as db:
        await db.execute(
            update(Submission)
            .where(Submission.instance_id == ids[1])
            .values(deleted_at=datetime.now(UTC))
        )

    plain = await ok(await get_feed(world, **{"$count": "true"}))
    deleted = await ok(await get_feed(world, **{"$filter": "__system/deletedAt ne null"}))

    assert ids_of(plain) == [ids[2], ids[0]]
    assert plain["@odata.count"] == 2
    assert ids_of(deleted) == [ids[1]]
    assert deleted["value"][0]["__system"]["deletedAt"].endswith("Z")


async def test_filter_on_submitter(world: World) -> None:
    ids = await submit_simple(world, 2)

    mine = await ok(
        await get_feed(world, **{"$filter": f"__system/submitterId eq {world.app_user_id}"})
    )
    none = await ok(await get_feed(world, **{"$filter": "__system/submitterId eq 999999"}))

    assert ids_of(mine) == list(reversed(ids))
    assert ids_of(none) == []


async def test_orderby_and_select(world: World) -> None:
    ids = await submit_simple(world, 3)

    ascending = await ok(await get_feed(world, **{"$orderby": "__system/submissionDate asc"}))
    by_id = await ok(await get_feed(world, **{"$orderby": "__id desc", "$top": "2"}))
    selected = await ok(
        await get_feed(
            world, **{"$select": "__id,name,meta/instanceID,__system/reviewState", "$top": "1"}
        )
    )
    no_id = await ok(await get_feed(world, **{"$select": "age", "$top": "1"}))

    assert ids_of(ascending) == ids
    assert ids_of(by_id) == [ids[2], ids[1]]
    assert selected["value"] == [
        {
            "name": "N2",
            "meta": {"instanceID": ids[2]},
            "__id": ids[2],
            "__system": {"reviewState": None},
        }
    ]
    assert no_id["value"] == [{"age": 2}]


async def test_single_submission(world: World) -> None:
    ids = await submit_simple(world, 2)

    body = await ok(await get_feed(world, f"Submissions('{ids[0]}')"))
    selected = await ok(await get_feed(world, f"Submissions('{ids[1]}')", **{"$select": "age"}))
    keyed_repeat = await get_feed(world, "Submissions.meta('x')")

    assert ids_of(body) == [ids[0]]
    assert body["value"][0]["name"] == "N0"
    assert selected["value"] == [{"age": 1}]
    assert keyed_repeat.status_code == 404


async def test_draft_feed(world: World) -> None:
    draft = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/simple/draft", headers=world.admin_headers
    )
    assert draft.status_code == 200, draft.text
    base = f"/v1/projects/{world.project_id}/forms/simple/draft.svc"

    service = await world.client.get(base, headers=world.admin_headers)
    rows = await world.client.get(f"{base}/Submissions", headers=world.admin_headers)

    assert service.status_code == 200, service.text
    assert service.json()["value"] == [
        {"name": "Submissions", "kind": "EntitySet", "url": "Submissions"}
    ]
    assert service.json()["@odata.context"].endswith("/forms/simple/draft.svc/$metadata")
    assert (await ok(rows))["value"] == []


# --- repeats ----------------------------------------------------------------------------


async def test_repeat_tables(world: World, shared_dir: Path) -> None:
    await replay_golden(world, shared_dir, "onadata__nested_repeats")
    form = "nested_repeats"

    kids = await ok(
        await get_feed(world, "Submissions.kids.kids_details", form=form),
        "Submissions.kids.kids_details",
    )
    assert [row["kids_name"] for row in kids["value"]] == [
        'B "text", 2 ü',
        'B "text", 6 ü',
        'A "text", 2 ü',
        'A "text", 6 ü',
    ]
    assert kids["value"][0]["__Submissions-id"] == "uuid:dddf3218-0107-55e7-8292-046e57cd2fd0"
    assert kids["value"][0]["__id"] == "fbf8fc9253086a11de781a2315e72039e25c383a"
    assert "kids_immunization@odata.navigationLink" in kids["value"][0]
    assert "kids_immunization" not in kids["value"][0]

    shots_table = "Submissions.kids.kids_details.kids_immunization"
    pages: list[str] = []
    response = await get_feed(world, shots_table, form=form, **{"$top": "3", "$count": "true"})
    while True:
        body = await ok(response, shots_table)
        assert body["@odata.count"] == 8
        pages.extend(row["immunization_info"] for row in body["value"])
        if "@odata.nextLink" not in body:
            break
        response = await world.client.get(
            relative(body["@odata.nextLink"]), headers=world.admin_headers
        )
    assert pages == [f'{who} "text", {n} ü' for who in "BA" for n in (4, 5, 8, 9)]
    skipped = await ok(await get_feed(world, shots_table, form=form, **{"$skip": "6"}), shots_table)
    assert [row["immunization_info"] for row in skipped["value"]] == [
        'A "text", 8 ü',
        'A "text", 9 ü',
    ]

    filtered = await ok(
        await get_feed(
            world,
            "Submissions.kids.kids_details",
            form=form,
            **{"$filter": "$root/Submissions/__id eq 'uuid:14506a6e-08c6-5aa8-bec7-33c16ded2450'"},
        ),
        "Submissions.kids.kids_details",
    )
    assert [row["kids_age"] for row in filtered["value"]] == [3, 7]
    refused = await get_feed(
        world, "Submissions.kids.kids_details", form=form, **{"$filter": "__id eq 'x'"}
    )
    assert refused.json()["code"] == 501.5

    link = kids["value"][0]["kids_immunization@odata.navigationLink"]
    followed = await ok(
        await world.client.get(feed_url(world, link, form), headers=world.admin_headers),
        shots_table,
    )
    assert [row["immunization_info"] for row in followed["value"]] == [
        'B "text", 4 ü',
        'B "text", 5 ü',
    ]

    service = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/{form}/draft.svc", headers=world.admin_headers
    )
    assert service.status_code == 404  # no draft


async def test_wkt(world: World, shared_dir: Path) -> None:
    await replay_golden(world, shared_dir, "odkcentral__all-question-types-v2024091201-3")

    body = await ok(
        await get_feed(world, form="all-question-types", **{"$wkt": "true", "$top": "1"})
    )

    geo = body["value"][0]["geo_question_types"]
    assert geo["geopoint"] == "POINT (21.167 42.664 515)"
    assert geo["geotrace"] == "LINESTRING (21.1655 42.6629 512,21.167 42.664 515)"
    assert geo["geoshape"].startswith("POLYGON ((21.1655 42.6629 512,")


# --- paging while submissions arrive ----------------------------------------------------


async def _page_through(
    world: World, params: dict[str, str], arrive: int
) -> tuple[list[str], list[str]]:
    """Every id seen while paging, and the ids that arrived between pages."""
    seen: list[str] = []
    arrived: list[str] = []
    response = await get_feed(world, **params)
    number = 100
    while True:
        body = await ok(response)
        seen.extend(ids_of(body))
        if "@odata.nextLink" not in body:
            return seen, arrived
        if len(arrived) < arrive:
            arrived.extend(await submit_simple(world, 2, start=number))
            number += 2
        response = await world.client.get(
            relative(body["@odata.nextLink"]), headers=world.admin_headers
        )


async def test_paging_while_submissions_arrive_sees_each_row_once(world: World) -> None:
    existing = await submit_simple(world, 9)

    seen, arrived = await _page_through(world, {"$top": "2"}, arrive=6)

    # Newest first: rows that arrive after the first page sort before the cursor.
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(existing)
    assert arrived


async def test_paging_oldest_first_picks_up_new_rows_once(world: World) -> None:
    existing = await submit_simple(world, 7)

    seen, arrived = await _page_through(
        world, {"$top": "3", "$orderby": "__system/submissionDate asc"}, arrive=6
    )

    assert len(seen) == len(set(seen))
    assert seen == existing + arrived


async def test_stream_without_top_reads_every_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await submit_simple(world, 5)
    monkeypatch.setattr(feed_service, "BATCH_SIZE", 2)

    body = await ok(await get_feed(world, **{"$count": "true"}))

    assert ids_of(body) == list(reversed(ids))
    assert body["@odata.count"] == 5


async def test_service_document_lists_every_table(world: World, shared_dir: Path) -> None:
    await replay_golden(world, shared_dir, "onadata__nested_repeats")
    base = f"/v1/projects/{world.project_id}/forms/nested_repeats.svc"

    service = await world.client.get(base, headers=world.admin_headers)
    anonymous = await world.client.get(base)
    missing = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/nothing.svc", headers=world.admin_headers
    )

    assert service.status_code == 200, service.text
    assert service.json()["@odata.context"].endswith("/forms/nested_repeats.svc/$metadata")
    assert [entry["name"] for entry in service.json()["value"]] == [
        "Submissions",
        "Submissions.kids.kids_details",
        "Submissions.kids.kids_details.kids_immunization",
    ]
    assert anonymous.status_code == 401
    assert (missing.status_code, missing.json()["code"]) == (404, 404.1)
