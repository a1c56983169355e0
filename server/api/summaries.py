"""Summaries Central offers beside its main resources: form assignments across a
project, a form's assignments, who submitted, encryption keys, and the attachments
of one submission version (read, or cleared)."""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, delete, get
from litestar.params import FromPath
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.api.common import ExtendedHeader, actor_out, check, is_extended
from server.api.shapes import (
    ActorOut,
    AssignmentOut,
    FormAssignmentOut,
    KeyOut,
    SubmissionAttachmentOut,
    Success,
    iso,
)
from server.api.submissions import ONE, caller_and_form
from server.auth import Principal
from server.db.models import (
    Actor,
    Assignment,
    Blob,
    Form,
    FormDef,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.openrosa.routes import blob_response
from server.requests import AnyRequest, require_principal, runtime_of
from server.roles import find_role
from server.services import reviews
from server.services.forms import find_form
from server.services.personal import audit_personal_read, personal_view
from server.services.projects import get_project

F = "/projects/{project_id:int}/forms/{xml_form_id:str}"


async def _form_assignments(
    db: AsyncSession, project_id: int, role_id: int | None, *, extended: bool
) -> list[FormAssignmentOut]:
    query = (
        select(Assignment.role_id, Form.xml_form_id, Actor)
        .join(Form, Form.id == Assignment.form_id)
        .join(Actor, Actor.id == Assignment.actor_id)
        .where(
            Form.project_id == project_id,
            Form.deleted_at.is_(None),
            Actor.deleted_at.is_(None),
        )
        .order_by(Form.xml_form_id, Actor.id, Assignment.role_id)
    )
    if role_id is not None:
        query = query.where(Assignment.role_id == role_id)
    shapes = []
    for role, xml_form_id, actor in await db.execute(query):
        shape = FormAssignmentOut(xml_form_id=xml_form_id, role_id=role)
        if extended:
            shape.actor = actor_out(actor)
        else:
            shape.actor_id = actor.id
        shapes.append(shape)
    return shapes


@get("/projects/{project_id:int}/assignments/forms", operation_id="listProjectFormAssignments")
async def list_project_form_assignments(
    request: AnyRequest, project_id: FromPath[int], extended: ExtendedHeader = None
) -> list[FormAssignmentOut]:
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        check(principal, "assignment.list", project_id=project_id)
        await get_project(db, project_id)
        return await _form_assignments(db, project_id, None, extended=is_extended(extended))


@get(
    "/projects/{project_id:int}/assignments/forms/{role:str}",
    operation_id="listProjectFormRoleAssignments",
)
async def list_project_form_role_assignments(
    request: AnyRequest,
    project_id: FromPath[int],
    role: FromPath[str],
    extended: ExtendedHeader = None,
) -> list[FormAssignmentOut]:
    spec = find_role(role)
    if spec is None:
        raise problems.not_found()
    async with runtime_of(request).read() as db:
        principal = await require_principal(request, db)
        check(principal, "assignment.list", project_id=project_id)
        await get_project(db, project_id)
        return await _form_assignments(db, project_id, spec.id, extended=is_extended(extended))


@get(F + "/assignments", operation_id="listFormAssignments")
async def list_form_assignments(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[AssignmentOut]:
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "assignment.list")
        rows = await db.execute(
            select(Assignment.actor_id, Assignment.role_id)
            .join(Actor, Actor.id == Assignment.actor_id)
            .where(Assignment.form_id == form.id, Actor.deleted_at.is_(None))
            .order_by(Assignment.actor_id, Assignment.role_id)
        )
        return [AssignmentOut(actor_id=a, role_id=r) for a, r in rows]


@get(F + "/submissions/submitters", operation_id="listSubmitters")
async def list_submitters(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[ActorOut]:
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "submission.read")
        actors = await db.scalars(
            select(Actor)
            .where(
                Actor.id.in_(
                    select(Submission.submitter_id).where(
                        Submission.form_id == form.id, Submission.draft.is_(False)
                    )
                )
            )
            .order_by(Actor.display_name, Actor.id)
        )
        return [actor_out(a) for a in actors]


@get(F + "/submissions/keys", operation_id="listSubmissionKeys")
async def list_keys(
    request: AnyRequest, project_id: FromPath[int], xml_form_id: FromPath[str]
) -> list[KeyOut]:
    """The public keys of the form's encrypted versions (Homeward never manages keys)."""
    async with runtime_of(request).read() as db:
        _, form = await caller_and_form(request, db, project_id, xml_form_id, "submission.read")
        defs = await db.scalars(
            select(FormDef)
            .where(FormDef.form_id == form.id, FormDef.public_key.is_not(None))
            .order_by(FormDef.id)
        )
        seen: dict[str, KeyOut] = {}
        for form_def in defs:
            key = form_def.public_key or ""
            seen.setdefault(
                key,
                KeyOut(
                    id=form_def.id,
                    public=key,
                    managed=False,
                    hint=None,
                    created_at=iso(form_def.created_at) or "",
                ),
            )
        return list(seen.values())


async def _version(
    request: AnyRequest, db: AsyncSession, path: tuple[int, str, str, str], verb: str
) -> tuple[Principal, Submission, SubmissionDef]:
    """The caller (allowed `verb`), the submission and the version a path names."""
    project_id, xml_form_id, instance_id, version_id = path
    principal, form = await caller_and_form(request, db, project_id, xml_form_id, verb)
    submission, _ = await reviews.find_submission(db, form, instance_id)
    version, _ = await reviews.find_version(db, submission, version_id)
    return principal, submission, version


@get(ONE + "/versions/{version_id:str}/attachments", operation_id="listVersionAttachments")
async def list_version_attachments(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    version_id: FromPath[str],
) -> list[SubmissionAttachmentOut]:
    async with runtime_of(request).read() as db:
        _, _, version = await _version(
            request, db, (project_id, xml_form_id, instance_id, version_id), "submission.read"
        )
        rows = await db.scalars(
            select(SubmissionAttachment)
            .where(SubmissionAttachment.submission_def_id == version.id)
            .order_by(SubmissionAttachment.name)
        )
        return [
            SubmissionAttachmentOut(name=a.name, exists=a.blob_sha256 is not None) for a in rows
        ]


@get(ONE + "/versions/{version_id:str}/attachments/{name:str}", operation_id="getVersionAttachment")
async def get_version_attachment(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    version_id: FromPath[str],
    name: FromPath[str],
) -> Response[Any]:
    rt = runtime_of(request)
    async with rt.read() as db:
        principal, _, version = await _version(
            request, db, (project_id, xml_form_id, instance_id, version_id), "submission.read"
        )
        form = await find_form(db, project_id, xml_form_id)
        view = await personal_view(db, principal, form)
        personal = view.check_attachment(version.record, name)
        found = (
            await db.execute(
                select(Blob, SubmissionAttachment.content_type)
                .join(SubmissionAttachment, SubmissionAttachment.blob_sha256 == Blob.sha256)
                .where(
                    SubmissionAttachment.submission_def_id == version.id,
                    SubmissionAttachment.name == name,
                )
            )
        ).first()
    if found is None:
        raise problems.not_found()
    if personal:
        await audit_personal_read(
            rt, principal, form, "attachment", instanceId=version.instance_id, name=name
        )
    return await blob_response(request, found[0], name, content_type=found[1])


@delete(
    ONE + "/versions/{version_id:str}/attachments/{name:str}",
    operation_id="clearVersionAttachment",
    status_code=200,
)
async def clear_version_attachment(
    request: AnyRequest,
    project_id: FromPath[int],
    xml_form_id: FromPath[str],
    instance_id: FromPath[str],
    version_id: FromPath[str],
    name: FromPath[str],
) -> Success:
    """Clear one file of any version (say, a photo that should never have been sent)."""
    async with runtime_of(request).transaction() as db:
        principal, submission, version = await _version(
            request, db, (project_id, xml_form_id, instance_id, version_id), "submission.update"
        )
        attachment = await reviews.current_attachment(db, version, name)
        await reviews.set_attachment(db, submission, attachment, None, principal)
    return Success()


router = Router(
    "/v1",
    route_handlers=[
        list_project_form_assignments,
        list_project_form_role_assignments,
        list_form_assignments,
        list_submitters,
        list_keys,
        list_version_attachments,
        get_version_attachment,
        clear_version_attachment,
    ],
    tags=["summaries"],
)
