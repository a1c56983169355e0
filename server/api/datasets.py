"""Central's entity-list API: /v1/projects/{id}/datasets[/{name}[/entities[/{uuid}]]].

App users and data collectors read a list (its CSV) only through a form that
links it; everything here asks for the dataset.* and entity.* verbs of
project roles.
"""

from __future__ import annotations

import json
import uuid as uuid_module
from itertools import pairwise
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.common import ExtendedHeader, actor_out, actors_by_id, check, is_extended
from server.api.dataset_odata import dataset_odata, service_document
from server.api.shapes import ActorOut, ApiInput, ApiModel, AuditOut, Success, iso
from server.auth import Principal
from server.db.models import Actor, Audit, Dataset, EntityDef, EntityRow, FormDef
from server.requests import AnyRequest, parse_flag, require_principal, runtime_of
from server.services import datasets as dataset_service
from server.services import entity_export, entity_lists
from server.services.entities import (
    Author,
    Change,
    check_properties,
    check_uuid,
    create_entity,
    decode_conflicting,
    decode_data,
    find_entity,
    resolve_conflict,
    set_deleted,
    update_entity,
)
from server.services.entity_filter import entity_filter, entity_search
from server.services.entity_versions import VersionFacts, conflict_facts
from server.services.forms import find_form, schema_of
from server.services.personal import EntityView, audit_entity_read, entity_view
from server.services.projects import get_project


class FormRefOut(ApiModel):
    xml_form_id: str
    name: str


class PropertyOut(ApiModel):
    name: str
    published_at: str | None
    odata_name: str
    forms: list[FormRefOut]


class DatasetOut(ApiModel):
    name: str
    project_id: int
    created_at: str
    approval_required: bool
    owner_only: bool
    entities: int | msgspec.UnsetType = msgspec.UNSET
    conflicts: int | msgspec.UnsetType = msgspec.UNSET
    last_entity: str | msgspec.UnsetType | None = msgspec.UNSET
    source_forms: list[FormRefOut] | msgspec.UnsetType = msgspec.UNSET
    linked_forms: list[FormRefOut] | msgspec.UnsetType = msgspec.UNSET
    properties: list[PropertyOut] | msgspec.UnsetType = msgspec.UNSET


class DatasetIn(ApiInput):
    name: str
    approval_required: bool = False


class DatasetPatch(ApiInput):
    approval_required: bool | None = None
    owner_only: bool | None = None


class PropertyIn(ApiInput):
    name: str


class VersionOut(ApiModel):
    label: str
    current: bool
    created_at: str
    creator_id: int | None
    user_agent: str | None
    version: int
    base_version: int | None
    conflicting_properties: list[str] | None
    data: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


class EntityOut(ApiModel):
    uuid: str
    creator_id: int | None
    created_at: str
    updated_at: str | None
    deleted_at: str | None
    conflict: str | None
    current_version: VersionOut


class EntityIn(ApiInput):
    label: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    uuid: str | None = None


class SourceIn(ApiInput):
    name: str
    size: float | str | None = None


class BulkIn(ApiInput):
    entities: list[EntityIn]
    source: SourceIn


def _dataset_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut(
        name=dataset.name,
        project_id=dataset.project_id,
        created_at=iso(dataset.created_at) or "",
        approval_required=dataset.approval_required,
        owner_only=dataset.owner_only,
    )


async def _caller(request: AnyRequest, db: AsyncSession, project_id: int, verb: str) -> Principal:
    principal = await require_principal(request, db)
    await get_project(db, project_id)
    check(principal, verb, project_id=project_id)
    return principal


@get("/projects/{project_id:int}/datasets", operation_id="listDatasets")
async def list_datasets(request: AnyRequest, project_id: FromPath[int]) -> list[DatasetOut]:
    async with runtime_of(request).read() as db:
        await _caller(request, db, project_id, "dataset.list")
        found = await dataset_service.list_datasets(db, project_id)
        counts = await dataset_service.entity_counts(db, [d.id for d in found])
        shapes = []
        for dataset in found:
            shape = _dataset_out(dataset)
            count, last, conflicts = counts.get(dataset.id, (0, None, 0))
            shape.entities = count
            shape.conflicts = conflicts
            shape.last_entity = iso(last) if last is not None else None  # type: ignore[arg-type]
            shapes.append(shape)
        return shapes


