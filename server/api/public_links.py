"""Public links of a form: list, create, read, revoke."""

from __future__ import annotations

from litestar import Router, delete, get, post
from litestar.params import FromPath, JSONBody

from server.api.common import ExtendedHeader, actor_out, actors_by_id, is_extended
from server.api.shapes import PublicLinkIn, PublicLinkOut, Success
from server.api.submissions import caller_and_form
from server.db.models import Actor, PublicLink
from server.requests import AnyRequest, runtime_of
from server.services import public_links

LINKS = "/projects/{project_id:int}/forms/{xml_form_id:str}/public-links"


def link_out(actor: Actor, link: PublicLink, token: str | None) -> PublicLinkOut:
    base = actor_out(actor)
    return PublicLinkOut(
        **{f: getattr(base, f) for f in base.__struct_fields__}, token=token, once=link.once
    )


@get(LINKS, operation_id="listPublicLinks")
async def list_links(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    extended: ExtendedHeader = None,
) -> list[PublicLinkOut]:
    rt = runtime_of(request)
    async with rt.read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "public_link.list")
        found = await public_links.links_of(db, form)
        shapes = [
            link_out(a, link, public_links.link_token(link, rt.settings.secret_key))
            for a, link in found
        ]
        if is_extended(extended):
            creators = await actors_by_id(db, (link.created_by for _, link in found))
            for (_, link), shape in zip(found, shapes, strict=True):
                shape.created_by = creators.get(link.created_by) if link.created_by else None
        return shapes


@post(LINKS, operation_id="createPublicLink", status_code=200)
async def create_link(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    data: JSONBody[PublicLinkIn],
) -> PublicLinkOut:
    rt = runtime_of(request)
    async with rt.transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "public_link.create"
        )
        actor, link, token = await public_links.create_link(
            db,
            form,
            display_name=data.display_name,
            once=data.once,
            secret_key=rt.settings.secret_key,
            by=principal,
        )
        return link_out(actor, link, token)


@get(f"{LINKS}/{{link_id:int}}", operation_id="getPublicLink")
async def get_link(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    link_id: FromPath[int],
) -> PublicLinkOut:
    rt = runtime_of(request)
    async with rt.read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "public_link.list")
        actor, link = await public_links.find_link(db, form, link_id)
        return link_out(actor, link, public_links.link_token(link, rt.settings.secret_key))


@delete(f"{LINKS}/{{link_id:int}}", operation_id="deletePublicLink", status_code=200)
async def delete_link(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    link_id: FromPath[int],
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "public_link.delete"
        )
        actor, link = await public_links.find_link(db, form, link_id)
        await public_links.delete_link(db, actor, link, principal)
    return Success()


router = Router(
    "/v1", route_handlers=[list_links, create_link, get_link, delete_link], tags=["public links"]
)
