"""Submissions: list, one, its XML, its attachments, and creation through the API."""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, get, post
from litestar.params import FromPath
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.common import check
from server.api.shapes import SubmissionAttachmentOut, SubmissionOut, iso
from server.db.models import Blob, Form, Submission, SubmissionAttachment, SubmissionDef
from server.openrosa.routes import blob_response, device_id
from server.requests import AnyRequest, require_principal, runtime_of
from server.services.forms import find_form
from server.services.submissions import (
    Incoming,
    find_target,
    ingest_submission,
    parse_incoming,
)


def submission_out(submission: Submission) -> SubmissionOut:
    return SubmissionOut(
        instance_id=submission.instance_id,
        submitter_id=submission.submitter_id,
        device_id=submission.device_id,
        user_agent=submission.user_agent,
        review_state=submission.review_state,
        created_at=iso(submission.created_at) or "",
        updated_at=iso(submission.updated_at),
        deleted_at=iso(submission.deleted_at),
    )


async def _readable_form(
    request: AnyRequest, db: AsyncSession, project_id: int, xml_form_id: str
) -> Form:
    principal = await require_principal(request, db)
    form = await find_form(db, project_id, xml_form_id)
    check(principal, "submission.read", project_id=project_id, form_id=form.id)
    return form


async def _submission(
    db: AsyncSession, form: Form, instance_id: str
) -> tuple[Submission, SubmissionDef]:
    row = (
        await db.execute(
            select(Submission, SubmissionDef)
            .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
            .where(
                Submission.form_id == form.id,
                Submission.draft.is_(False),
                Submission.instance_id == instance_id,
                Submission.deleted_at.is_(None),
                SubmissionDef.current.is_(True),
            )
        )
    ).first()
    if row is None:
        raise problems.not_found()
    return row[0], row[1]


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions", operation_id="listSubmissions"
)
async def list_submissions(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[SubmissionOut]:
    async with runtime_of(request).transaction() as db:
        form = await _readable_form(request, db, project_id, xml_form_id)
        rows = await db.scalars(
            select(Submission)
            .where(
                Submission.form_id == form.id,
                Submission.draft.is_(False),
                Submission.deleted_at.is_(None),
            )
            .order_by(Submission.id.desc())
        )
        return [submission_out(s) for s in rows]


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
        result = await ingest_submission(
            db,
            target=target,
            incoming=Incoming(body, {}, {}, device_id(request), request.headers.get("user-agent")),
            stored={},
            by=principal,
        )
        if result.outcome != "created":
            # Rolls the transaction back: the API creates, it does not resend.
            raise problems.xml_conflict()
        submission = await db.get(Submission, result.submission_id)
        assert submission is not None
        return submission_out(submission)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_ref:str}",
    operation_id="getSubmission",
)
async def get_submission(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_ref: FromPath[str],
) -> Any:
    """One submission as JSON, or its XML as ``{instanceId}.xml``."""
    async with runtime_of(request).transaction() as db:
        form = await _readable_form(request, db, project_id, xml_form_id)
        if instance_ref.endswith(".xml"):
            _, current = await _submission(db, form, instance_ref.removesuffix(".xml"))
            return Response(current.xml, media_type="application/xml; charset=utf-8")
        submission, _ = await _submission(db, form, instance_ref)
        return submission_out(submission)


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}/attachments",
    operation_id="listSubmissionAttachments",
)
async def list_submission_attachments(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
) -> list[SubmissionAttachmentOut]:
    async with runtime_of(request).transaction() as db:
        form = await _readable_form(request, db, project_id, xml_form_id)
        _, current = await _submission(db, form, instance_id)
        rows = await db.scalars(
            select(SubmissionAttachment)
            .where(SubmissionAttachment.submission_def_id == current.id)
            .order_by(SubmissionAttachment.name)
        )
        return [
            SubmissionAttachmentOut(name=a.name, exists=a.blob_sha256 is not None) for a in rows
        ]


@get(
    "/projects/{project_id:int}/forms/{xml_form_id:str}/submissions/{instance_id:str}/attachments/{name:str}",
    operation_id="getSubmissionAttachment",
)
async def get_submission_attachment(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    name: FromPath[str],
) -> Response[Any]:
    async with runtime_of(request).transaction() as db:
        form = await _readable_form(request, db, project_id, xml_form_id)
        _, current = await _submission(db, form, instance_id)
        blob = (
            await db.execute(
                select(Blob)
                .join(SubmissionAttachment, SubmissionAttachment.blob_sha256 == Blob.sha256)
                .where(
                    SubmissionAttachment.submission_def_id == current.id,
                    SubmissionAttachment.name == name,
                )
            )
        ).scalar_one_or_none()
    if blob is None:
        raise problems.not_found()
    return await blob_response(request, blob, name)


def router(max_body: int) -> Router:
    return Router(
        "/v1",
        route_handlers=[
            list_submissions,
            create_submission,
            get_submission,
            list_submission_attachments,
            get_submission_attachment,
        ],
        request_max_body_size=max_body,
        tags=["submissions"],
    )