@post("/projects/{project_id:int}/datasets", operation_id="createDataset", status_code=200)
async def create_dataset(
    request: AnyRequest, project_id: FromPath[int], data: JSONBody[DatasetIn]
) -> DatasetOut:
    async with runtime_of(request).transaction() as db:
        principal = await _caller(request, db, project_id, "dataset.create")
        dataset = await dataset_service.create_dataset(
            db, project_id, data.name, approval_required=data.approval_required, by=principal
        )
        shape = _dataset_out(dataset)
        shape.properties = []
        return shape


async def _full_out(db: AsyncSession, dataset: Dataset) -> DatasetOut:
    shape = _dataset_out(dataset)
    shape.source_forms = [
        FormRefOut(i, n) for i, n in await dataset_service.source_forms(db, dataset.id)
    ]
    shape.linked_forms = [
        FormRefOut(i, n) for i, n in await dataset_service.linked_forms(db, dataset.id)
    ]
    by_property = await dataset_service.property_forms(db, dataset.id)
    titles = dict((i, n) for i, n in await dataset_service.source_forms(db, dataset.id))
    shape.properties = [
        PropertyOut(
            name=p.name,
            published_at=iso(p.published_at),
            odata_name=p.name.replace("-", "_").replace(".", "_"),
            forms=[FormRefOut(f, titles.get(f, f)) for f in by_property.get(p.name, [])],
        )
        for p in await dataset_service.properties_of(db, dataset.id)
        if p.published_at is not None
    ]
    return shape


@get("/projects/{project_id:int}/datasets/{dataset_name:str}", operation_id="getDataset")
async def get_dataset(
    request: AnyRequest, project_id: FromPath[int], dataset_name: FromPath[str]
) -> Any:
    if dataset_name.endswith(".svc"):
        return await service_document(request, project_id, dataset_name.removesuffix(".svc"))
    async with runtime_of(request).read() as db:
        await _caller(request, db, project_id, "dataset.read")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        return await _full_out(db, dataset)


@patch("/projects/{project_id:int}/datasets/{dataset_name:str}", operation_id="updateDataset")
async def update_dataset(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    data: JSONBody[DatasetPatch],
    convert: FromQuery[str | None] = None,
) -> DatasetOut:
    """`approvalRequired`, `ownerOnly`; turning approval off while submissions wait
    for it needs `?convert=true` (make their entities now) or `?convert=false`."""
    converting = None if convert is None else parse_flag(convert, name="convert")
    async with runtime_of(request).transaction() as db:
        principal = await _caller(request, db, project_id, "dataset.update")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        await dataset_service.update_dataset(
            db,
            dataset,
            approval_required=data.approval_required,
            owner_only=data.owner_only,
            by=principal,
            convert=converting,
        )
        return await _full_out(db, dataset)


