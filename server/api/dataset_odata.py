"""OData for entity lists: /v1/projects/{id}/datasets/{name}.svc[/$metadata|/Entities].

One entity set, `Entities`: `__id`, `label`, the published properties (as
strings) and `__system` (creation, creator, updates, version, conflict).
Paging is keyset on the entity's id, with Central's `$skiptoken` in
`@odata.nextLink`, so rows arriving meanwhile neither repeat nor go missing;
`$orderby` (Central's fields, asc or desc) pages by offset instead.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Response, get
from litestar.params import FromPath, QueryParameter
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.common import check
from server.api.odata import (
    HEADERS,
    JSON,
    Count,
    Filter,
    OrderBy,
    Select,
    Skip,
    SkipToken,
    Top,
)
from server.api.shapes import iso
from server.auth import Principal
from server.db.models import Actor, Dataset, EntityRow
from server.requests import AnyRequest, parse_flag, require_principal, runtime_of
from server.services import datasets as dataset_service
from server.services import entity_lists
from server.services.entities import decode_data
from server.services.entity_filter import entity_filter, entity_order, entity_search
from server.services.personal import EntityView, audit_entity_read, entity_view
from server.services.projects import get_project

_encode = msgspec.json.Encoder().encode
EDM = "http://docs.oasis-open.org/odata/ns/edm"
EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
_PAGE = 250


async def _dataset(
    request: AnyRequest, db: AsyncSession, project_id: int, name: str
) -> tuple[Principal, Dataset]:
    principal = await require_principal(request, db)
    await get_project(db, project_id)
    check(principal, "entity.list", project_id=project_id)
    return principal, await dataset_service.find_dataset(db, project_id, name)


def _root(request: AnyRequest, name: str) -> str:
    path = request.url.path
    end = path.find(".svc") + len(".svc")
    return f"{request.base_url}".rstrip("/") + path[:end] if end > 3 else path


async def service_document(request: AnyRequest, project_id: int, name: str) -> Response[bytes]:
    async with runtime_of(request).read() as db:
        await _dataset(request, db, project_id, name)
    body = {
        "@odata.context": f"{_root(request, name)}/$metadata",
        "value": [{"name": "Entities", "kind": "EntitySet", "url": "Entities"}],
    }
    return Response(_encode(body), media_type=JSON, headers=HEADERS)


def _metadata(properties: list[str]) -> bytes:
    root = etree.Element(f"{{{EDMX}}}Edmx", Version="4.0", nsmap={"edmx": EDMX})
    services = etree.SubElement(root, f"{{{EDMX}}}DataServices")
    default_ns: Any = {None: EDM}
    system = etree.SubElement(
        services, f"{{{EDM}}}Schema", Namespace="org.opendatakit.entity", nsmap=default_ns
    )
    meta = etree.SubElement(system, f"{{{EDM}}}ComplexType", Name="metadata")
    for field, kind in (
        ("createdAt", "Edm.DateTimeOffset"),
        ("creatorId", "Edm.String"),
        ("creatorName", "Edm.String"),
        ("updates", "Edm.Int64"),
        ("updatedAt", "Edm.DateTimeOffset"),
        ("version", "Edm.Int64"),
        ("conflict", "Edm.String"),
    ):
        etree.SubElement(meta, f"{{{EDM}}}Property", Name=field, Type=kind)
    schema = etree.SubElement(
        services, f"{{{EDM}}}Schema", Namespace="org.opendatakit.user.entities"
    )
    entity = etree.SubElement(schema, f"{{{EDM}}}EntityType", Name="Entities")
    key = etree.SubElement(entity, f"{{{EDM}}}Key")
    etree.SubElement(key, f"{{{EDM}}}PropertyRef", Name="__id")
    etree.SubElement(entity, f"{{{EDM}}}Property", Name="__id", Type="Edm.String")
    etree.SubElement(entity, f"{{{EDM}}}Property", Name="label", Type="Edm.String")
    etree.SubElement(
        entity, f"{{{EDM}}}Property", Name="__system", Type="org.opendatakit.entity.metadata"
    )
    for name in properties:
        etree.SubElement(entity, f"{{{EDM}}}Property", Name=name, Type="Edm.String")
    container = etree.SubElement(
        schema, f"{{{EDM}}}EntityContainer", Name="org.opendatakit.user.entities"
    )
    etree.SubElement(
        container,
        f"{{{EDM}}}EntitySet",
        Name="Entities",
        EntityType="org.opendatakit.user.entities.Entities",
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _cursor(position: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _position(token: str | None) -> dict[str, int]:
    """A `$skiptoken` read back: `{"id": n}` (after entity n) or `{"o": n}` (an offset,
    for a feed in a chosen order, whose sort keys may change under it)."""
    if not token:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as error:
        raise _bad_token(token) from error
    if (
        not isinstance(value, dict)
        or len(value) != 1
        or not set(value) <= {"id", "o"}
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value.values()
        )
    ):
        raise _bad_token(token)
    return value


def _bad_token(token: str) -> problems.Problem:
    return problems.unexpected_value("$skiptoken", token, "it is not one this server gave.")


def _next_link(request: AnyRequest, name: str, position: dict[str, int], top: int | None) -> str:
    """The next page's URL: the same query ($filter, $search, $orderby, $select, $count),
    with the cursor, and what is left of `$top`."""
    kept = [
        (key, value)
        for key, value in request.query_params.items()
        if key not in ("$skip", "$skiptoken", "$top")
    ]
    if top is not None:
        kept.append(("$top", str(top)))
    kept.append(("$skiptoken", _cursor(position)))
    return f"{_root(request, name)}/Entities?{urlencode(kept, safe='$/,')}"


def _number(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise problems.unexpected_value(name, value, "use a whole number, 0 or more.")
    return int(value)


@get(
    "/projects/{project_id:int}/datasets/{dataset_ref:str}/{rest:path}",
    operation_id="getDatasetODataResource",
)
async def dataset_odata(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_ref: FromPath[str],
    rest: FromPath[str],
    top: Top = None,
    skip: Skip = None,
    count: Count = None,
    filter_: Filter = None,
    select_: Select = None,
    skiptoken: SkipToken = None,
    search: Annotated[str | None, QueryParameter(name="$search")] = None,
    orderby: OrderBy = None,
) -> Response[bytes]:
    if not dataset_ref.endswith(".svc"):
        raise problems.not_found()
    name = dataset_ref.removesuffix(".svc")
    resource = rest.strip("/")
    rt = runtime_of(request)
    async with rt.read() as db:
        principal, dataset = await _dataset(request, db, project_id, name)
        properties = await entity_lists.published_properties(db, dataset.id)
        if resource == "$metadata":
            return Response(_metadata(properties), media_type="application/xml", headers=HEADERS)
        if resource != "Entities":
            raise problems.not_found()
        view = await entity_view(db, principal, dataset)
        view.check_query(filter_, search)
        narrowed = [c for c in (entity_filter(filter_), entity_search(search)) if c is not None]
        order = entity_order(orderby)
        limit = _number("$top", top)
        offset = _number("$skip", skip) or 0
        position = _position(skiptoken)
        if skiptoken:
            offset = position.get("o", 0)
        after = position.get("id", 0)
        live = (EntityRow.dataset_id == dataset.id, EntityRow.deleted_at.is_(None), *narrowed)
        page = min(limit, _PAGE) if limit is not None else _PAGE
        rows = (
            await db.execute(
                select(EntityRow, Actor.display_name)
                .outerjoin(Actor, Actor.id == EntityRow.creator_id)
                .where(*live, EntityRow.id > after)
                .order_by(*(order or [EntityRow.id]))
                .offset(offset)
                .limit(page + 1)
            )
        ).all()
        total = (
            await db.scalar(select(func.count()).select_from(EntityRow).where(*live))
            if parse_flag(count)
            else None
        )
    more = len(rows) > page and (limit is None or limit > page)
    rows = rows[:page]
    chosen = {s.strip() for s in select_.split(",")} if select_ else None
    values = [_row(entity, creator, properties, chosen, view) for entity, creator in rows]
    if view.reads_clear:
        await audit_entity_read(rt, principal, dataset, "odata")
    body: dict[str, Any] = {
        "@odata.context": f"{_root(request, name)}/$metadata#Entities",
        "value": values,
    }
    if total is not None:
        body["@odata.count"] = total
    if more and rows:
        # In id order the cursor is the last id (rows arriving meanwhile neither
        # repeat nor go missing); in a chosen order it is the offset reached.
        following = {"o": offset + len(rows)} if order else {"id": rows[-1][0].id}
        remaining = None if limit is None else limit - len(rows)
        body["@odata.nextLink"] = _next_link(request, name, following, remaining)
    return Response(_encode(body), media_type=JSON, headers=HEADERS)


def _row(
    entity: EntityRow,
    creator: str | None,
    properties: list[str],
    chosen: set[str] | None,
    view: EntityView,
) -> dict[str, Any]:
    data = view.data(decode_data(entity.data))
    row: dict[str, Any] = {"__id": entity.uuid, "label": entity.label}
    row.update({p: data.get(p) for p in properties})
    row["__system"] = {
        "createdAt": iso(entity.created_at),
        "creatorId": str(entity.creator_id) if entity.creator_id is not None else None,
        "creatorName": creator,
        "updates": entity.version - 1,
        "updatedAt": iso(entity.updated_at),
        "version": entity.version,
        "conflict": entity.conflict,
    }
    if chosen is not None:
        row = {k: v for k, v in row.items() if k in chosen}
    return row
