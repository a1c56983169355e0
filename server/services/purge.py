"""Purge: deleted projects, forms and submissions removed for good, with their files.

Deleting through the API only marks rows (``deleted_at``) so that Central's
restore works. Returnees' answers and photos must not stay forever after an
organisation deleted them, so ``homeward purge`` (run by hand or from cron, as
Central runs its own purge) removes what was deleted more than ``--days`` ago:
the rows, every version, comment and attachment row, and the files no row
points at any more. Audit rows stay (they name ids, not answers) and a
``*.purge`` audit is written for each item.

Rows go first, in one transaction; files are removed after it commits, each
only if still no row refers to it, so a crash or a concurrent upload of the
same bytes can leave an unused file behind, never a row without its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import (
    Actor,
    Assignment,
    CheckFinding,
    CleaningEntry,
    Comment,
    FieldKey,
    Form,
    FormAttachment,
    FormChecks,
    FormDef,
    Project,
    PublicLink,
    Session,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services.analysis import forget_copies
from server.services.audit import now, record
from server.services.export_runs import forget_runs
from server.services.unused_blobs import delete_unused_files, drop_unused_blob_rows

__all__ = ["Purged", "purge_deleted", "purge_submission_rows"]


@dataclass(frozen=True, slots=True)
class Purged:
    projects: int
    forms: int
    submissions: int
    files: int


async def purge_deleted(rt: Runtime, *, older_than: timedelta, by: int | None = None) -> Purged:
    """Remove what was deleted before ``now - older_than`` (timedelta(0): all of it)."""
    cutoff = now() - older_than
    async with rt.transaction() as db:
        projects = await _ids(db, select(Project.id).where(_deleted_before(Project, cutoff)))
        forms = await _ids(
            db,
            select(Form.id).where(
                or_(_deleted_before(Form, cutoff), Form.project_id.in_(projects))
            ),
        )
        submissions = await _ids(
            db,
            select(Submission.id).where(
                or_(_deleted_before(Submission, cutoff), Submission.form_id.in_(forms))
            ),
        )
        # Derived files holding purged submissions go too: the forms' analysis
        # copies (written again by the worker) and their kept export files.
        touched = sorted(set(forms) | set(await _forms_of(db, submissions)))
        objects = await forget_copies(db, touched) + await forget_runs(db, touched)
        files = await purge_submission_rows(db, submissions)
        files |= await _purge_forms(db, forms)
        await _purge_projects(db, projects)
        unused = await drop_unused_blob_rows(db, files)
        for kind, ids in (("submission", submissions), ("form", forms), ("project", projects)):
            for purged_id in ids:
                await record(db, by, f"{kind}.purge", kind, purged_id)
    for name in objects:
        await rt.blobs.delete_object(name)
    removed = await delete_unused_files(rt, unused)
    return Purged(len(projects), len(forms), len(submissions), removed)


def _deleted_before(
    model: type[Project] | type[Form] | type[Submission], cutoff: datetime
) -> ColumnElement[bool]:
    return model.deleted_at.is_not(None) & (model.deleted_at <= cutoff)


async def _forms_of(db: AsyncSession, submission_ids: list[int]) -> list[int]:
    forms: set[int] = set()
    for chunk in _chunks(submission_ids):
        found = select(Submission.form_id).where(Submission.id.in_(chunk)).distinct()
        forms.update(await _ids(db, found))
    return sorted(forms)


async def _ids(db: AsyncSession, statement: Select[tuple[int]]) -> list[int]:
    return list((await db.scalars(statement)).all())


async def _files(db: AsyncSession, statement: Select[tuple[str | None]]) -> set[str]:
    return {sha for sha in await db.scalars(statement) if sha is not None}


async def purge_submission_rows(db: AsyncSession, ids: list[int]) -> set[str]:
    """Rows of these submissions; returns the files their versions pointed at."""
    files: set[str] = set()
    for chunk in _chunks(ids):
        versions = select(SubmissionDef.id).where(SubmissionDef.submission_id.in_(chunk))
        files |= await _files(
            db,
            select(SubmissionAttachment.blob_sha256).where(
                SubmissionAttachment.submission_def_id.in_(versions)
            ),
        )
        await db.execute(
            delete(SubmissionAttachment).where(SubmissionAttachment.submission_def_id.in_(versions))
        )
        await db.execute(delete(SubmissionDef).where(SubmissionDef.submission_id.in_(chunk)))
        await db.execute(delete(Comment).where(Comment.submission_id.in_(chunk)))
        await db.execute(delete(CheckFinding).where(CheckFinding.submission_id.in_(chunk)))
        await db.execute(delete(CleaningEntry).where(CleaningEntry.submission_id.in_(chunk)))
        await db.execute(delete(Submission).where(Submission.id.in_(chunk)))
    return files


async def _purge_forms(db: AsyncSession, ids: list[int]) -> set[str]:
    """Rows of these forms (their submissions are gone already); returns their files."""
    files: set[str] = set()
    for chunk in _chunks(ids):
        versions = select(FormDef.id).where(FormDef.form_id.in_(chunk))
        files |= await _files(
            db, select(FormAttachment.blob_sha256).where(FormAttachment.form_def_id.in_(versions))
        )
        files |= await _files(db, select(FormDef.xlsx_blob).where(FormDef.form_id.in_(chunk)))
        await db.execute(delete(FormAttachment).where(FormAttachment.form_def_id.in_(versions)))
        await db.execute(delete(CheckFinding).where(CheckFinding.form_id.in_(chunk)))
        await db.execute(delete(FormChecks).where(FormChecks.form_id.in_(chunk)))
        await db.execute(delete(CleaningEntry).where(CleaningEntry.form_id.in_(chunk)))
        await db.execute(delete(FormDef).where(FormDef.form_id.in_(chunk)))
        await db.execute(delete(Assignment).where(Assignment.form_id.in_(chunk)))
        link_actors = select(PublicLink.actor_id).where(PublicLink.form_id.in_(chunk))
        await _retire_actors(db, link_actors)
        await db.execute(delete(PublicLink).where(PublicLink.form_id.in_(chunk)))
        await db.execute(delete(Form).where(Form.id.in_(chunk)))
    return files


async def _purge_projects(db: AsyncSession, ids: list[int]) -> None:
    """Rows of these projects (forms are gone already); app users end with them."""
    for chunk in _chunks(ids):
        app_users = select(FieldKey.actor_id).where(FieldKey.project_id.in_(chunk))
        await _retire_actors(db, app_users)
        await db.execute(delete(FieldKey).where(FieldKey.project_id.in_(chunk)))
        await db.execute(delete(Assignment).where(Assignment.project_id.in_(chunk)))
        await db.execute(delete(Project).where(Project.id.in_(chunk)))


async def _retire_actors(db: AsyncSession, actor_ids: Select[tuple[int]]) -> None:
    """App users and public links: their sessions and grants end, their actor rows stay
    (audits and submissions name them) marked deleted."""
    await db.execute(delete(Session).where(Session.actor_id.in_(actor_ids)))
    await db.execute(delete(Assignment).where(Assignment.actor_id.in_(actor_ids)))
    await db.execute(
        update(Actor)
        .where(Actor.id.in_(actor_ids), Actor.deleted_at.is_(None))
        .values(deleted_at=now())
    )


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]
