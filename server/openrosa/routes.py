"""OpenRosa endpoints, mounted three times: under an app-user key, under plain /v1
(web users signing in from Collect), and under a draft's test token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from litestar import Response, Router, get, head, post
from litestar.params import FromPath
from litestar.response import Redirect, Stream
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.auth import Grant, Principal, constant_time_equal, derive_draft_token
from server.db.models import Blob, Dataset, Form, FormAttachment, FormDef, Project
from server.downloads import safe_media_type, shown_inline
from server.encoded_paths import path_segment
from server.errors import openrosa_headers
from server.openrosa.multipart import read_submission, spool_directory
from server.openrosa.render import (
    FormListEntry,
    MediaEntry,
    render_form_list,
    render_integrity,
    render_manifest,
    render_response,
)
from server.requests import ANONYMOUS_BODY, AnyRequest, authenticate, from_web_app, runtime_of
from server.security_headers import SANDBOX_POLICY
from server.services import accounts, datasets, entity_lists
from server.services.forms import attachments_of, form_defs
from server.services.personal import entity_view, record_entity_read
from server.services.submissions import Incoming, receive_submission

XML = "text/xml"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, and the URL prefix their links must keep."""

    principal: Principal | None
    base_url: str
    draft_form: Form | None = None


def _base_url(request: AnyRequest) -> str:
    public = runtime_of(request).settings.public_url.rstrip("/")
    origin = public or str(request.base_url).rstrip("/")
    return origin + request.url.path.split("/projects/")[0]


def device_id(request: AnyRequest) -> str | None:
    return request.query_params.get("deviceID")


async def resolve_caller(request: AnyRequest, db: AsyncSession, project_id: int) -> Caller:
    params = request.path_params
    if "token" in params:
        found = await accounts.principal_for_app_user_token(db, params["token"])
        return _app_user_caller(request, found, project_id)
    if "draft_token" in params:
        form = await db.scalar(
            select(Form).where(
                Form.project_id == project_id,
                Form.xml_form_id == params["xml_form_id"],
                Form.deleted_at.is_(None),
            )
        )
        if (
            form is None
            or form.draft_def_id is None
            or not form.draft_token
            or not constant_time_equal(
                derive_draft_token(runtime_of(request).settings.secret_key, form.draft_token),
                params["draft_token"],
            )
        ):
            raise problems.draft_gone()
        return Caller(None, _base_url(request), draft_form=form)
    signed_in = await authenticate(request, db)
    if signed_in is None:
        raise problems.authentication_required()
    return Caller(signed_in, _base_url(request))


def _app_user_caller(
    request: AnyRequest, found: tuple[Principal, int] | None, project_id: int
) -> Caller:
    if found is None:
        raise problems.Problem(
            403.1,
            "This app user's access was revoked or the QR code is wrong. "
            "Ask your supervisor for a new QR code.",
        )
    principal, key_project = found
    if key_project != project_id:
        raise problems.insufficient_rights()
    return Caller(principal, _base_url(request))


def openrosa(
    body: bytes, *, status: int = 200, extra: dict[str, str] | None = None
) -> Response[bytes]:
    headers = openrosa_headers() | {"Cache-Control": "no-cache"} | (extra or {})
    return Response(body, status_code=status, media_type=XML, headers=headers)


async def _visible_forms(
    db: AsyncSession, caller: Caller, project_id: int
) -> list[tuple[Form, FormDef]]:
    if caller.draft_form is not None:
        draft = await db.get(FormDef, caller.draft_form.draft_def_id)
        assert draft is not None
        return [(caller.draft_form, draft)]
    forms = (
        await db.scalars(
            select(Form)
            .join(Project, Project.id == Form.project_id)
            .where(
                Form.project_id == project_id,
                Form.deleted_at.is_(None),
                Form.state == "open",
                Form.current_def_id.is_not(None),
                Project.deleted_at.is_(None),
            )
        )
    ).all()
    assert caller.principal is not None
    allowed = [
        f for f in forms if caller.principal.can("form.read", project_id=project_id, form_id=f.id)
    ]
    defs = await form_defs(db, {f.current_def_id for f in allowed if f.current_def_id})
    return [(f, defs[f.current_def_id]) for f in allowed if f.current_def_id in defs]


