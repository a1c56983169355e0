"""A returnee form with personal questions, one edited submission, and the five callers.

Shared by the personal-data tests: the route sweep, retention and erasure.
The personal values are distinctive ("Arben Hoxha", a +355 number, a face
photo) so that a test can look for them in any response, however encoded.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import polars as pl

from forms.xlsform import compile_xlsform
from server.services import accounts
from tests.server.conftest import World, sign_in

XML = {"Content-Type": "application/xml"}
PASSWORD = "a long enough password"

FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa" xmlns:homeward="urn:homeward:xforms">
<h:head><h:title>Returnee</h:title><model>
<instance><returnee id="returnee" version="1"><case_id/><full_name/><phone/><age/><district/>
<location/><photo/><document/><household><member_name/><member_age/></household>
<meta><instanceID/><instanceName/></meta></returnee></instance>
<bind nodeset="/returnee/case_id" type="string"/>
<bind nodeset="/returnee/full_name" type="string" homeward:personal="yes"/>
<bind nodeset="/returnee/phone" type="string" homeward:personal="yes"/>
<bind nodeset="/returnee/age" type="int" homeward:personal="yes"/>
<bind nodeset="/returnee/district" type="string"/>
<bind nodeset="/returnee/location" type="geopoint"/>
<bind nodeset="/returnee/photo" type="binary" homeward:personal="yes"/>
<bind nodeset="/returnee/document" type="binary"/>
<bind nodeset="/returnee/household/member_name" type="string" homeward:personal="yes"/>
<bind nodeset="/returnee/household/member_age" type="int"/>
<bind nodeset="/returnee/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
<bind nodeset="/returnee/meta/instanceName" type="string"
 calculate="concat(/returnee/full_name, ' / ', /returnee/phone)"/>
</model></h:head>
<h:body>
<input ref="/returnee/case_id"><label>Case</label></input>
<input ref="/returnee/full_name"><label>Name</label></input>
<input ref="/returnee/phone"><label>Phone</label></input>
<input ref="/returnee/age"><label>Age</label></input>
<input ref="/returnee/district"><label>District</label></input>
<input ref="/returnee/location"><label>Where</label></input>
<upload ref="/returnee/photo" mediatype="image/*"><label>Photo</label></upload>
<upload ref="/returnee/document" mediatype="image/*"><label>Document</label></upload>
<group ref="/returnee/household"><label>Household</label>
<repeat nodeset="/returnee/household">
<input ref="/returnee/household/member_name"><label>Member</label></input>
<input ref="/returnee/household/member_age"><label>Member age</label></input>
</repeat></group>
</h:body></h:html>"""

NAME = "Arben Hoxha"
PHONE = "+355691234567"
# What must never reach a caller who may not read personal values.
SECRETS = (NAME, PHONE.removeprefix("+"), "face of Arben")
PHOTO = b"JPEG face of Arben"
DOCUMENT = b"JPEG scan of a district letter"


def returnee_xml(
    instance_id: str,
    *,
    case_id: str = "R-001",
    name: str = f"{NAME} A1",
    phone: str = PHONE,
    deprecated_id: str | None = None,
) -> bytes:
    deprecated = f"<deprecatedID>{deprecated_id}</deprecatedID>" if deprecated_id else ""
    family = name.rsplit(" ", 1)[0] + " junior"  # "Arben Hoxha junior"
    return (
        f'<returnee id="returnee" version="1"><case_id>{case_id}</case_id>'
        f"<full_name>{name}</full_name><phone>{phone}</phone><age>41</age>"
        "<district>Shkoder</district><location>42.06 19.51 10 5</location>"
        "<photo>face.jpg</photo><document>doc.jpg</document>"
        f"<household><member_name>{family}</member_name><member_age>9</member_age></household>"
        f"<meta><instanceID>{instance_id}</instanceID><instanceName>{name} / {phone}</instanceName>"
        f"{deprecated}</meta></returnee>"
    ).encode()


@dataclass
class Returnees:
    world: World
    callers: dict[str, dict[str, str]]
    job: int = 0  # a manager's export job that kept personal fields

    @property
    def form(self) -> str:
        return f"/v1/projects/{self.world.project_id}/forms/returnee"


async def publish_returnee_form(world: World) -> None:
    created = await world.client.post(
        f"/v1/projects/{world.project_id}/forms?publish=true",
        content=FORM,
        headers=world.admin_headers | XML,
    )
    assert created.status_code == 200, created.text


