"""Submissions: list, one, its XML, creation and edits through the API, review
state, deletion and restore, and its attachments."""

from __future__ import annotations

import mimetypes
import tempfile
from pathlib import Path
from typing import Any

from litestar import Response, Router, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.common import ExtendedHeader, actors_by_id, check, is_extended
from server.api.shapes import (
    ReviewPatch,
    SubmissionAttachmentOut,
    SubmissionOut,
    SubmissionVersionOut,
    Success,
    iso,
)
from server.auth import Principal
from server.db.models import Blob, Form, FormDef, Submission, SubmissionAttachment, SubmissionDef
from server.encoded_paths import path_segment
from server.openrosa.routes import blob_response, device_id
from server.requests import AnyRequest, parse_flag, require_principal, runtime_of
from server.services import reviews
from server.services.blobs import store_blob
from server.services.forms import find_form
from server.services.personal import PersonalView, audit_personal_read, personal_view
from server.services.submissions import (
    Incoming,
    find_target,
    ingest_submission,
    parse_incoming,
)

SUBMISSION = "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_ref:str}"
ONE = "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}"


def version_out(version: SubmissionDef, form_version: str | None) -> SubmissionVersionOut:
    return SubmissionVersionOut(
        instance_id=version.instance_id,
        instance_name=version.instance_name,
        submitter_id=version.submitter_id,
        device_id=version.device_id,
        user_agent=version.user_agent,
        created_at=iso(version.created_at) or "",
        current=version.current,
        form_version=form_version,
    )


def submission_out(
    submission: Submission, current: SubmissionDef | None = None, form_version: str | None = None
) -> SubmissionOut:
    return SubmissionOut(
        instance_id=submission.instance_id,
        submitter_id=submission.submitter_id,
        device_id=submission.device_id,
        user_agent=submission.user_agent,
        review_state=submission.review_state,
        created_at=iso(submission.created_at) or "",
        updated_at=iso(submission.updated_at),
        deleted_at=iso(submission.deleted_at),
        current_version=version_out(current, form_version) if current is not None else None,
    )


async def _extend(db: AsyncSession, shapes: list[SubmissionOut]) -> None:
    actors = await actors_by_id(db, (s.submitter_id for s in shapes))
    for shape in shapes:
        if shape.submitter_id in actors:
            shape.submitter = actors[shape.submitter_id]
        if shape.current_version is not None and shape.current_version.form_version is not None:
            shape.form_version = shape.current_version.form_version


async def caller_and_form(
    request: AnyRequest, db: AsyncSession, project_id: int, xml_form_id: str, verb: str
) -> tuple[Principal, Form]:
    principal = await require_principal(request, db)
    form = await find_form(db, project_id, xml_form_id)
    check(principal, verb, project_id=project_id, form_id=form.id)
    return principal, form


async def _readable_form(
    request: AnyRequest, db: AsyncSession, project_id: int, xml_form_id: str
) -> Form:
    return (await caller_and_form(request, db, project_id, xml_form_id, "submission.read"))[1]


def hide_instance_names(shapes: list[SubmissionOut], view: PersonalView) -> None:
    for shape in shapes:
        if shape.current_version is not None:
            shape.current_version.instance_name = view.instance_name(
                shape.current_version.instance_name
            )


def _non_negative(name: str, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise problems.unexpected_value(name, value, "it cannot be negative.")
    return value


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions", operation_id="listSubmissions"
)
async def list_submissions(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    extended: ExtendedHeader = None,
    deleted: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    offset: FromQuery[int | None] = None,
) -> list[SubmissionOut]:
    """Newest first; ``?deleted=true`` lists only deleted ones; ``limit``/``offset`` page."""
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        form = await find_form(db, project_id, xml_form_id)
        check(principal, "submission.list", project_id=project_id, form_id=form.id)
        query = (
            select(Submission, SubmissionDef, FormDef.version)
            .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
            .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
            .where(
                Submission.form_id == form.id,
                Submission.draft.is_(False),
                SubmissionDef.current.is_(True),
                Submission.deleted_at.is_not(None)
                if parse_flag(deleted)
                else Submission.deleted_at.is_(None),
            )
            .order_by(Submission.id.desc())
            .limit(_non_negative("limit", limit))
            .offset(_non_negative("offset", offset))
        )
        shapes = [submission_out(s, d, v) for s, d, v in await db.execute(query)]
        hide_instance_names(shapes, await personal_view(db, principal, form))
        if is_extended(extended):
            await _extend(db, shapes)
        return shapes


