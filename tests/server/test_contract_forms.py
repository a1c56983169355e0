# ruff: noqa: E501 - the table keeps one route per line
"""Form routes against Central's documented answers: forms, drafts, versions,
attachments, fields, form assignments, public links, and the OpenRosa routes
that serve forms to Collect.

Attachments are checked on ``fruit`` (published with ``fruits.csv``, then
redrafted), the XLSForm downloads on the ``pets`` draft.
"""

from __future__ import annotations

import pytest

from tests.server.conftest import World
from tests.server.contract import (
    XML_TYPES,
    Actor,
    Assignment,
    Contract,
    DraftForm,
    ExtendedForm,
    ExtendedPublicLink,
    Fail,
    Field,
    Form,
    FormAttachment,
    Ok,
    PublicLink,
    Success,
    check_failure,
    check_success,
    ids,
)
from tests.server.test_authorisation import (
    KEY,
    OPENROSA,
    OPENROSA_ONLY,
    TEST,
    XML,
    Ctx,
    F,
    P,
    build,
    form_xml,
    fresh_deleted_form,
    fresh_draft,
    fresh_form,
    fresh_form_viewer,
    fresh_link,
    fresh_user,
    json_body,
    new_form,
    ok,
)
from tests.server.test_forms_api import PETS, media_form