@post(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/properties",
    operation_id="addDatasetProperty",
    status_code=200,
)
async def add_property(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    data: JSONBody[PropertyIn],
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal = await _caller(request, db, project_id, "dataset.update")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        await dataset_service.add_property(db, dataset, data.name, principal)
    return Success()


@delete(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/properties/{property_name:str}",
    operation_id="deleteDatasetProperty",
    status_code=200,
)
async def delete_property(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    property_name: FromPath[str],
) -> Success:
    """409.22 while a form saves to it or an entity holds a value for it."""
    async with runtime_of(request).transaction() as db:
        principal = await _caller(request, db, project_id, "dataset.update")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        await dataset_service.delete_property(db, dataset, property_name, principal)
    return Success()


def _version_out(row: EntityDef, *, with_data: bool, view: EntityView | None = None) -> VersionOut:
    shape = VersionOut(
        label=row.label,
        current=row.current,
        created_at=iso(row.created_at) or "",
        creator_id=row.creator_id,
        user_agent=row.user_agent,
        version=row.version,
        base_version=row.base_version,
        conflicting_properties=decode_conflicting(row.conflicting_properties),
    )
    if with_data:
        data = decode_data(row.data)
        shape.data = view.data(data) if view is not None else data
    return shape


def _entity_out(
    entity: EntityRow, current: EntityDef, *, with_data: bool, view: EntityView | None = None
) -> EntityOut:
    return EntityOut(
        uuid=entity.uuid,
        creator_id=entity.creator_id,
        created_at=iso(entity.created_at) or "",
        updated_at=iso(entity.updated_at),
        deleted_at=iso(entity.deleted_at),
        conflict=entity.conflict,
        current_version=_version_out(current, with_data=with_data, view=view),
    )


async def _one_out(
    db: AsyncSession, dataset_id: int, uuid: str, view: EntityView | None = None
) -> EntityOut:
    row = (
        await db.execute(
            select(EntityRow, EntityDef)
            .join(EntityDef, EntityDef.id == EntityRow.current_def_id)
            .where(EntityRow.dataset_id == dataset_id, EntityRow.uuid == uuid)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        raise problems.not_found()
    return _entity_out(row[0], row[1], with_data=True, view=view)


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities",
    operation_id="listEntities",
)
async def list_entities(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    deleted: FromQuery[str | None] = None,
) -> list[EntityOut]:
    async with runtime_of(request).read() as db:
        await _caller(request, db, project_id, "entity.list")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        gone = parse_flag(deleted)
        rows = await db.execute(
            select(EntityRow, EntityDef)
            .join(EntityDef, EntityDef.id == EntityRow.current_def_id)
            .where(
                EntityRow.dataset_id == dataset.id,
                EntityRow.deleted_at.is_not(None) if gone else EntityRow.deleted_at.is_(None),
            )
            .order_by(EntityRow.id)
        )
        return [_entity_out(e, d, with_data=False) for e, d in rows]


def _string_data(data: dict[str, Any]) -> dict[str, str]:
    result = {}
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            raise problems.Problem(
                400.11,
                f"Invalid input data type: expected ({key}) to be (string), got {value!r}.",
            )
        result[key] = value or ""
    return result


def _author(
    principal: Principal, request: AnyRequest, source: dict[str, Any] | None = None
) -> Author:
    return Author(principal.actor_id, request.headers.get("user-agent"), source=source)


@post(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities",
    operation_id="createEntities",
    status_code=200,
)
async def create_entities(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    data: JSONBody[dict[str, Any]],
) -> Any:
    """One entity (`{uuid?, label, data}`), or many (`{entities: [...], source: {...}}`)."""
    bulk = "entities" in data
    try:
        parsed: BulkIn | EntityIn = (
            msgspec.convert(data, BulkIn) if bulk else msgspec.convert(data, EntityIn)
        )
    except msgspec.ValidationError as error:
        raise problems.unparseable("an entity", str(error)) from error
    items = parsed.entities if isinstance(parsed, BulkIn) else [parsed]
    source = (
        {"name": parsed.source.name, "size": parsed.source.size}
        if isinstance(parsed, BulkIn)
        else None
    )
    if bulk and not items:
        raise problems.missing_parameter("entities")
    async with runtime_of(request).transaction() as db:
        principal = await _caller(request, db, project_id, "entity.create")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        author = _author(principal, request, source)
        prepared = []
        for item in items:
            if not item.label:
                raise problems.missing_parameter("label")
            entity_uuid = check_uuid(item.uuid) if item.uuid else str(uuid_module.uuid4())
            prepared.append((entity_uuid, item.label, _string_data(item.data)))

        def work(connection: Any) -> None:
            for entity_uuid, label, values in prepared:
                _create(connection, dataset, entity_uuid, label, values, author)

        await db.run_sync(lambda s: work(s.connection()))
        if bulk:
            return Success()
        return await _one_out(db, dataset.id, prepared[0][0])


def _create(
    connection: Any,
    dataset: Dataset,
    entity_uuid: str,
    label: str,
    data: dict[str, str],
    author: Author,
) -> None:
    check_properties(connection, dataset.id, data)
    create_entity(
        connection, dataset, entity_uuid=entity_uuid, label=label, data=data, author=author
    )


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/{entity_uuid:str}",
    operation_id="getEntity",
)
async def get_entity(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    entity_uuid: FromPath[str],
) -> EntityOut:
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await _caller(request, db, project_id, "entity.read")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        view = await entity_view(db, principal, dataset)
        shape = await _one_out(db, dataset.id, entity_uuid, view)
        if shape.deleted_at is not None:
            raise problems.not_found()
    if view.reads_clear:
        await audit_entity_read(rt, principal, dataset, "entity")
    return shape


@patch(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/{entity_uuid:str}",
    operation_id="updateEntity",
)
async def patch_entity(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    entity_uuid: FromPath[str],
    data: JSONBody[dict[str, Any]],
    base_version: Annotated[str | None, QueryParameter(name="baseVersion")] = None,
    force: FromQuery[str | None] = None,
    resolve: FromQuery[str | None] = None,
) -> EntityOut:
    """`?baseVersion=N` (409.15 when stale), `?force=true`, or `?resolve=true` (conflicts)."""
    try:
        parsed = msgspec.convert(data, EntityIn)
    except msgspec.ValidationError as error:
        raise problems.unparseable("an entity", str(error)) from error
    forced, resolving = parse_flag(force), parse_flag(resolve)
    base: int | None = None
    if base_version is not None:
        if not base_version.isascii() or not base_version.isdigit():
            raise problems.unexpected_value("baseVersion", base_version, "it is a version number.")
        base = int(base_version)
    async with runtime_of(request).transaction() as db:
        principal = await _caller(request, db, project_id, "entity.update")
        if base is None and not forced and not resolving:
            raise problems.missing_parameter("baseVersion")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        values = _string_data(parsed.data)
        author = _author(principal, request)

        def work(connection: Any) -> None:
            entity = find_entity(connection, dataset.id, entity_uuid)
            if entity is None:
                raise problems.not_found()
            if base is not None and not forced and base != entity.version and not resolving:
                raise problems.Problem(
                    409.15,
                    f"Base version ({base}) does not match the current version "
                    f"({entity.version}) of the entity; update with the current version or "
                    "force the update.",
                )
            if resolving and not values and parsed.label is None:
                resolve_conflict(connection, dataset, entity, author)
                return
            check_properties(connection, dataset.id, values)
            update_entity(
                connection,
                dataset,
                entity,
                Change(label=parsed.label, data=values, resolve=resolving),
                author,
            )

        await db.run_sync(lambda s: work(s.connection()))
        return await _one_out(db, dataset.id, entity_uuid)


@delete(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/{entity_uuid:str}",
    operation_id="deleteEntity",
    status_code=200,
)
async def delete_entity(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    entity_uuid: FromPath[str],
) -> Success:
    await _set_deleted(request, project_id, dataset_name, entity_uuid, deleted=True)
    return Success()


@post(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/{entity_uuid:str}/restore",
    operation_id="restoreEntity",
    status_code=200,
)
async def restore_entity(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    entity_uuid: FromPath[str],
) -> EntityOut:
    async with runtime_of(request).transaction() as db:
        dataset = await _set_deleted_in(
            db, request, project_id, dataset_name, entity_uuid, deleted=False
        )
        return await _one_out(db, dataset.id, entity_uuid)


async def _set_deleted(
    request: AnyRequest, project_id: int, name: str, uuid: str, *, deleted: bool
) -> None:
    async with runtime_of(request).transaction() as db:
        await _set_deleted_in(db, request, project_id, name, uuid, deleted=deleted)


async def _set_deleted_in(
    db: AsyncSession, request: AnyRequest, project_id: int, name: str, uuid: str, *, deleted: bool
) -> Dataset:
    principal = await _caller(
        request, db, project_id, "entity.delete" if deleted else "entity.restore"
    )
    dataset = await dataset_service.find_dataset(db, project_id, name)
    author = _author(principal, request)

    def work(connection: Any) -> None:
        entity = find_entity(connection, dataset.id, uuid, deleted=not deleted)
        if entity is None:
            raise problems.not_found()
        set_deleted(connection, dataset, entity, deleted=deleted, author=author)

    await db.run_sync(lambda s: work(s.connection()))
    return dataset


class VersionFullOut(ApiModel):
    """A version as the versions listing shows it: with what it sent and its conflict."""

    label: str
    current: bool
    created_at: str
    creator_id: int | None
    user_agent: str | None
    version: int
    base_version: int | None
    branch_id: str | None
    trunk_version: int | None
    branch_base_version: int | None
    conflict: str | None
    resolved: bool
    last_good_version: bool
    relevant_to_conflict: bool
    conflicting_properties: list[str] | None
    base_diff: list[str]
    server_diff: list[str]
    data: dict[str, str]
    data_received: dict[str, str]
    creator: ActorOut | msgspec.UnsetType | None = msgspec.UNSET


def _creator(
    creators: dict[int, ActorOut] | None, actor_id: int | None
) -> ActorOut | msgspec.UnsetType | None:
    if creators is None:
        return msgspec.UNSET
    return creators.get(actor_id) if actor_id is not None else None


def _received(row: EntityDef) -> dict[str, str]:
    sent = decode_data(row.data_received)
    # The first version sent its label; an update sent one only if it changed it.
    return sent | {"label": row.label} if row.version == 1 else sent


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/{entity_uuid:str}/versions",
    operation_id="listEntityVersions",
)
async def entity_versions(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    entity_uuid: FromPath[str],
    relevant_to_conflict: Annotated[str | None, QueryParameter(name="relevantToConflict")] = None,
    extended: ExtendedHeader = None,
) -> list[VersionFullOut]:
    """Every version, oldest first, with its conflict facts; `?relevantToConflict=true`:
    only the versions that matter for resolving the entity's current conflict;
    `X-Extended-Metadata: true` adds each version's `creator`."""
    only_relevant = parse_flag(relevant_to_conflict, name="relevantToConflict")
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await _caller(request, db, project_id, "entity.read")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        view = await entity_view(db, principal, dataset)
        rows = await _versions(db, dataset.id, entity_uuid)
        resolved_at = (
            await db.scalars(
                select(Audit.logged_at).where(
                    Audit.action == "entity.update.resolve",
                    Audit.target_kind == "entity",
                    Audit.target_id == rows[0].entity_id,
                )
            )
        ).all()
        creators = (
            await actors_by_id(db, (r.creator_id for r in rows)) if is_extended(extended) else None
        )
    if view.reads_clear:
        await audit_entity_read(rt, principal, dataset, "versions")
    facts = conflict_facts(
        [
            VersionFacts(
                version=r.version,
                label=r.label,
                data=decode_data(r.data),
                received=_received(r),
                base_version=r.base_version,
                trunk_version=r.trunk_version,
                branch_id=r.branch_id,
                conflicting_properties=decode_conflicting(r.conflicting_properties),
                created_at=r.created_at,
            )
            for r in rows
        ],
        resolved_at,
    )
    return [
        VersionFullOut(
            label=r.label,
            current=r.current,
            created_at=iso(r.created_at) or "",
            creator_id=r.creator_id,
            user_agent=r.user_agent,
            version=r.version,
            base_version=r.base_version,
            branch_id=r.branch_id,
            trunk_version=r.trunk_version,
            branch_base_version=r.branch_base_version,
            conflict=f.conflict,
            resolved=f.resolved,
            last_good_version=f.last_good_version,
            relevant_to_conflict=f.relevant_to_conflict,
            conflicting_properties=decode_conflicting(r.conflicting_properties),
            base_diff=f.base_diff,
            server_diff=f.server_diff,
            data=view.data(decode_data(r.data)),
            data_received=view.data(_received(r)),
            creator=_creator(creators, r.creator_id),
        )
        for r, f in zip(rows, facts, strict=True)
        if f.relevant_to_conflict or not only_relevant
    ]


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities.csv",
    operation_id="downloadEntities",
)
async def entities_csv(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    filter_: Annotated[str | None, QueryParameter(name="$filter")] = None,
    search: Annotated[str | None, QueryParameter(name="$search")] = None,
) -> Response[Any]:
    """The whole list as CSV with Central's columns (`__id,label,<properties>,__createdAt,
    __creatorId,__creatorName,__updates,__updatedAt,__version`), newest first, narrowed
    by `$filter` and `$search`. Unnarrowed, it carries an ETag and answers 304."""
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await _caller(request, db, project_id, "entity.list")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        view = await entity_view(db, principal, dataset)
        view.check_query(filter_, search)
        where = [c for c in (entity_filter(filter_), entity_search(search)) if c is not None]
        properties = await entity_lists.published_properties(db, dataset.id)
        etag = None
        if not where:
            fingerprint = await entity_export.export_etag(
                db, dataset.id, properties, masked=view.masked
            )
            etag = f'"{fingerprint}"'
    headers = {"Content-Disposition": f'attachment; filename="{dataset_name}.csv"'}
    if etag is not None:
        headers["ETag"] = etag
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
    if view.reads_clear:
        await audit_entity_read(rt, principal, dataset, "entities.csv")
    masked = (view.personal, view.key) if view.masked else None
    body = entity_export.stream_export(rt, dataset.id, properties, where, masked)
    return Stream(body, media_type="text/csv; charset=utf-8", headers=headers)


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/creators",
    operation_id="listEntityCreators",
)
async def entity_creators(
    request: AnyRequest, project_id: FromPath[int], dataset_name: FromPath[str]
) -> list[ActorOut]:
    """Everyone who created a live entity of the list, by display name."""
    async with runtime_of(request).read() as db:
        await _caller(request, db, project_id, "entity.list")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        creators = select(EntityRow.creator_id).where(
            EntityRow.dataset_id == dataset.id, EntityRow.deleted_at.is_(None)
        )
        actors = (
            await db.scalars(
                select(Actor).where(Actor.id.in_(creators)).order_by(Actor.display_name, Actor.id)
            )
        ).all()
    return [actor_out(actor) for actor in actors]