async def add_returnee(
    world: World,
    instance_id: str,
    *,
    case_id: str = "R-001",
    edited: bool = True,
    name: str = NAME,
    phone: str = PHONE,
    photo: bytes = PHOTO,
) -> None:
    """One submission with both files, and (when `edited`) a second version of it."""
    client, admin = world.client, world.admin_headers
    form = f"/v1/projects/{world.project_id}/forms/returnee/submissions"
    first = returnee_xml(instance_id, case_id=case_id, name=f"{name} A1", phone=phone)
    made = await client.post(form, content=first, headers=admin | XML)
    assert made.status_code == 200, made.text
    for file_name, data in (("face.jpg", photo), ("doc.jpg", DOCUMENT)):
        sent = await client.post(
            f"{form}/{instance_id}/attachments/{file_name}", content=data, headers=admin
        )
        assert sent.status_code == 200, sent.text
    if edited:
        edit = returnee_xml(
            f"{instance_id}-v2",
            case_id=case_id,
            name=f"{name} EDITED",
            phone=phone,
            deprecated_id=instance_id,
        )
        put = await client.put(f"{form}/{instance_id}", content=edit, headers=admin | XML)
        assert put.status_code == 200, put.text


async def make_callers(world: World) -> dict[str, dict[str, str]]:
    """Headers of a viewer, a data collector, an app user, a public link and a manager."""
    client, admin, project = world.client, world.admin_headers, world.project_id
    callers = {"app": {"Authorization": f"Bearer {world.app_user_token}"}}
    for caller, role in (("view", "viewer"), ("coll", "formfill"), ("mgr", "manager")):
        email = f"personal-{caller}-{project}@example.org"
        async with world.runtime.transaction() as db:
            actor, _ = await accounts.create_user(db, email=email, password=PASSWORD)
        assigned = await client.post(
            f"/v1/projects/{project}/assignments/{role}/{actor.id}", headers=admin
        )
        assert assigned.status_code == 200, assigned.text
        callers[caller] = await sign_in(client, email, PASSWORD)
    link = await client.post(
        f"/v1/projects/{project}/forms/returnee/public-links",
        json={"displayName": "Open intake"},
        headers=admin,
    )
    assert link.status_code == 200, link.text
    callers["link"] = {"Authorization": f"Bearer {link.json()['token']}"}
    return callers


def readable_text(body: bytes) -> str:
    """Everything a response carries, as text: zips opened, Parquet files read."""
    if not body.startswith(b"PK"):
        return body.decode("utf-8", errors="replace")
    parts = []
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        for member in archive.namelist():
            data = archive.read(member)
            if member.endswith(".parquet"):
                parts.append(pl.read_parquet(io.BytesIO(data)).write_csv())
            else:
                parts.append(member + "\n" + readable_text(data))
    return "\n".join(parts)


def leaked(body: bytes) -> list[str]:
    text = readable_text(body)
    return [secret for secret in SECRETS if secret in text]


# An entity list filled from a personal field: `full_name` (personal) saved to the
# `full_name` property, `district` (not personal) to `district`; the label is the case id.
CASE_INTAKE = """
| survey |
| | type | name | label | save_to | personal |
| | text | case_id | Case | | |
| | text | full_name | Name | full_name | yes |
| | text | district | District | district | |
| entities |
| | list_name | label |
| | cases | ${case_id} |
| settings |
| | form_id | version |
| | case_intake | 1 |
"""
CASE_VISIT = """
| survey |
| | type | name | label |
| | select_one_from_file cases.csv | who | Who |
| settings |
| | form_id | version |
| | case_visit | 1 |
"""
ENTITY_ID = "12345678-1234-4123-8123-123456789abc"


async def add_case(world: World) -> None:
    """The two forms (intake fills `cases`, the visit downloads it) and one case of Arben."""
    for markdown in (CASE_INTAKE, CASE_VISIT):
        xform = compile_xlsform(markdown.encode(), file_name="f.md").xml
        created = await world.client.post(
            f"/v1/projects/{world.project_id}/forms?publish=true",
            content=xform,
            headers=world.admin_headers | XML,
        )
        assert created.status_code == 200, created.text
    assigned = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/case_visit/assignments/app-user/{world.app_user_id}",
        headers=world.admin_headers,
    )
    assert assigned.status_code == 200, assigned.text
    submission = (
        f'<data id="case_intake" version="1"><case_id>R-001</case_id>'
        f"<full_name>{NAME} A1</full_name><district>Shkoder</district>"
        "<meta><instanceID>uuid:case1</instanceID>"
        f'<entity dataset="cases" create="1" id="{ENTITY_ID}"><label>R-001</label>'
        "</entity></meta></data>"
    )
    sent = await world.client.post(
        f"/v1/projects/{world.project_id}/forms/case_intake/submissions",
        content=submission.encode(),
        headers=world.admin_headers | XML,
    )
    assert sent.status_code == 200, sent.text
    edited = await world.client.patch(
        f"/v1/projects/{world.project_id}/datasets/cases/entities/{ENTITY_ID}?force=true",
        json={"data": {"full_name": f"{NAME} EDITED"}},
        headers=world.admin_headers,
    )
    assert edited.status_code == 200, edited.text
