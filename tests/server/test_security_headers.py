"""Headers on every response: CSP, nosniff, framing, referrer, HSTS, caching."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from litestar import Litestar

from server.downloads import safe_media_type
from server.security_headers import CONTENT_SECURITY_POLICY
from tests.server.conftest import World, submission_xml
from tests.server.test_hostile_input import OPENROSA, multipart_body, part, post_raw, xml_part


def assert_protected(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp or "sandbox" in csp
    assert "unsafe-inline" not in csp


async def submit(world: World, instance_id: str, photo: bytes, photo_type: str) -> None:
    body = multipart_body(
        xml_part(submission_xml(instance_id)),
        part("p.jpg", photo, filename="p.jpg", content_type=photo_type),
    )
    response = await post_raw(world, body)
    assert response.status_code == 201, response.text


async def test_every_kind_of_response_carries_the_headers(world: World) -> None:
    await submit(world, "uuid:h1", b"\xff\xd8jpeg", "image/jpeg")
    forms = f"/v1/projects/{world.project_id}/forms"
    admin = world.admin_headers
    responses = [
        await world.client.get("/healthz"),
        await world.client.get("/no/such/path"),
        await world.client.get("/v1/projects"),  # 401
        await world.client.get("/v1/projects", headers=admin),
        await world.client.get(f"{world.key_base}/formList", headers=OPENROSA),
        await world.client.get(f"{forms}/simple/submissions/uuid:h1.xml", headers=admin),
        await world.client.get("/v1/openapi/openapi.json"),
    ]
    for response in responses:
        assert_protected(response)
    assert responses[0].headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "strict-transport-security" not in responses[0].headers


async def test_hsts_only_over_https(app: Litestar) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_submission_data_is_never_cached(world: World) -> None:
    await submit(world, "uuid:c1", b"\xff\xd8jpeg", "image/jpeg")
    forms = f"/v1/projects/{world.project_id}/forms/simple"
    admin = world.admin_headers
    for path in (
        f"{forms}/submissions",
        f"{forms}/submissions/uuid:c1",
        f"{forms}/submissions/uuid:c1.xml",
        f"{forms}/submissions/uuid:c1/attachments/p.jpg",
        f"{forms}.svc/Submissions",
        f"{forms}/submissions.csv.zip",
    ):
        response = await world.client.get(path, headers=admin)
        # 307: an S3 store answers attachments with a presigned URL.
        assert response.status_code in (200, 307), (path, response.text)
        assert response.headers["cache-control"] == "no-store", path


async def test_collect_keeps_its_revalidating_cache_for_forms(world: World) -> None:
    listing = await world.client.get(f"{world.key_base}/formList", headers=OPENROSA)
    assert listing.headers["cache-control"] == "no-cache"
    form = await world.client.get(f"{world.key_base}/forms/simple.xml", headers=OPENROSA)
    assert form.headers["cache-control"] == "no-cache"
    again = await world.client.get(
        f"{world.key_base}/forms/simple.xml",
        headers=OPENROSA | {"If-None-Match": form.headers["etag"]},
    )
    assert again.status_code == 304


async def test_openapi_is_served_as_json_without_any_cdn(client: httpx.AsyncClient) -> None:
    schema = await client.get("/v1/openapi/openapi.json")
    assert schema.status_code == 200
    assert "cdn" not in schema.text.lower()
    for viewer in ("swagger", "redoc", "elements", "rapidoc", "scalar"):
        assert (await client.get(f"/v1/openapi/{viewer}")).status_code == 404, viewer


async def test_an_attachment_declared_as_html_is_not_served_as_html(world: World) -> None:
    page = b"<html><script>alert(document.cookie)</script></html>"
    await submit(world, "uuid:x1", page, "text/html")
    path = f"/v1/projects/{world.project_id}/forms/simple/submissions/uuid:x1/attachments/p.jpg"
    response = await world.client.get(path, headers=world.admin_headers)
    if response.status_code == 307:  # S3: the presigned URL names the type S3 must send
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["response-content-type"] == ["application/octet-stream"]
        assert query["response-content-disposition"][0].startswith("attachment;")
        return
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.content == page


async def served_type(world: World, path: str) -> str:
    response = await world.client.get(path, headers=world.admin_headers)
    if response.status_code == 307:
        query = parse_qs(urlsplit(response.headers["location"]).query)
        return query["response-content-type"][0]
    assert response.status_code == 200, response.text
    return response.headers["content-type"]


async def test_each_attachment_is_served_with_the_type_it_was_sent_with(world: World) -> None:
    """The same bytes, sent twice with two types: each copy keeps its own type,
    although the blob (shared by hash) was stored with the first."""
    photo = b"\x89PNG\r\n\x1a\nshared bytes"
    await submit(world, "uuid:t1", photo, "image/png")
    await submit(world, "uuid:t2", photo, "image/jpeg")
    base = f"/v1/projects/{world.project_id}/forms/simple/submissions"
    assert await served_type(world, f"{base}/uuid:t1/attachments/p.jpg") == "image/png"
    assert await served_type(world, f"{base}/uuid:t2/attachments/p.jpg") == "image/jpeg"
    uploaded = await world.client.post(
        f"{base}/uuid:t1/attachments/p.jpg",
        content=photo,
        headers=world.admin_headers | {"Content-Type": "image/webp"},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert await served_type(world, f"{base}/uuid:t1/attachments/p.jpg") == "image/webp"
    assert await served_type(world, f"{base}/uuid:t2/attachments/p.jpg") == "image/jpeg"


def test_active_types_are_never_served_as_themselves() -> None:
    for active in (
        "text/html",
        "TEXT/HTML; charset=utf-8",
        "image/svg+xml",
        "application/xhtml+xml",
        "application/xml",
        "text/xml",
        "application/javascript",
        "application/atom+xml",
        "nonsense",
        "",
        None,
    ):
        assert safe_media_type(active) == "application/octet-stream", active
    assert safe_media_type("image/jpeg") == "image/jpeg"
    assert safe_media_type("text/csv; charset=utf-8") == "text/csv; charset=utf-8"