class BulkIdsIn(ApiInput):
    ids: list[str]


class BulkCountOut(ApiModel):
    success: bool
    count: int


async def _set_many_deleted(
    request: AnyRequest, project_id: int, name: str, ids: list[str], *, deleted: bool
) -> BulkCountOut:
    async with runtime_of(request).transaction() as db:
        principal = await _caller(
            request, db, project_id, "entity.delete" if deleted else "entity.restore"
        )
        dataset = await dataset_service.find_dataset(db, project_id, name)
        author = _author(principal, request)

        def work(connection: Any) -> int:
            changed = 0
            for uuid in dict.fromkeys(ids):
                entity = find_entity(connection, dataset.id, uuid, deleted=not deleted)
                if entity is not None:
                    set_deleted(connection, dataset, entity, deleted=deleted, author=author)
                    changed += 1
            return changed

        count = await db.run_sync(lambda s: work(s.connection()))
    return BulkCountOut(success=True, count=count)


@post(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/bulk-delete",
    operation_id="deleteEntities",
    status_code=200,
)
async def bulk_delete(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    data: JSONBody[BulkIdsIn],
) -> BulkCountOut:
    """Delete the live entities among `ids` (others are left out of `count`)."""
    return await _set_many_deleted(request, project_id, dataset_name, data.ids, deleted=True)