EXTENDED = {"X-Extended-Metadata": "true"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLS_TYPES = (XLSX, "application/vnd.ms-excel")
CSV = b"name,label\napple,Apple\n"
NO_FORM = {"xml_form_id": "nosuch"}
FRUIT = {"xml_form_id": "fruit", "name": "fruits.csv", "version_ref": "1"}
PETS_DRAFT = {"xml_form_id": "pets"}


async def fruit_draft(ctx: Ctx) -> dict[str, str]:
    """The fruit form's draft test link (its token is made with the module's world)."""
    return FRUIT | {"draft_token": ctx.values["fruit_draft_token"]}


# fmt: off
CONTRACTS = [
    Contract("GET",    P + "/forms",
             Ok(200, list[ExtendedForm], headers=EXTENDED),
             Fail(403.1, caller="app")),
    Contract("POST",   P + "/forms",
             Ok(200, Form, body=new_form),
             Fail(409.3, body=lambda ctx: {"content": form_xml("simple"), "headers": XML})),
    Contract("POST",   P + "/forms/{form_id:int}/restore",
             Ok(200, Success, fresh=fresh_deleted_form),
             Fail(404.1, values={"form_id": "999999"})),
    Contract("GET",    P + "/forms/{form_ref:str}",
             Ok(200, ExtendedForm, headers=EXTENDED),
             Fail(404.1, values={"form_ref": "nosuch"})),
    Contract("PATCH",  F,
             Ok(200, Form, body=json_body({"state": "open"})),
             Fail(400.8, body=json_body({"state": "sleeping"}))),
    Contract("DELETE", F,
             Ok(200, Success, fresh=fresh_form),
             Fail(404.1, values=NO_FORM)),
    Contract("GET",    F + "/versions",
             Ok(200, list[Form]),
             Fail(404.1, values=NO_FORM)),
    Contract("GET",    F + "/versions/{version_ref:str}",
             Ok(200, Form, values={"version_ref": "1"}),
             Fail(404.1, values={"version_ref": "nosuch"})),
    Contract("GET",    F + "/versions/{version_ref:str}/fields",
             Ok(200, list[Field], values={"version_ref": "1"}),
             Fail(404.1, values={"version_ref": "nosuch"})),
    Contract("GET",    F + "/versions/{version_ref:str}/attachments",
             Ok(200, list[FormAttachment], values=FRUIT),
             Fail(404.1, values=FRUIT | {"version_ref": "nosuch"})),
    Contract("GET",    F + "/versions/{version_ref:str}/attachments/{name:str}",
             Ok(200, ("text/csv",), values=FRUIT),
             Fail(404.1, values=FRUIT | {"name": "logo.png"})),
    Contract("GET",    F + "/draft.xml",
             Ok(200, XML_TYPES, fresh=fresh_draft),
             Fail(404.1, values=NO_FORM)),
    Contract("GET",    F + "/draft.xlsx",
             Ok(200, (XLSX,), values=PETS_DRAFT),
             Fail(404.1, fresh=fresh_draft)),
    Contract("GET",    F + "/draft.xls",
             Ok(200, XLS_TYPES, values=PETS_DRAFT),
             Fail(404.1, fresh=fresh_draft)),
    Contract("GET",    F + "/fields",
             Ok(200, list[Field]),
             Fail(404.1, values=NO_FORM)),
    Contract("GET",    F + "/draft/fields",
             Ok(200, list[Field], fresh=fresh_draft),
             Fail(404.1, values=NO_FORM)),
    Contract("GET",    F + "/attachments",
             Ok(200, list[FormAttachment], values=FRUIT),
             Fail(404.1, values=NO_FORM)),
    Contract("GET",    F + "/attachments/{name:str}",
             Ok(200, ("text/csv",), values=FRUIT),
             Fail(404.1, values=FRUIT | {"name": "logo.png"})),
    Contract("POST",   F + "/draft",
             Ok(200, Success),
             Fail(400.1, body=lambda ctx: {"content": b"<h:html", "headers": XML})),
    Contract("GET",    F + "/draft",
             Ok(200, DraftForm, fresh=fresh_draft),
             Fail(404.1, values=NO_FORM)),
    Contract("DELETE", F + "/draft",
             Ok(200, Success, fresh=fresh_draft),
             Fail(404.1, values=NO_FORM)),
    Contract("GET",    F + "/draft/attachments",
             Ok(200, list[FormAttachment], values=FRUIT),
             Fail(404.1, values=NO_FORM)),
    Contract("GET",    F + "/draft/attachments/{name:str}",
             Ok(200, ("text/csv",), values=FRUIT),
             Fail(404.1, values=FRUIT | {"name": "logo.png"})),
    Contract("POST",   F + "/draft/attachments/{name:str}",
             Ok(200, FormAttachment, values=FRUIT, body=lambda ctx: {"content": CSV, "headers": {"Content-Type": "text/csv"}}),
             Fail(404.1, values=FRUIT | {"name": "other.csv"}, body=lambda ctx: {"content": CSV})),
    Contract("POST",   F + "/draft/publish",
             Ok(200, Success, fresh=fresh_draft, params={"version": "contract"}),
             Fail(409.6, fresh=fresh_draft)),
    Contract("GET",    F + "/assignments",
             Ok(200, list[Assignment]),
             Fail(403.1, caller="view")),
    Contract("GET",    F + "/assignments/{role:str}",
             Ok(200, list[Actor], values={"role": "app-user"}),
             Fail(404.1, values={"role": "no-such-role"})),
    Contract("POST",   F + "/assignments/{role:str}/{actor_id:int}",
             Ok(200, Success, fresh=fresh_user),
             Fail(404.1, values={"actor_id": "999999"})),
    Contract("DELETE", F + "/assignments/{role:str}/{actor_id:int}",
             Ok(200, Success, fresh=fresh_form_viewer),
             Fail(403.1, caller="view", fresh=fresh_form_viewer)),
    Contract("GET",    F + "/public-links",
             Ok(200, list[ExtendedPublicLink], headers=EXTENDED),
             Fail(403.1, caller="view")),
    Contract("POST",   F + "/public-links",
             Ok(200, PublicLink, body=json_body({"displayName": "Link", "once": True})),
             Fail(400.2, body=json_body({"once": True}))),
    Contract("GET",    F + "/public-links/{link_id:int}",
             Ok(200, PublicLink),
             Fail(404.1, values={"link_id": "999999"})),
    Contract("DELETE", F + "/public-links/{link_id:int}",
             Ok(200, Success, fresh=fresh_link),
             Fail(404.1, values={"link_id": "999999"})),
    # OpenRosa: Collect's form list, forms, manifests and media files (XML errors)
    Contract("GET",    P + "/formList",
             Ok(200, XML_TYPES, body=OPENROSA_ONLY),
             Fail(404.1, values={"project_id": "999999"}, headers=OPENROSA, xml=True)),
    Contract("GET",    F + "/manifest",
             Ok(200, XML_TYPES, values=FRUIT, body=OPENROSA_ONLY),
             Fail(404.1, values=NO_FORM, headers=OPENROSA, xml=True)),
    Contract("GET",    KEY + "/formList",
             Ok(200, XML_TYPES, caller="anon", body=OPENROSA_ONLY),
             Fail(403.1, caller="anon", values={"token": "A" * 64}, headers=OPENROSA, xml=True)),
    Contract("GET",    KEY + "/forms/{form_file:str}",
             Ok(200, XML_TYPES, caller="anon", body=OPENROSA_ONLY),
             Fail(404.1, caller="anon", values={"form_file": "nosuch.xml"}, headers=OPENROSA, xml=True)),
    Contract("GET",    KEY + "/forms/{xml_form_id:str}/manifest",
             Ok(200, XML_TYPES, caller="anon", values=FRUIT, body=OPENROSA_ONLY),
             Fail(404.1, caller="anon", values=NO_FORM, headers=OPENROSA, xml=True)),
    Contract("GET",    KEY + "/forms/{xml_form_id:str}/attachments/{name:str}",
             Ok(200, ("text/csv",), caller="anon", values=FRUIT, body=OPENROSA_ONLY),
             Fail(404.1, caller="anon", values=FRUIT | {"name": "logo.png"}, headers=OPENROSA, xml=True)),
    Contract("GET",    TEST + "/draft/formList",
             Ok(200, XML_TYPES, caller="anon", fresh=fruit_draft, body=OPENROSA_ONLY),
             Fail(404.4, caller="anon", values={**FRUIT, "draft_token": "not-a-token"}, headers=OPENROSA, xml=True)),
    Contract("GET",    TEST + "/draft.xml",
             Ok(200, XML_TYPES, caller="anon", fresh=fruit_draft, body=OPENROSA_ONLY),
             Fail(404.4, caller="anon", values={**FRUIT, "draft_token": "not-a-token"}, headers=OPENROSA, xml=True)),
    Contract("GET",    TEST + "/draft/manifest",
             Ok(200, XML_TYPES, caller="anon", fresh=fruit_draft, body=OPENROSA_ONLY),
             Fail(404.4, caller="anon", values={**FRUIT, "draft_token": "not-a-token"}, headers=OPENROSA, xml=True)),
    Contract("GET",    TEST + "/draft/attachments/{name:str}",
             Ok(200, ("text/csv",), caller="anon", fresh=fruit_draft, body=OPENROSA_ONLY),
             Fail(404.1, caller="anon", fresh=fruit_draft, values={"name": "logo.png"}, headers=OPENROSA, xml=True)),
]
# fmt: on


@pytest.fixture(scope="module")
async def ctx(module_world: World) -> Ctx:
    made = await build(module_world)
    client, admin, forms = made.client, made.admin, made.forms
    await ok(client.post(forms, content=media_form("1"), headers=admin | XML))
    await ok(
        client.post(
            f"{forms}/fruit/draft/attachments/fruits.csv",
            content=CSV,
            headers=admin | {"Content-Type": "text/csv"},
        )
    )
    await ok(client.post(f"{forms}/fruit/draft/publish", headers=admin))
    await ok(client.post(f"{forms}/fruit/draft", content=media_form("2"), headers=admin | XML))
    draft = await ok(client.get(f"{forms}/fruit/draft", headers=admin))
    made.values["fruit_draft_token"] = draft.json()["draftToken"]
    app_user = module_world.app_user_id
    await ok(client.post(f"{forms}/fruit/assignments/app-user/{app_user}", headers=admin))
    await ok(client.post(forms, content=PETS, headers=admin | {"Content-Type": XLSX}))
    return made


@pytest.mark.parametrize("contract", CONTRACTS, ids=ids(CONTRACTS))
async def test_success_matches_central(ctx: Ctx, contract: Contract) -> None:
    await check_success(ctx, contract)


@pytest.mark.parametrize("contract", CONTRACTS, ids=ids(CONTRACTS))
async def test_failure_matches_central(ctx: Ctx, contract: Contract) -> None:
    await check_failure(ctx, contract)
