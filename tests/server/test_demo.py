"""The demo project (`homeward demo`) publishes the programme forms with their case list."""

from __future__ import annotations

import httpx
from lxml import etree

from server.demo import seed_demo
from server.runtime import Runtime

MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"


async def test_the_demo_follow_up_forms_download_the_returnees_list(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    demo = await seed_demo(runtime, "http://testserver")
    base = demo.collect_url.removeprefix("http://testserver")
    headers = {"X-OpenRosa-Version": "1.0"}
    for form_id in ("needs_assessment", "follow_up"):
        manifest = await client.get(f"{base}/forms/{form_id}/manifest", headers=headers)
        assert manifest.status_code == 200, manifest.text
        [entry] = [m for m in etree.fromstring(manifest.content) if m.get("type") == "entityList"]
        assert entry.findtext(f"{{{MANIFEST_NS}}}filename") == "returnees.csv"
        url = entry.findtext(f"{{{MANIFEST_NS}}}downloadUrl") or ""
        listed = await client.get(url.removeprefix("http://testserver"), headers=headers)
        assert listed.status_code == 200, listed.text
        assert listed.text.splitlines()[0].startswith("name,label,__version")
    again = await seed_demo(runtime, "http://testserver")
    assert again.collect_url == demo.collect_url