@post(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions",
    operation_id="createSubmission",
    status_code=200,
)
async def create_submission(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> SubmissionOut:
    rt = runtime_of(request)
    body = await request.body()
    async with rt.transaction() as db:
        principal = await require_principal(request, db)
        target = await find_target(
            db,
            project_id=project_id,
            parsed=parse_incoming(body),
            by=principal,
            only_form=xml_form_id,
        )
        if target.parsed.deprecated_id:
            raise problems.unexpected_value(
                "deprecatedID", target.parsed.deprecated_id, "edit submissions with PUT."
            )
        # Central's REST route only creates: any instanceID already there, the same
        # XML or not, is 409.3 (OpenRosa's resend rules and 409.1 are Collect's).
        taken = problems.already_exists("instanceID", target.parsed.instance_id)
        try:
            result = await ingest_submission(
                db,
                target=target,
                incoming=Incoming(
                    body, {}, {}, device_id(request), request.headers.get("user-agent")
                ),
                stored={},
                by=principal,
            )
        except problems.Problem as problem:
            raise (taken if problem.code == 409.1 else problem) from None
        if result.outcome != "created":
            raise taken  # rolls the transaction back
        return await _one_out(db, result.submission_id)


async def _one_out(db: AsyncSession, submission_id: int) -> SubmissionOut:
    row = (
        await db.execute(
            select(Submission, SubmissionDef, FormDef.version)
            .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
            .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
            .where(Submission.id == submission_id, SubmissionDef.current.is_(True))
        )
    ).one()
    return submission_out(row[0], row[1], row[2])


@get(SUBMISSION, operation_id="getSubmission")
async def get_submission(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_ref: FromPath[str],
    extended: ExtendedHeader = None,
) -> Any:
    """One submission as JSON, or its current XML as ``{instanceId}.xml``.

    An edit's own instanceID redirects (301) to that version, as Central does.
    """
    rt = runtime_of(request)
    async with rt.read() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.read"
        )
        view = await personal_view(db, principal, form)
        xml = instance_ref.endswith(".xml")
        instance_id = instance_ref.removesuffix(".xml") if xml else instance_ref
        try:
            submission, current = await reviews.find_submission(db, form, instance_id)
        except problems.Problem:
            root = await reviews.root_of_version(db, form, instance_id)
            if root is None:
                raise
            path = request.url.path.split("/forms/")[0]
            path += f"/forms/{path_segment(xml_form_id)}/submissions"
            return Redirect(
                f"{path}/{path_segment(root)}/versions/{path_segment(instance_ref)}",
                status_code=301,
            )
        if xml:
            body = view.xml(current.xml)
        else:
            shape = await _one_out(db, submission.id)
            hide_instance_names([shape], view)
            if is_extended(extended):
                await _extend(db, [shape])
            return shape
    if view.reads_clear:
        await audit_personal_read(rt, principal, form, "xml", instanceId=current.instance_id)
    return Response(body, media_type="application/xml; charset=utf-8")


@put(SUBMISSION, operation_id="editSubmission")
async def edit_submission(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_ref: FromPath[str],
) -> SubmissionOut:
    """A new version: the XML's deprecatedID must name the current version."""
    rt = runtime_of(request)
    body = await request.body()
    parsed = parse_incoming(body)
    if parsed.form_id != xml_form_id:
        raise problems.unexpected_value(
            "form id", parsed.form_id, "did not match the form ID in the URL."
        )
    if not parsed.deprecated_id:
        raise problems.expected_deprecation()
    async with rt.transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        submission, current = await reviews.find_submission(db, form, instance_ref)
        if current.instance_id != parsed.deprecated_id:
            raise problems.deprecating_old_version(parsed.deprecated_id)
        target = await find_target(
            db, project_id=project_id, parsed=parsed, by=principal, only_form=xml_form_id
        )
        if target.existing is not None:
            raise problems.instance_id_conflict()
        await ingest_submission(
            db,
            target=target,
            incoming=Incoming(body, {}, {}, device_id(request), request.headers.get("user-agent")),
            stored={},
            by=principal,
        )
        return await _one_out(db, submission.id)


@patch(SUBMISSION, operation_id="reviewSubmission")
async def review_submission(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_ref: FromPath[str],
    data: JSONBody[ReviewPatch],
) -> SubmissionOut:
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        submission, _ = await reviews.find_submission(db, form, instance_ref)
        if data.review_state is not None:
            await reviews.set_review_state(db, form, submission, data.review_state, principal)
        await db.flush()
        return await _one_out(db, submission.id)


@delete(SUBMISSION, operation_id="deleteSubmission", status_code=200)
async def delete_submission(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_ref: FromPath[str],
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.delete"
        )
        submission, _ = await reviews.find_submission(db, form, instance_ref)
        await reviews.delete_submission(db, submission, principal)
    return Success()


