"""The OpenAPI schema Litestar publishes builds, with one operation per route and method."""

from __future__ import annotations

import httpx


async def test_openapi_schema_is_served_with_unique_operation_ids(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/openapi/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    operations = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operations) == len(set(operations))
    zip_path = "/v1/projects/{project_id}/forms/{xml_form_id}/submissions.csv.zip"
    assert set(paths[zip_path]) == {"get", "post"}
    assert "/v1/projects/{project_id}/forms" in paths