def _form_url(caller: Caller, project_id: int, form: Form) -> str:
    form_path = f"{caller.base_url}/projects/{project_id}/forms/{path_segment(form.xml_form_id)}"
    return f"{form_path}/draft" if caller.draft_form is not None else form_path


@get("/projects/{project_id:int}/formList", name="openrosa-form-list", include_in_schema=False)
async def form_list(request: AnyRequest, project_id: FromPath[int]) -> Response[bytes]:
    return await serve_form_list(request, project_id)


async def serve_form_list(request: AnyRequest, project_id: int) -> Response[bytes]:
    rt = runtime_of(request)
    wanted = request.query_params.get("formID")
    async with rt.transaction() as db:
        caller = await resolve_caller(request, db, project_id)
        if caller.draft_form is None:
            # As Central: a project that does not exist (or was deleted) is 404.1,
            # not an empty list.
            project = await db.get(Project, project_id)
            if project is None or project.deleted_at is not None:
                raise problems.not_found()
        entries = []
        for form, form_def in await _visible_forms(db, caller, project_id):
            if wanted and form.xml_form_id != wanted:
                continue
            url = _form_url(caller, project_id, form)
            has_media = bool(await attachments_of(db, form_def.id))
            entries.append(
                FormListEntry(
                    form_id=form.xml_form_id,
                    name=form_def.title,
                    version=form_def.version,
                    md5=form_def.md5,
                    download_url=f"{url}.xml",
                    manifest_url=f"{url}/manifest" if has_media else None,
                )
            )
    return openrosa(render_form_list(entries))


async def _form_and_def(
    request: AnyRequest, db: AsyncSession, project_id: int, xml_form_id: str
) -> tuple[Caller, Form, FormDef]:
    caller = await resolve_caller(request, db, project_id)
    form: Form | None
    if caller.draft_form is not None:
        form = caller.draft_form
        def_id = form.draft_def_id
    else:
        form = await db.scalar(
            select(Form).where(
                Form.project_id == project_id,
                Form.xml_form_id == xml_form_id,
                Form.deleted_at.is_(None),
            )
        )
        assert caller.principal is not None
        if form is None or not caller.principal.can(
            "form.read", project_id=project_id, form_id=form.id
        ):
            raise problems.not_found()
        def_id = form.current_def_id
    form_def = await db.get(FormDef, def_id) if def_id else None
    if form_def is None:
        raise problems.not_found()
    return caller, form, form_def


def not_modified_or(request: AnyRequest, etag: str) -> Response[bytes] | None:
    if request.headers.get("if-none-match") == etag:
        headers = openrosa_headers() | {"ETag": etag, "Cache-Control": "no-cache"}
        return Response(b"", status_code=304, headers=headers)
    return None


