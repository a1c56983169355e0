"""What the web app's check-settings section reads: the questions with their labels,
and why a check could not run as a stable code beside its English words."""

from __future__ import annotations

from tests.server.conftest import World
from tests.server.test_check_findings import families_world, url


async def test_settings_list_the_questions_they_may_name_with_labels(world: World) -> None:
    await families_world(world)

    read = await world.client.get(
        url(world, "cleaning-check-settings"), headers=world.admin_headers
    )
    stored = await world.client.put(
        url(world, "cleaning-check-settings"),
        json={"outlierFields": ["/household/age"]},
        headers=world.admin_headers,
    )

    assert read.status_code == 200, read.text
    questions = {q["path"]: q for q in read.json()["questions"]}
    assert questions["/household/age"] == {
        "path": "/household/age",
        "name": "age",
        "kind": "int",
        "repeat": "/household",
        "personal": False,
        "labels": {"default": "Age"},
    }
    assert questions["/head"]["repeat"] is None
    assert "/household" not in questions  # a repeat is not a question
    assert not [path for path in questions if path.startswith("/meta/")]
    assert stored.status_code == 200, stored.text
    assert "questions" not in stored.json()
    assert stored.json()["settings"]["outlierFields"] == ["/household/age"]


async def test_a_check_that_cannot_run_gives_a_reason_code(world: World) -> None:
    await families_world(world)

    ran = await world.client.post(url(world, "cleaning-findings/run"), headers=world.admin_headers)

    assert ran.status_code == 200, ran.text
    skipped = {(n["check"], n["reason"]) for n in ran.json()["notEvaluated"]}
    assert ("duplicate", "no_duplicate_fields") in skipped  # the form marks nothing personal
    assert ("duration", "no_start_end") in skipped
    assert all(n["why"] for n in ran.json()["notEvaluated"])
