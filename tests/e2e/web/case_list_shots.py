"""``make screenshots``, the case-list pages: a programme project with a few returnees
registered and followed up from a phone, then its case list, a returnee, who is due
and the indicators."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
from playwright.async_api import Page

from tests.e2e.collect import Collect, intake_xml, jpeg, new_instance_id, sign_in_admin
from tests.e2e.test_programme_case_list import follow_up_xml
from tests.e2e.web.test_case_lists import publish_programme

Shoot = Callable[[Page, str, str, str], Awaitable[None]]
# (case id, first name, sex, municipality): intake_xml's returnee, varied.
RETURNEES = (
    ("RW-20261123-a1b2c3", "Arta", "female", "Tirana"),
    ("RW-20261124-d4e5f6", "Besnik", "male", "Shkodër"),
    ("RW-20261125-0a1b2c", "Elira", "female", "Durrës"),
    ("RW-20261126-3d4e5f", "Gentian", "male", "Tirana"),
)


def _intake(case_id: str, name: str, sex: str, town: str, entity_id: str) -> bytes:
    xml = intake_xml(new_instance_id(), "consent.jpg", municipality=town, entity_id=entity_id)
    return (
        xml.replace(b"RW-20261123-a1b2c3", case_id.encode())
        .replace(b"Arta", name.encode())
        .replace(b"<sex>female</sex>", f"<sex>{sex}</sex>".encode())
    )


async def shoot_case_lists(page: Page, base: str, shoot: Shoot) -> list[tuple[str, str]]:
    """Photograph the case-list pages; their (path, name) pairs, for the other languages."""
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as admin,
        httpx.AsyncClient(timeout=60) as phone,
    ):
        await sign_in_admin(admin)
        pid, token = await publish_programme(admin)
        collect, key_base = Collect(phone), f"{base}/v1/key/{token}/projects/{pid}"
        first = ""
        for n, (case_id, name, sex, town) in enumerate(RETURNEES):
            entity_id = str(uuid.uuid4())
            first = first or entity_id
            sent = await collect.submit(
                f"{key_base}/submission",
                _intake(case_id, name, sex, town, entity_id),
                [("consent.jpg", jpeg(2_000), "image/jpeg")],
            )
            assert sent.status_code == 201, sent.text
            if n % 2 == 0:
                sent = await collect.submit(
                    f"{key_base}/submission",
                    follow_up_xml(entity_id, base=1, branch=str(uuid.uuid4())),
                )
                assert sent.status_code == 201, sent.text
    pages = [
        (f"/projects/{pid}/case-lists", "case-lists"),
        (f"/projects/{pid}/datasets/returnees", "case-list-entries"),
        (f"/projects/{pid}/datasets/returnees/entities/{first}", "returnee"),
        (f"/projects/{pid}/due", "who-is-due"),
        (f"/projects/{pid}/indicators", "indicators"),
    ]
    for path, name in pages:
        await shoot(page, base, path, name)
    return pages