@get(
    "/projects/{project_id:int}/forms/{form_file:str}",
    name="openrosa-form-xml",
    include_in_schema=False,
)
async def form_xml(
    request: AnyRequest, project_id: FromPath[int], form_file: FromPath[str]
) -> Response[bytes]:
    if not form_file.endswith(".xml"):
        raise problems.not_found()
    return await serve_form_xml(request, project_id, form_file.removesuffix(".xml"))


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft.xml",
    name="openrosa-draft-xml",
    include_in_schema=False,
)
async def draft_xml(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Response[bytes]:
    return await serve_form_xml(request, project_id, xml_form_id)


async def serve_form_xml(request: AnyRequest, project_id: int, xml_form_id: str) -> Response[bytes]:
    async with runtime_of(request).transaction() as db:
        _, _, form_def = await _form_and_def(request, db, project_id, xml_form_id)
    etag = f'"{form_def.md5}"'
    cached = not_modified_or(request, etag)
    if cached is not None:
        return cached
    # no-cache, not no-store: Collect keeps form XML in its HTTP cache and revalidates.
    headers = openrosa_headers() | {"ETag": etag, "Cache-Control": "no-cache"}
    return Response(form_def.xml, media_type=XML, headers=headers)


async def serve_manifest(request: AnyRequest, project_id: int, xml_form_id: str) -> Response[bytes]:
    async with runtime_of(request).transaction() as db:
        caller, form, form_def = await _form_and_def(request, db, project_id, xml_form_id)
        rows = await db.execute(
            select(FormAttachment.name, Blob.md5, FormAttachment.dataset_id)
            .outerjoin(Blob, Blob.sha256 == FormAttachment.blob_sha256)
            .where(
                FormAttachment.form_def_id == form_def.id,
                or_(
                    FormAttachment.blob_sha256.is_not(None), FormAttachment.dataset_id.is_not(None)
                ),
            )
            .order_by(FormAttachment.name)
        )
        url = _form_url(caller, project_id, form)
        media = []
        for name, md5, dataset_id in rows.all():
            download = f"{url}/attachments/{path_segment(name)}"
            if dataset_id is None:
                media.append(MediaEntry(name, md5, download))
                continue
            dataset = await db.get(Dataset, dataset_id)
            assert dataset is not None
            owner = _list_owner(caller, dataset, project_id)
            view = await entity_view(db, caller.principal, dataset)
            digest = await entity_lists.list_hash(db, dataset_id, owner, masked=view.masked)
            integrity = (
                f"{caller.base_url}/projects/{project_id}/datasets/"
                f"{path_segment(dataset.name)}/integrity"
            )
            media.append(MediaEntry(name, digest, download, True, integrity))
    return openrosa(render_manifest(media))


def _list_owner(caller: Caller, dataset: Dataset, project_id: int) -> int | None:
    """ownerOnly lists show a form user only the entities they created."""
    principal = caller.principal
    sees_all = principal is not None and principal.can("entity.list", project_id=project_id)
    return entity_lists.owner_filter(dataset, principal.actor_id if principal else None, sees_all)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/manifest",
    name="openrosa-manifest",
    include_in_schema=False,
)
async def manifest(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Response[bytes]:
    return await serve_manifest(request, project_id, xml_form_id)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/manifest",
    name="openrosa-draft-manifest",
    include_in_schema=False,
)
async def draft_manifest(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Response[bytes]:
    return await serve_manifest(request, project_id, xml_form_id)


async def serve_form_attachment(
    request: AnyRequest, project_id: int, xml_form_id: str, name: str
) -> Response[Any]:
    rt = runtime_of(request)
    async with rt.transaction() as db:
        caller, _, form_def = await _form_and_def(request, db, project_id, xml_form_id)
        attachment = await db.scalar(
            select(FormAttachment).where(
                FormAttachment.form_def_id == form_def.id, FormAttachment.name == name
            )
        )
        if attachment is not None and attachment.dataset_id is not None:
            dataset = await db.get(Dataset, attachment.dataset_id)
            assert dataset is not None
            owner = _list_owner(caller, dataset, project_id)
            return await entity_list_response(request, db, dataset, owner, name, caller.principal)
        blob = (
            await db.get(Blob, attachment.blob_sha256)
            if attachment and attachment.blob_sha256
            else None
        )
        row = (blob, attachment.content_type) if blob is not None and attachment else None
    if row is None:
        raise problems.not_found()
    return await blob_response(request, row[0], name, content_type=row[1], revalidate=True)


async def entity_list_response(
    request: AnyRequest,
    db: AsyncSession,
    dataset: Dataset,
    owner: int | None,
    filename: str,
    principal: Principal | None,
) -> Response[Any]:
    """The list's CSV, streamed; its ETag is the manifest's hash, so 304 costs one query.

    Properties saved from personal fields come as pseudonyms to those below
    manager (an app user's phone included); a manager's download is audited.
    """
    view = await entity_view(db, principal, dataset)
    etag = f'"{await entity_lists.list_hash(db, dataset.id, owner, masked=view.masked)}"'
    cached = not_modified_or(request, etag)
    if cached is not None:
        return cached
    properties = await entity_lists.published_properties(db, dataset.id)
    if view.reads_clear:
        await record_entity_read(db, principal, dataset, "entity list")
    masked = (view.personal, view.key) if view.masked else None
    body = entity_lists.stream_csv(
        runtime_of(request), dataset.id, properties, owner, masked=masked
    )
    disposition = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    return Stream(
        body,
        media_type="text/csv",
        headers=openrosa_headers()
        | {
            "ETag": etag,
            # Collect caches the list and revalidates it with If-None-Match.
            "Cache-Control": "no-cache",
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": disposition,
        },
    )


@get(
    "/projects/{project_id:int}/datasets/{dataset_name:str}/integrity",
    name="openrosa-entity-integrity",
    include_in_schema=False,
)
async def entity_integrity(
    request: AnyRequest, project_id: FromPath[int], dataset_name: FromPath[str]
) -> Response[bytes]:
    wanted = [i.strip() for i in request.query_params.get("id", "").split(",") if i.strip()]
    async with runtime_of(request).transaction() as db:
        caller = await resolve_caller(request, db, project_id)
        dataset = await db.scalar(
            select(Dataset).where(Dataset.project_id == project_id, Dataset.name == dataset_name)
        )
        if dataset is None or dataset.published_at is None or caller.principal is None:
            raise problems.not_found()
        principal = caller.principal
        if not principal.can("entity.list", project_id=project_id) and not (
            await datasets.readable_by_form_users(db, principal, project_id, dataset.id)
        ):
            raise problems.insufficient_rights()
        found = await entity_lists.integrity(db, dataset.id, wanted)
    return openrosa(render_integrity(found))


async def blob_response(
    request: AnyRequest,
    blob: Blob,
    filename: str,
    *,
    content_type: str | None = None,
    revalidate: bool = False,
) -> Response[Any]:
    """Bytes of a stored blob, with an ETag; S3 answers with a presigned redirect.

    ``content_type`` is the type recorded for this attachment (the blob row keeps
    the type of the first upload of the same bytes, perhaps in another project);
    active types are sent as octet-stream. ``revalidate`` is for form definitions
    and media, which Collect caches and revalidates; everything else (submission
    data) is ``no-store``.
    """
    rt = runtime_of(request)
    etag = f'"{blob.md5}"'
    cached = not_modified_or(request, etag)
    if cached is not None:
        return cached
    media_type = safe_media_type(content_type or blob.content_type)
    headers = openrosa_headers() | {
        "ETag": etag,
        "Cache-Control": "no-cache" if revalidate else "no-store",
        "Content-Security-Policy": SANDBOX_POLICY,
    }
    # The web app gets the bytes from this origin: its CSP allows images from 'self'
    # only, and an office browser may not reach the S3 endpoint at all.
    if rt.settings.blob_redirects and not from_web_app(request):
        url = await rt.blobs.presigned_url(blob.sha256, filename=filename, content_type=media_type)
        if url is not None:
            return Redirect(url, status_code=307, headers=headers)
    # A photo opened from the web app is shown; everything else, and every file
    # fetched by a phone or a script, is a download.
    kind = "inline" if from_web_app(request) and shown_inline(media_type) else "attachment"
    disposition = f"{kind}; filename*=UTF-8''{quote(filename, safe='')}"
    # An explicit Content-Type header: Litestar would otherwise let a JSON route's
    # default media type replace the blob's own.
    return Stream(
        rt.blobs.open(blob.sha256),
        media_type=media_type,
        headers=headers
        | {
            "Content-Type": media_type,
            "Content-Disposition": disposition,
            "Content-Length": str(blob.size),
        },
    )


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/attachments/{name:str}",
    name="openrosa-media",
    include_in_schema=False,
)
async def media_file(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    return await serve_form_attachment(request, project_id, xml_form_id, name)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/attachments/{name:str}",
    name="openrosa-draft-media",
    include_in_schema=False,
)
async def draft_media_file(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    return await serve_form_attachment(request, project_id, xml_form_id, name)


async def submission_head(request: AnyRequest, project_id: int) -> Response[None]:
    async with runtime_of(request).transaction() as db:
        await resolve_caller(request, db, project_id)
    return Response(None, status_code=204, headers=openrosa_headers())


async def submission_post(request: AnyRequest, project_id: int) -> Response[bytes]:
    rt = runtime_of(request)
    token = request.path_params.get("token")
    if token is not None:
        # Every phone's every submission comes this way: one hop, not a session.
        found = await rt.query(lambda connection: accounts.app_user_on(connection, token))
        caller = _app_user_caller(request, found, project_id)
    else:
        async with rt.read() as db:
            caller = await resolve_caller(request, db, project_id)
    with spool_directory(rt.settings.data_dir / "tmp") as spool:
        upload = await read_submission(
            request.stream(),
            content_type=request.headers.get("content-type", ""),
            limit=rt.settings.max_submission_bytes,
            spool=spool,
        )
        incoming = Incoming(
            xml=upload.xml,
            files=upload.files,
            content_types=upload.content_types,
            device_id=device_id(request),
            user_agent=request.headers.get("user-agent"),
            hashes=upload.hashes,
        )
        if caller.draft_form is not None:
            result = await receive_submission(
                rt,
                project_id=project_id,
                incoming=incoming,
                by=_draft_submitter(caller.draft_form),
                draft=True,
                only_form=caller.draft_form.xml_form_id,
            )
        else:
            assert caller.principal is not None
            result = await receive_submission(
                rt, project_id=project_id, incoming=incoming, by=caller.principal
            )
    if result.missing_attachments and not upload.incomplete:
        message = (
            "Submission received; still waiting for " + ", ".join(result.missing_attachments) + "."
        )
    else:
        message = "Submission received. Thank you."
    return openrosa(render_response(message), status=201)


def _draft_submitter(form: Form) -> Principal:
    """Draft test submissions are recorded as the form's creator's, who shared the
    draft's token; they never mix with real submissions."""
    if form.created_by is None:
        raise problems.draft_gone()
    return Principal(
        actor_id=form.created_by,
        kind="draft",
        display_name="Draft tester",
        grants=(Grant(role_id=2, project_id=None, form_id=form.id),),
    )


@head(
    "/projects/{project_id:int}/submission",
    name="openrosa-submission-head",
    include_in_schema=False,
)
async def head_submission(request: AnyRequest, project_id: FromPath[int]) -> Response[None]:
    return await submission_head(request, project_id)


@post(
    "/projects/{project_id:int}/submission",
    name="openrosa-submission",
    include_in_schema=False,
    status_code=201,
)
async def post_submission(request: AnyRequest, project_id: FromPath[int]) -> Response[bytes]:
    return await submission_post(request, project_id)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/formList",
    name="openrosa-draft-form-list",
    include_in_schema=False,
)
async def draft_form_list(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Response[bytes]:
    return await serve_form_list(request, project_id)


@head(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/submission",
    name="openrosa-draft-submission-head",
    include_in_schema=False,
)
async def draft_head_submission(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Response[None]:
    return await submission_head(request, project_id)


@post(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/draft/submission",
    name="openrosa-draft-submission",
    include_in_schema=False,
    status_code=201,
)
async def draft_post_submission(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> Response[bytes]:
    return await submission_post(request, project_id)


KEY_HANDLERS = [
    form_list,
    form_xml,
    manifest,
    media_file,
    entity_integrity,
    head_submission,
    post_submission,
]
DRAFT_HANDLERS = [
    draft_form_list,
    draft_xml,
    draft_manifest,
    draft_media_file,
    draft_head_submission,
    draft_post_submission,
]
# Under plain /v1 the form XML and attachment paths belong to the JSON API (same
# paths in Central), which serves both audiences.
PLAIN_HANDLERS = [form_list, manifest, entity_integrity, head_submission, post_submission]


def openrosa_routers(max_body: int) -> list[Router]:
    def router(path: str, handlers: list[Any], name: str, *, token_in_path: bool) -> Router:
        return Router(
            path,
            route_handlers=handlers,
            request_max_body_size=max_body,
            tags=[name],
            # The token in the path is checked before the body is read (submission_post).
            opt={ANONYMOUS_BODY: token_in_path},
        )

    return [
        router("/v1/key/{token:str}", KEY_HANDLERS, "openrosa-key", token_in_path=True),
        router("/v1/test/{draft_token:str}", DRAFT_HANDLERS, "openrosa-draft", token_in_path=True),
        router("/v1", PLAIN_HANDLERS, "openrosa", token_in_path=False),
    ]
