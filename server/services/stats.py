"""Counts behind X-Extended-Metadata: computed by queries when asked, never kept
in counter rows that every submission would have to update."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from server.db.models import (
    Actor,
    FieldKey,
    Form,
    PublicLink,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)


@dataclass(frozen=True, slots=True)
class FormStats:
    submissions: int = 0
    last_submission: datetime | None = None
    received: int = 0
    has_issues: int = 0
    edited: int = 0
    public_links: int = 0


@dataclass(frozen=True, slots=True)
class ProjectStats:
    forms: int = 0
    app_users: int = 0
    last_submission: datetime | None = None


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)


async def form_stats(db: AsyncSession, form_ids: Iterable[int]) -> dict[int, FormStats]:
    ids = set(form_ids)
    if not ids:
        return {}
    rows = await db.execute(
        select(
            Submission.form_id,
            func.count(),
            func.max(Submission.created_at),
            _count_where(Submission.review_state.is_(None)),
            _count_where(Submission.review_state == "hasIssues"),
            _count_where(Submission.review_state == "edited"),
        )
        .where(
            Submission.form_id.in_(ids),
            Submission.draft.is_(False),
            Submission.deleted_at.is_(None),
        )
        .group_by(Submission.form_id)
    )
    links = _pairs(
        await db.execute(
            select(PublicLink.form_id, func.count())
            .join(Actor, Actor.id == PublicLink.actor_id)
            .where(PublicLink.form_id.in_(ids), Actor.deleted_at.is_(None))
            .group_by(PublicLink.form_id)
        )
    )
    found = {
        form_id: FormStats(count, last, received, issues, edited)
        for form_id, count, last, received, issues, edited in rows
    }
    return {
        form_id: dataclasses.replace(
            found.get(form_id, FormStats()), public_links=links.get(form_id, 0)
        )
        for form_id in ids
    }


async def project_stats(db: AsyncSession, project_ids: Iterable[int]) -> dict[int, ProjectStats]:
    ids = set(project_ids)
    if not ids:
        return {}
    forms = _pairs(
        await db.execute(
            select(Form.project_id, func.count())
            .where(Form.project_id.in_(ids), Form.deleted_at.is_(None))
            .group_by(Form.project_id)
        )
    )
    app_users = _pairs(
        await db.execute(
            select(FieldKey.project_id, func.count())
            .join(Actor, Actor.id == FieldKey.actor_id)
            .where(FieldKey.project_id.in_(ids), Actor.deleted_at.is_(None))
            .group_by(FieldKey.project_id)
        )
    )
    last = _pairs(
        await db.execute(
            select(Form.project_id, func.max(Submission.created_at))
            .join(Submission, Submission.form_id == Form.id)
            .where(
                Form.project_id.in_(ids),
                Form.deleted_at.is_(None),
                Submission.draft.is_(False),
                Submission.deleted_at.is_(None),
            )
            .group_by(Form.project_id)
        )
    )
    return {
        pid: ProjectStats(forms.get(pid, 0), app_users.get(pid, 0), last.get(pid)) for pid in ids
    }


def _pairs(rows: Iterable[Any]) -> dict[Any, Any]:
    return {key: value for key, value in rows}


async def page_counts(
    db: AsyncSession | AsyncConnection, submission_ids: list[int], def_ids: list[int]
) -> tuple[dict[int, int], dict[int, tuple[int, int]]]:
    """Versions per submission and (expected, present) attachments per current version.

    Two grouped queries per page instead of three correlated subqueries per row:
    the page's ids are a dense, descending run, so a range scan of each index
    serves them. Callers that know which submissions were never edited (an edit
    sets ``updated_at``) may leave those out of ``submission_ids``; with none
    left, the versions are not queried.
    """
    edited: dict[int, int] = {}
    if submission_ids:
        versions = (
            select(SubmissionDef.submission_id, func.count())
            .where(SubmissionDef.submission_id.between(min(submission_ids), max(submission_ids)))
            .group_by(SubmissionDef.submission_id)
            .having(func.count() > 1)
        )
        edited = {row[0]: row[1] for row in (await db.execute(versions)).all()}
    if not def_ids:
        return edited, {}
    low, high = min(def_ids), max(def_ids)
    # A page's versions are mostly a dense run: a range binds two numbers where
    # a list binds a thousand (compiling and sending those cost milliseconds).
    # A sparse page (a narrow filter over a long history) keeps the list.
    dense = high - low < 4 * len(def_ids)
    files = (
        select(
            SubmissionAttachment.submission_def_id,
            func.count(),
            func.count(SubmissionAttachment.blob_sha256),
        )
        .where(
            SubmissionAttachment.submission_def_id.between(low, high)
            if dense
            else SubmissionAttachment.submission_def_id.in_(def_ids)
        )
        .group_by(SubmissionAttachment.submission_def_id)
    )
    rows = (await db.execute(files)).all()
    wanted = set(def_ids) if dense else None
    attached = {row[0]: (row[1], row[2]) for row in rows if wanted is None or row[0] in wanted}
    return edited, attached
