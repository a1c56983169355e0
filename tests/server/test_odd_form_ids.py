"""Form ids with ``/``, ``%``, ``+``, quotes and non-ASCII, through every route.

Each id is sent percent-encoded as one path segment (as pyodk and Central's
front end send it), and every URL Homeward writes back (formList, manifest,
OData links) must lead to the same form when followed as given.
"""

from __future__ import annotations

import io
import zipfile
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

import httpx
import pytest
from lxml import etree

from tests.e2e.collect import md5
from tests.server.conftest import XLSX, World
from tests.server.test_forms_api import body_of, xlsform
from tests.server.test_submissions import assert_created, submit

ODD_IDS = [
    "a/b",
    "50%",
    "%2F",
    "a+b c",
    'it\'s "quoted"',
    "✅",
    "'=+/*-451%/%",
    "draft/publish",
]
MEDIA_NAME = "logo-✅-100%#?.png"
MEDIA_BYTES = b"\x89PNG\r\n\x1a\n odd media"
LIST_NS = "{http://openrosa.org/xforms/xformsList}"
MANIFEST_NS = "{http://openrosa.org/xforms/xformsManifest}"


def odd_form(form_id: str) -> bytes:
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa">
<h:head><h:title>Odd {escape(form_id)}</h:title><model>
<itext><translation lang="default">
<text id="/data/name:label"><value>Name</value><value form="image">jr://images/{escape(MEDIA_NAME)}</value></text>
</translation></itext>
<instance><data id={quoteattr(form_id)} version="1"><name/><meta><instanceID/></meta></data>
</instance>
<bind nodeset="/data/name" type="string"/>
<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
</model></h:head>
<h:body><input ref="/data/name"><label ref="jr:itext('/data/name:label')"/></input></h:body>
</h:html>""".encode()


def odd_submission(form_id: str, instance_id: str, name: str) -> bytes:
    return (
        f'<data id={quoteattr(form_id)} version="1"><name>{escape(name)}</name>'
        f"<meta><instanceID>{escape(instance_id)}</instanceID></meta></data>"
    ).encode()


def segment(text: str) -> str:
    return quote(text, safe="")


def local(url: str) -> str:
    """An absolute URL Homeward wrote, without scheme and host, to follow it as given."""
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return parts.path + query + (f"#{parts.fragment}" if parts.fragment else "")


def same_url(written: str, expected: str) -> bool:
    """The same segments once each is decoded (so an id's ``/`` must stay encoded)."""
    return [unquote(part) for part in local(written).split("/")] == [
        unquote(part) for part in expected.split("/")
    ]


async def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, (response.request.url, response.text)
    return response


@pytest.mark.parametrize("form_id", ODD_IDS)
async def test_odd_form_id_round_trips_through_every_route(
    module_world: World, form_id: str
) -> None:
    world = module_world
    client, admin = world.client, world.admin_headers
    form_path = f"/v1/projects/{world.project_id}/forms/{segment(form_id)}"

    created = await ok(
        await client.post(
            f"/v1/projects/{world.project_id}/forms",
            content=odd_form(form_id),
            headers=admin | {"Content-Type": "application/xml"},
        )
    )
    assert created.json()["xmlFormId"] == form_id
    await ok(
        await client.post(
            f"{form_path}/draft/attachments/{segment(MEDIA_NAME)}",
            content=MEDIA_BYTES,
            headers=admin | {"Content-Type": "image/png"},
        )
    )
    await ok(await client.post(f"{form_path}/draft/publish", headers=admin))
    assert (await ok(await client.get(form_path, headers=admin))).json()["xmlFormId"] == form_id
    versions = await ok(await client.get(f"{form_path}/versions", headers=admin))
    assert [v["version"] for v in versions.json()] == ["1"]
    await ok(
        await client.post(f"{form_path}/assignments/app-user/{world.app_user_id}", headers=admin)
    )

    # Collect's journey: formList -> form XML -> manifest -> media, following the URLs.
    listing = await ok(await client.get(f"{world.key_base}/formList"))
    entries = {
        entry.findtext(f"{LIST_NS}formID"): entry
        for entry in etree.fromstring(listing.content).iter(f"{LIST_NS}xform")
    }
    entry = entries[form_id]
    download_url = entry.findtext(f"{LIST_NS}downloadUrl")
    manifest_url = entry.findtext(f"{LIST_NS}manifestUrl")
    assert download_url is not None
    assert manifest_url is not None
    for url in (download_url, manifest_url):
        # The id is one segment: its own "/" stays encoded.
        id_segment = urlsplit(url).path.split("/forms/")[1].split("/")[0]
        assert unquote(id_segment.removesuffix(".xml")) == form_id
    form_xml = await ok(await client.get(local(download_url)))
    assert entry.findtext(f"{LIST_NS}hash") == "md5:" + md5(form_xml.content)
    manifest = etree.fromstring((await ok(await client.get(local(manifest_url)))).content)
    media_file = manifest.find(f"{MANIFEST_NS}mediaFile")
    assert media_file is not None
    assert media_file.findtext(f"{MANIFEST_NS}filename") == MEDIA_NAME
    media_url = media_file.findtext(f"{MANIFEST_NS}downloadUrl")
    assert media_url is not None
    assert await body_of(client, await client.get(local(media_url))) == MEDIA_BYTES

    # Submissions from the phone, then read back through the API.
    instance_ids = [f"uuid:{form_id}-{n}" for n in range(2)]
    for number, instance_id in enumerate(instance_ids):
        xml = odd_submission(form_id, instance_id, f"Arta {number}")
        assert_created(await submit(world, xml))
    listed = await ok(await client.get(f"{form_path}/submissions", headers=admin))
    assert sorted(s["instanceId"] for s in listed.json()) == sorted(instance_ids)
    one = await ok(
        await client.get(f"{form_path}/submissions/{segment(instance_ids[0])}.xml", headers=admin)
    )
    assert b"Arta 0" in one.content

    # OData: the service document, a page, and the links it writes.
    service = (await ok(await client.get(f"{form_path}.svc", headers=admin))).json()
    assert same_url(service["@odata.context"], f"{form_path}.svc/$metadata")
    page = (await ok(await client.get(f"{form_path}.svc/Submissions?$top=1", headers=admin))).json()
    assert same_url(page["@odata.context"], f"{form_path}.svc/$metadata#Submissions")
    following = (await ok(await client.get(local(page["@odata.nextLink"]), headers=admin))).json()
    names = {row["name"] for row in page["value"] + following["value"]}
    assert names == {"Arta 0", "Arta 1"}
    odata_key = segment(instance_ids[1].replace("'", "''"))  # OData doubles a quote
    keyed = (
        await ok(await client.get(f"{form_path}.svc/Submissions('{odata_key}')", headers=admin))
    ).json()
    assert [row["name"] for row in keyed["value"]] == ["Arta 1"]

    # The CSV export, its file name carrying the id.
    export = await ok(await client.get(f"{form_path}/submissions.csv.zip", headers=admin))
    assert (
        f"filename*=UTF-8''{quote(form_id + '.csv.zip', safe='')}"
        in (export.headers["content-disposition"])
    )
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        (csv_name,) = [name for name in archive.namelist() if name.endswith(".csv")]
        assert "/" not in csv_name
        assert "Arta 1" in archive.read(csv_name).decode()


async def test_fallback_header_is_percent_decoded(module_world: World) -> None:
    world = module_world
    workbook = xlsform([["type", "name", "label"], ["text", "name", "Name"]])
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=workbook,
        headers=world.admin_headers
        | {
            "Content-Type": XLSX,
            "X-XlsForm-FormId-Fallback": quote("fallback ✅/50%", safe=""),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["xmlFormId"] == "fallback ✅/50%"


@pytest.mark.parametrize(
    ("form_id", "named"),
    [
        ("tab\there", "control character"),
        ("line\nbreak", "control character"),
        ("..", "only dots"),
        (".", "only dots"),
        ("form.xlsx", ".xml"),
        ("form.xml", ".xml"),
        (" padded", "space"),
    ],
)
async def test_form_ids_central_refuses_are_400(
    module_world: World, form_id: str, named: str
) -> None:
    world = module_world
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=odd_form(form_id),  # quoteattr writes a tab or line break as a reference
        headers=world.admin_headers | {"Content-Type": "application/xml"},
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400.8
    assert named in body["message"]


async def test_a_control_character_in_the_fallback_id_is_400(module_world: World) -> None:
    world = module_world
    response = await world.client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=xlsform([["type", "name", "label"], ["text", "name", "Name"]]),
        headers=world.admin_headers
        | {"Content-Type": XLSX, "X-XlsForm-FormId-Fallback": "bell%07"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 400.8
    assert "control character" in response.json()["message"]


async def test_an_id_spelling_an_escape_is_not_another_id(module_world: World) -> None:
    """``%2F`` sent encoded (``%252F``) names the form ``%2F``, never ``/``."""
    world = module_world
    response = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/{segment('%2F')}-none", headers=world.admin_headers
    )
    assert response.status_code == 404
