"""Shared by the OData tests: the golden replay, the EDMX reduction and a structural check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lxml import etree

from tests.server.conftest import XLSX, World
from tests.server.test_submissions import assert_created, submit

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
PHOTO = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"
VOLATILE = "<volatile>"


def reduce_metadata(data: bytes) -> dict[str, Any]:
    """$metadata as the golden files keep it: types, keys, properties, navigation, sets."""
    root = etree.fromstring(data)
    assert root.tag == f"{EDMX}Edmx"
    assert root.get("Version") == "4.0"
    schemas = root.findall(f"{EDMX}DataServices/{EDM}Schema")
    reduced: dict[str, Any] = {
        "complexTypes": {},
        "entitySets": {},
        "entityTypes": {},
        "schemas": sorted(schema.get("Namespace", "") for schema in schemas),
    }
    for schema in schemas:
        namespace = schema.get("Namespace")
        for kind, tag in (("complexTypes", "ComplexType"), ("entityTypes", "EntityType")):
            for element in schema.findall(f"{EDM}{tag}"):
                reduced[kind][f"{namespace}.{element.get('Name')}"] = {
                    "key": [
                        ref.get("Name") for ref in element.findall(f"{EDM}Key/{EDM}PropertyRef")
                    ],
                    "navigation": {
                        nav.get("Name"): nav.get("Type")
                        for nav in element.findall(f"{EDM}NavigationProperty")
                    },
                    "properties": {
                        prop.get("Name"): prop.get("Type")
                        for prop in element.findall(f"{EDM}Property")
                    },
                }
        for entity_set in schema.findall(f"{EDM}EntityContainer/{EDM}EntitySet"):
            reduced["entitySets"][entity_set.get("Name")] = {
                "entityType": entity_set.get("EntityType"),
                "navigation": {
                    binding.get("Path"): binding.get("Target")
                    for binding in entity_set.findall(f"{EDM}NavigationPropertyBinding")
                },
            }
    return reduced


def mask(expected: Any, got: Any) -> Any:
    """`got` with the values Central marked <volatile> replaced by that mark."""
    if expected == VOLATILE:
        return VOLATILE
    if isinstance(expected, dict) and isinstance(got, dict):
        return {key: mask(expected.get(key), value) for key, value in got.items()}
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [mask(e, g) for e, g in zip(expected, got, strict=True)]
    return got


def project_relative(text: str, project_id: int) -> str:
    """Absolute feed URLs as the golden files keep them: /v1/projects/<id>/..."""
    start = text.find("/v1/projects/")
    if start < 0:
        return text
    return text[start:].replace(f"/v1/projects/{project_id}/", "/v1/projects/<id>/", 1)


def assert_odata_collection(body: dict[str, Any], *, table: str) -> None:
    """The OData 4 JSON shape of a collection: context URL, value array, paging links."""
    context = body["@odata.context"]
    assert context.startswith("http"), context
    assert context.endswith(f"/$metadata#{table}"), context
    assert isinstance(body["value"], list)
    assert all(isinstance(row, dict) for row in body["value"])
    allowed = {"@odata.context", "@odata.count", "@odata.nextLink", "value"}
    assert set(body) <= allowed, set(body) - allowed
    if "@odata.count" in body:
        assert isinstance(body["@odata.count"], int)
        assert body["@odata.count"] >= 0
    if "@odata.nextLink" in body:
        assert "$skiptoken=01" in body["@odata.nextLink"]


async def replay_golden(world: World, shared_dir: Path, stem: str) -> dict[str, Any]:
    """Upload the golden form, submit its two submissions; the golden answers."""
    golden: dict[str, Any] = json.loads(
        (shared_dir / "central-golden" / f"{stem}.json").read_text("utf-8")
    )
    headers = world.admin_headers
    uploaded = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?ignoreWarnings=true&publish=true",
        content=(shared_dir / "xlsforms" / golden["file"]).read_bytes(),
        headers=headers | {"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": stem},
    )
    assert uploaded.status_code == 200, uploaded.text
    form_id = golden["xmlFormId"]
    app_user = await world.client.post(
        f"/v1/projects/{world.project_id}/app-users",
        json={"displayName": "Golden"},
        headers=headers,
    )
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/{form_id}/assignments/app-user/{app_user.json()['id']}",
        headers=headers,
    )
    assert assigned.status_code == 200, assigned.text
    key_base = f"/v1/key/{app_user.json()['token']}/projects/{world.project_id}"
    for submission in golden["submissions"]:
        files = {name: PHOTO for name in submission["attachments"]}
        assert_created(await submit(world, submission["xml"].encode(), files, base=key_base))
    return golden
