"""What reviewers do to a submission after it arrived: review states, comments,
deletion and restore, edits through the API, versions and their differences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import problems
from server.auth import Principal
from server.db.models import (
    Comment,
    Form,
    FormDef,
    Submission,
    SubmissionAttachment,
    SubmissionDef,
)
from server.services.audit import now, record
from server.services.entity_ingest import process_on_approval

# Central's review states; ``received`` is the state of a submission nobody reviewed
# (Central reports it as ``null``).
REVIEW_STATES = frozenset({"received", "hasIssues", "edited", "approved", "rejected"})


async def find_submission(
    db: AsyncSession, form: Form, instance_id: str, *, deleted: bool = False
) -> tuple[Submission, SubmissionDef]:
    """A submission (by its first instanceID) and its current version, or 404."""
    row = (
        await db.execute(
            select(Submission, SubmissionDef)
            .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
            .where(
                Submission.form_id == form.id,
                Submission.draft.is_(False),
                Submission.instance_id == instance_id,
                Submission.deleted_at.is_not(None) if deleted else Submission.deleted_at.is_(None),
                SubmissionDef.current.is_(True),
            )
        )
    ).first()
    if row is None:
        raise problems.not_found()
    return row[0], row[1]


async def set_review_state(
    db: AsyncSession, form: Form, submission: Submission, state: str, by: Principal
) -> None:
    if state not in REVIEW_STATES:
        raise problems.unexpected_value(
            "reviewState", state, f"use one of {', '.join(sorted(REVIEW_STATES))}."
        )
    stored = None if state == "received" else state
    submission.review_state = stored
    submission.updated_at = now()
    await record(
        db,
        by.actor_id,
        "submission.update",
        "submission",
        submission.id,
        {"instanceId": submission.instance_id, "reviewState": state, "form": form.xml_form_id},
    )
    if state == "approved":
        # Lists that wait for approval are filled now, in this transaction.
        await db.run_sync(
            lambda session: process_on_approval(session.connection(), submission.id, by.actor_id)
        )


async def delete_submission(db: AsyncSession, submission: Submission, by: Principal) -> None:
    submission.deleted_at = now()
    await record(
        db,
        by.actor_id,
        "submission.delete",
        "submission",
        submission.id,
        {"instanceId": submission.instance_id},
    )


async def restore_submission(db: AsyncSession, submission: Submission, by: Principal) -> None:
    submission.deleted_at = None
    await record(
        db,
        by.actor_id,
        "submission.restore",
        "submission",
        submission.id,
        {"instanceId": submission.instance_id},
    )


async def add_comment(
    db: AsyncSession, submission: Submission, body: str, by: Principal
) -> Comment:
    if not body.strip():
        raise problems.missing_parameter("body")
    comment = Comment(
        submission_id=submission.id, actor_id=by.actor_id, body=body, created_at=now()
    )
    db.add(comment)
    await db.flush()
    await record(
        db,
        by.actor_id,
        "comment.create",
        "submission",
        submission.id,
        {"instanceId": submission.instance_id, "comment": comment.id},
    )
    return comment


async def list_comments(db: AsyncSession, submission: Submission) -> Sequence[Comment]:
    return (
        await db.scalars(
            select(Comment)
            .where(Comment.submission_id == submission.id)
            .order_by(Comment.created_at.desc(), Comment.id.desc())
        )
    ).all()


async def list_versions(
    db: AsyncSession, submission: Submission
) -> list[tuple[SubmissionDef, str]]:
    """Every version of a submission, newest first, with its form version."""
    rows = await db.execute(
        select(SubmissionDef, FormDef.version)
        .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
        .where(SubmissionDef.submission_id == submission.id)
        .order_by(SubmissionDef.created_at.desc(), SubmissionDef.id.desc())
    )
    return [(d, v) for d, v in rows]


async def find_version(
    db: AsyncSession, submission: Submission, version_id: str
) -> tuple[SubmissionDef, str]:
    row = (
        await db.execute(
            select(SubmissionDef, FormDef.version)
            .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
            .where(
                SubmissionDef.submission_id == submission.id,
                SubmissionDef.instance_id == version_id,
            )
        )
    ).first()
    if row is None:
        raise problems.not_found()
    return row[0], row[1]


_decode_record = msgspec.json.Decoder(dict[str, Any]).decode


def diff_versions(
    defs_oldest_first: Sequence[SubmissionDef],
    shown: Callable[[dict[str, Any]], Mapping[str, Any]] = lambda answers: answers,
) -> dict[str, list[dict[str, Any]]]:
    """Central's diffs: for each version after the first, keyed by its instanceID,
    the changes from the version before it as ``{old, new, path}`` (a side that does
    not exist is left out; a repeat instance is ``[name, index]`` in the path).
    ``shown`` is what the caller may see of a version's answers (the personal policy).
    """
    result: dict[str, list[dict[str, Any]]] = {}
    for before, after in pairwise(defs_oldest_first):
        changes: list[dict[str, Any]] = []
        old, new = shown(_decode_record(before.record)), shown(_decode_record(after.record))
        _diff(old, new, [], changes)
        result[after.instance_id] = changes
    return result


def _diff(old: Any, new: Any, path: list[Any], out: list[dict[str, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            if key not in new:
                out.append({"old": old[key], "path": [*path, key]})
            elif key not in old:
                out.append({"new": new[key], "path": [*path, key]})
            elif isinstance(old[key], list) and isinstance(new[key], list):
                _diff_repeat(old[key], new[key], path, key, out)
            else:
                _diff(old[key], new[key], [*path, key], out)
        return
    if old != new:
        out.append({"old": old, "new": new, "path": path})


def _diff_repeat(
    old: list[Any], new: list[Any], path: list[Any], name: str, out: list[dict[str, Any]]
) -> None:
    for index in range(max(len(old), len(new))):
        step = [*path, [name, index]]
        if index >= len(new):
            out.append({"old": old[index], "path": step})
        elif index >= len(old):
            out.append({"new": new[index], "path": step})
        else:
            _diff(old[index], new[index], step, out)


async def current_attachment(
    db: AsyncSession, current: SubmissionDef, name: str
) -> SubmissionAttachment:
    """The expected file ``name`` of one version (usually the current one), or 404."""
    row = await db.scalar(
        select(SubmissionAttachment).where(
            SubmissionAttachment.submission_def_id == current.id,
            SubmissionAttachment.name == name,
        )
    )
    if row is None:
        raise problems.not_found()
    return row


async def set_attachment(
    db: AsyncSession,
    submission: Submission,
    attachment: SubmissionAttachment,
    sha256: str | None,
    by: Principal,
    *,
    content_type: str | None = None,
) -> None:
    """Upload (``sha256``, declared as ``content_type``) or clear (``None``) one
    expected file of the current version."""
    old = attachment.blob_sha256
    attachment.blob_sha256 = sha256
    attachment.content_type = content_type if sha256 is not None else None
    await record(
        db,
        by.actor_id,
        "submission.attachment.update",
        "submission",
        submission.id,
        {
            "instanceId": submission.instance_id,
            "submissionDefId": attachment.submission_def_id,
            "name": attachment.name,
            "oldBlob": old,
            "newBlob": sha256,
        },
    )


async def root_of_version(db: AsyncSession, form: Form, version_id: str) -> str | None:
    """The submission (its first instanceID) one of whose later versions is ``version_id``."""
    found: str | None = await db.scalar(
        select(Submission.instance_id)
        .join(SubmissionDef, SubmissionDef.submission_id == Submission.id)
        .where(
            Submission.form_id == form.id,
            Submission.draft.is_(False),
            Submission.deleted_at.is_(None),
            SubmissionDef.instance_id == version_id,
        )
    )
    return found
