"""A submission's history: versions, their differences, comments and audit log."""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody

from server.api.audits import audit_rows_out
from server.api.common import ExtendedHeader, actors_by_id, is_extended
from server.api.shapes import AuditOut, CommentIn, CommentOut, SubmissionVersionOut, iso
from server.api.submissions import ONE, caller_and_form, version_out
from server.requests import AnyRequest, runtime_of
from server.services import audit as audit_service
from server.services import reviews
from server.services.personal import audit_personal_read, personal_view


@get(f"{ONE}/versions", operation_id="listSubmissionVersions")
async def list_versions(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    extended: ExtendedHeader = None,
) -> list[SubmissionVersionOut]:
    async with runtime_of(request).read() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.read"
        )
        submission, _ = await reviews.find_submission(db, form, instance_id)
        view = await personal_view(db, principal, form)
        versions = [version_out(d, v) for d, v in await reviews.list_versions(db, submission)]
        for version in versions:
            version.instance_name = view.instance_name(version.instance_name)
        if is_extended(extended):
            actors = await actors_by_id(db, (v.submitter_id for v in versions))
            for version in versions:
                if version.submitter_id in actors:
                    version.submitter = actors[version.submitter_id]
        return versions


@get(f"{ONE}/versions/{{version_ref:str}}", operation_id="getSubmissionVersion")
async def get_version(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    version_ref: FromPath[str],
) -> Any:
    """One version as JSON, or its XML as ``{versionId}.xml``."""
    rt = runtime_of(request)
    async with rt.read() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.read"
        )
        submission, _ = await reviews.find_submission(db, form, instance_id)
        view = await personal_view(db, principal, form)
        if not version_ref.endswith(".xml"):
            found, form_version = await reviews.find_version(db, submission, version_ref)
            shape = version_out(found, form_version)
            shape.instance_name = view.instance_name(shape.instance_name)
            return shape
        found, _ = await reviews.find_version(db, submission, version_ref.removesuffix(".xml"))
        body = view.xml(found.xml)
    if view.reads_clear:
        await audit_personal_read(rt, principal, form, "xml", instanceId=found.instance_id)
    return Response(body, media_type="application/xml; charset=utf-8")


@get(f"{ONE}/diffs", operation_id="getSubmissionDiffs")
async def get_diffs(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
) -> dict[str, list[dict[str, Any]]]:
    rt = runtime_of(request)
    async with rt.read() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.read"
        )
        submission, _ = await reviews.find_submission(db, form, instance_id)
        view = await personal_view(db, principal, form)
        versions = [d for d, _ in await reviews.list_versions(db, submission)]
        diffs = reviews.diff_versions(versions[::-1], view.record)
    if view.reads_clear:
        await audit_personal_read(rt, principal, form, "diffs", instanceId=submission.instance_id)
    return diffs


@get(f"{ONE}/comments", operation_id="listSubmissionComments")
async def list_comments(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    extended: ExtendedHeader = None,
) -> list[CommentOut]:
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "submission.read")
        submission, _ = await reviews.find_submission(db, form, instance_id)
        comments = await reviews.list_comments(db, submission)
        wanted = is_extended(extended)
        actors = await actors_by_id(db, (c.actor_id for c in comments)) if wanted else {}
        shapes = []
        for comment in comments:
            shape = CommentOut(
                body=comment.body,
                actor_id=comment.actor_id,
                created_at=iso(comment.created_at) or "",
            )
            if comment.actor_id in actors:
                shape.actor = actors[comment.actor_id]
            shapes.append(shape)
        return shapes


@post(f"{ONE}/comments", operation_id="createSubmissionComment", status_code=200)
async def create_comment(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    data: JSONBody[CommentIn],
) -> CommentOut:
    """As in Central, whoever may read a submission may comment on it."""
    async with runtime_of(request).transaction() as db:
        principal, form = await caller_and_form(
            request, db, project_id, xml_form_id, "submission.read"
        )
        submission, _ = await reviews.find_submission(db, form, instance_id)
        comment = await reviews.add_comment(db, submission, data.body, principal)
        return CommentOut(
            body=comment.body, actor_id=comment.actor_id, created_at=iso(comment.created_at) or ""
        )


@get(f"{ONE}/audits", operation_id="listSubmissionAudits")
async def list_audits(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    extended: ExtendedHeader = None,
) -> list[AuditOut]:
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "submission.read")
        submission, _ = await reviews.find_submission(db, form, instance_id)
        rows = await audit_service.for_target(db, "submission", submission.id)
        return await audit_rows_out(db, rows, extended=is_extended(extended))


router = Router(
    "/v1",
    route_handlers=[
        list_versions,
        get_version,
        get_diffs,
        list_comments,
        create_comment,
        list_audits,
    ],
    tags=["submissions"],
)