@post(f"{ONE}/restore", operation_id="restoreSubmission", status_code=200)
async def restore_submission(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.restore"
        )
        submission, _ = await reviews.find_submission(db, form, instance_id, deleted=True)
        await reviews.restore_submission(db, submission, principal)
    return Success()


@get(f"{ONE}/attachments", operation_id="listSubmissionAttachments")
async def list_submission_attachments(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
) -> list[SubmissionAttachmentOut]:
    async with runtime_of(request).read() as db:
        form = await _readable_form(request, db, project_id, xml_form_id)
        _, current = await reviews.find_submission(db, form, instance_id)
        rows = await db.scalars(
            select(SubmissionAttachment)
            .where(SubmissionAttachment.submission_def_id == current.id)
            .order_by(SubmissionAttachment.name)
        )
        return [
            SubmissionAttachmentOut(name=a.name, exists=a.blob_sha256 is not None) for a in rows
        ]


@get(f"{ONE}/attachments/{{name:str}}", operation_id="getSubmissionAttachment")
async def get_submission_attachment(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    name: FromPath[str],
) -> Response[Any]:
    rt = runtime_of(request)
    async with rt.read() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.read"
        )
        _, current = await reviews.find_submission(db, form, instance_id)
        view = await personal_view(db, principal, form)
        personal = view.check_attachment(current.record, name)
        found = (
            await db.execute(
                select(Blob, SubmissionAttachment.content_type)
                .join(SubmissionAttachment, SubmissionAttachment.blob_sha256 == Blob.sha256)
                .where(
                    SubmissionAttachment.submission_def_id == current.id,
                    SubmissionAttachment.name == name,
                )
            )
        ).first()
    if found is None:
        raise problems.not_found()
    if personal:
        await audit_personal_read(
            rt, principal, form, "attachment", instanceId=current.instance_id, name=name
        )
    return await blob_response(request, found[0], name, content_type=found[1])


def _may_upload(
    principal: Principal,
    form: Form,
    submission: Submission,
    current: SubmissionDef,
    attachment: SubmissionAttachment,
) -> bool:
    """Reviewers may replace any file; a submitter may only fill in a missing file of
    its own submission's first version (as Central allows)."""
    if principal.can("submission.update", project_id=form.project_id, form_id=form.id):
        return True
    return (
        principal.can("submission.create", project_id=form.project_id, form_id=form.id)
        and submission.submitter_id == principal.actor_id
        and attachment.blob_sha256 is None
        and current.deprecated_id is None
    )


@post(f"{ONE}/attachments/{{name:str}}", operation_id="uploadSubmissionAttachment", status_code=200)
async def upload_submission_attachment(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    name: FromPath[str],
) -> Success:
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await require_principal(request, db)
        form = await find_form(db, project_id, xml_form_id)
        if not principal.can(
            "submission.update", project_id=project_id, form_id=form.id
        ) and not principal.can("submission.create", project_id=project_id, form_id=form.id):
            raise problems.insufficient_rights()
        await reviews.find_submission(db, form, instance_id)
    # Without a Content-Type, Central goes by the file name (p.jpg is image/jpeg).
    content_type = (
        request.headers.get("content-type")
        or mimetypes.guess_type(name, strict=False)[0]
        or "application/octet-stream"
    )
    with tempfile.TemporaryDirectory(prefix="homeward-attachment-") as spool:
        path = Path(spool) / "upload"
        with path.open("wb") as sink:
            async for chunk in request.stream():
                sink.write(chunk)
        info = await rt.blobs.put_file(path)
    async with rt.transaction() as db:
        submission, current = await reviews.find_submission(db, form, instance_id)
        attachment = await reviews.current_attachment(db, current, name)
        if not _may_upload(principal, form, submission, current, attachment):
            raise problems.insufficient_rights()
        await store_blob(db, info, content_type)
        await reviews.set_attachment(
            db, submission, attachment, info.sha256, principal, content_type=content_type
        )
    return Success()


@delete(
    f"{ONE}/attachments/{{name:str}}", operation_id="clearSubmissionAttachment", status_code=200
)
async def clear_submission_attachment(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    name: FromPath[str],
) -> Success:
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.update"
        )
        submission, current = await reviews.find_submission(db, form, instance_id)
        attachment = await reviews.current_attachment(db, current, name)
        await reviews.set_attachment(db, submission, attachment, None, principal)
    return Success()


def router(max_body: int) -> Router:
    return Router(
        "/v1",
        route_handlers=[
            list_submissions,
            create_submission,
            get_submission,
            edit_submission,
            review_submission,
            delete_submission,
            restore_submission,
            list_submission_attachments,
            get_submission_attachment,
            upload_submission_attachment,
            clear_submission_attachment,
        ],
        request_max_body_size=max_body,
        tags=["submissions"],
    )