@post(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/bulk-restore",
    operation_id="restoreEntities",
    status_code=200,
)
async def bulk_restore(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    data: JSONBody[BulkIdsIn],
) -> BulkCountOut:
    """Restore the deleted entities among `ids` (others are left out of `count`)."""
    return await _set_many_deleted(request, project_id, dataset_name, data.ids, deleted=False)


class ChangeOut(ApiModel):
    old: str | None
    new: str | None
    property_name: str


async def _versions(db: AsyncSession, dataset_id: int, entity_uuid: str) -> list[EntityDef]:
    rows = (
        await db.scalars(
            select(EntityDef)
            .join(EntityRow, EntityRow.id == EntityDef.entity_id)
            .where(EntityRow.dataset_id == dataset_id, EntityRow.uuid == entity_uuid)
            .order_by(EntityDef.version)
        )
    ).all()
    if not rows:
        raise problems.not_found()
    return list(rows)


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/{entity_uuid:str}/diffs",
    operation_id="getEntityVersionsDiff",
)
async def entity_diffs(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    entity_uuid: FromPath[str],
) -> list[list[ChangeOut]]:
    """Per version after the first, what it changed (`label` and properties)."""
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await _caller(request, db, project_id, "entity.read")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        view = await entity_view(db, principal, dataset)
        versions = await _versions(db, dataset.id, entity_uuid)
    if view.reads_clear:
        await audit_entity_read(rt, principal, dataset, "diffs")
    result = []
    for before, after in pairwise(versions):
        old = decode_data(before.data) | {"label": before.label}
        new = decode_data(after.data) | {"label": after.label}
        result.append(
            [
                ChangeOut(view.value(key, old.get(key)), view.value(key, new.get(key)), key)
                for key in sorted(set(old) | set(new))
                if old.get(key) != new.get(key)
            ]
        )
    return result


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/entities/{entity_uuid:str}/audits",
    operation_id="getEntityAudits",
)
async def entity_audits(
    request: AnyRequest,
    project_id: FromPath[int],
    dataset_name: FromPath[str],
    entity_uuid: FromPath[str],
) -> list[AuditOut]:
    """What happened to the entity, newest first (Central's entity audit log)."""
    async with runtime_of(request).read() as db:
        await _caller(request, db, project_id, "entity.read")
        dataset = await dataset_service.find_dataset(db, project_id, dataset_name)
        entity_id = await db.scalar(
            select(EntityRow.id).where(
                EntityRow.dataset_id == dataset.id, EntityRow.uuid == entity_uuid
            )
        )
        if entity_id is None:
            raise problems.not_found()
        rows = (
            await db.scalars(
                select(Audit)
                .where(Audit.target_kind == "entity", Audit.target_id == entity_id)
                .order_by(Audit.id.desc())
            )
        ).all()
    return [
        AuditOut(
            actor_id=row.actor_id,
            action=row.action,
            actee_id=entity_uuid,
            details=json.loads(row.details) if row.details else None,
            logged_at=iso(row.logged_at) or "",
        )
        for row in rows
    ]


class PropertyDiffOut(ApiModel):
    name: str
    in_form: bool
    is_new: bool | msgspec.UnsetType = msgspec.UNSET


class DatasetDiffOut(ApiModel):
    name: str
    properties: list[PropertyDiffOut]
    is_new: bool | msgspec.UnsetType = msgspec.UNSET


async def _diff(
    request: AnyRequest, project_id: int, xml_form_id: str, *, draft: bool
) -> list[DatasetDiffOut]:
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        form = await find_form(db, project_id, xml_form_id)
        check(principal, "form.read", project_id=project_id, form_id=form.id)
        def_id = form.draft_def_id if draft else form.current_def_id
        form_def = await db.get(FormDef, def_id) if def_id else None
        if form_def is None:
            raise problems.not_found()
        found = await dataset_service.dataset_diff(db, project_id, form_def, schema_of(form_def))
    if draft:
        return [
            DatasetDiffOut(
                d.name,
                [PropertyDiffOut(p.name, p.in_form, p.is_new) for p in d.properties],
                d.is_new,
            )
            for d in found
        ]
    return [
        DatasetDiffOut(
            d.name, [PropertyDiffOut(p.name, p.in_form) for p in d.properties if not p.is_new]
        )
        for d in found
    ]


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/dataset-diff",
    operation_id="publishedFormRelatedDatasets",
)
async def form_dataset_diff(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[DatasetDiffOut]:
    """The list the published form fills: every published property, `inForm` when it saves to it."""
    return await _diff(request, project_id, xml_form_id, draft=False)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/dataset-diff",
    operation_id="draftFormDatasetDiff",
)
async def draft_dataset_diff(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[DatasetDiffOut]:
    """What publishing the draft would add (`isNew` on the list and on each property)."""
    return await _diff(request, project_id, xml_form_id, draft=True)


router = Router(
    "/v1",
    route_handlers=[
        list_datasets,
        create_dataset,
        get_dataset,
        update_dataset,
        add_property,
        delete_property,
        list_entities,
        create_entities,
        get_entity,
        patch_entity,
        delete_entity,
        restore_entity,
        entity_versions,
        entity_diffs,
        entity_audits,
        entities_csv,
        entity_creators,
        bulk_delete,
        bulk_restore,
        dataset_odata,
        form_dataset_diff,
        draft_dataset_diff,
    ],
)
