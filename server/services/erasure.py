"""Erasure: one returnee's submissions removed everywhere, at once (GDPR article 17).

Unlike deletion (restorable, then purged after days), erasure removes at once
and for good: every version of each submission (its stored XML, record and
OData row), its attachment rows and comments, and the files no other row
needs from the blob store, with the cleaning log's entries of those
submissions (they hold old and new answers). Derived files go too: the
touched forms' analysis copies (the worker writes them again without the
erased rows) and their kept export-job files. Export spools are anonymous
temporary files that vanish with the export.

The returnee's entity goes with them: every entity a version of those
submissions created or updated (its rows, all its versions and any held
offline update), or one entity named by its uuid (`erase_entity`), which
takes the submissions that made or changed it along.

A returnee is found by a case id: every submission of the project's forms
whose answer to the case question (a field name such as `case_id`, or a path)
equals the value, in any version. :data:`ERASURE_STEPS` lets other code add
a step, called inside the same transaction with the project and the
submissions being erased; it removes its own rows and returns the blob hashes
it unlinked.

One audit entry (`submission.erase`, on the project) counts what went; it
names no case id, entity and no answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from forms.personal import answers_at
from server import problems
from server.db.models import (
    Dataset,
    EntityBacklog,
    EntityDef,
    EntityRow,
    Form,
    FormDef,
    Submission,
    SubmissionDef,
)
from server.runtime import Runtime
from server.services.analysis import forget_copies
from server.services.audit import record
from server.services.export_runs import forget_runs
from server.services.forms import schema_by_id
from server.services.purge import purge_submission_rows
from server.services.unused_blobs import delete_unused_files, drop_unused_blob_rows

__all__ = [
    "ERASE_ACTION",
    "ERASURE_STEPS",
    "Erased",
    "ErasureStep",
    "case_submissions",
    "erase_case",
    "erase_entity",
    "erase_submissions",
]

ERASE_ACTION = "submission.erase"
BATCH = 500

# (db, project id, submission ids being erased) -> blob hashes the step unlinked.
ErasureStep = Callable[[AsyncSession, int, Sequence[int]], Awaitable[set[str]]]
ERASURE_STEPS: list[ErasureStep] = []

_decode_record = msgspec.json.Decoder(dict[str, object]).decode


@dataclass(frozen=True, slots=True)
class Erased:
    submissions: int
    files: int
    entities: int = 0


def _case_paths(fields: Sequence[tuple[str, str]], case_field: str) -> list[str]:
    """Paths of the case question in one form version: by path, or by name."""
    if case_field.startswith("/"):
        return [path for path, _ in fields if path == case_field]
    return [path for path, name in fields if name == case_field]


async def case_submissions(
    db: AsyncSession, project_id: int, case_field: str, case_value: str
) -> list[int]:
    """Submissions (drafts and deleted ones too) whose case answer, in any version, is the value."""
    forms = (await db.scalars(select(Form.id).where(Form.project_id == project_id))).all()
    found: set[int] = set()
    for form_id in forms:
        defs = (
            await db.execute(select(FormDef.id, FormDef.sha256).where(FormDef.form_id == form_id))
        ).all()
        paths: dict[int, list[str]] = {}
        for def_id, sha in defs:
            schema = await schema_by_id(db, def_id, sha)
            paths[def_id] = _case_paths([(f.path, f.name) for f in schema.fields], case_field)
        if not any(paths.values()):
            continue
        last = 0
        while True:
            rows = (
                await db.execute(
                    select(
                        SubmissionDef.id,
                        SubmissionDef.submission_id,
                        SubmissionDef.form_def_id,
                        SubmissionDef.record,
                    )
                    .join(Submission, Submission.id == SubmissionDef.submission_id)
                    .where(Submission.form_id == form_id, SubmissionDef.id > last)
                    .order_by(SubmissionDef.id)
                    .limit(BATCH)
                )
            ).all()
            for _, submission_id, def_id, stored in rows:
                if submission_id in found or not paths.get(def_id):
                    continue
                answers = _decode_record(stored)
                if any(case_value in answers_at(answers, p) for p in paths[def_id]):
                    found.add(submission_id)
            if len(rows) < BATCH:
                break
            last = rows[-1][0]
    return sorted(found)


async def erase_submissions(
    rt: Runtime,
    project_id: int,
    submission_ids: Sequence[int],
    *,
    by: int | None,
    entity_ids: Sequence[int] = (),
) -> Erased:
    """Remove these submissions of the project for good, with every trace listed above."""
    ids = sorted(set(submission_ids))
    async with rt.transaction() as db:
        owned = set(
            await db.scalars(
                select(Submission.id)
                .join(Form, Form.id == Submission.form_id)
                .where(Submission.id.in_(ids), Form.project_id == project_id)
            )
        )
        if owned != set(ids):
            raise problems.not_found()  # never erase across projects
        forms = sorted(
            set(await db.scalars(select(Submission.form_id).where(Submission.id.in_(ids))))
        )
        objects = await forget_copies(db, forms) + await forget_runs(db, forms)
        entities = await _erase_entities(db, project_id, ids, entity_ids)
        files = await purge_submission_rows(db, ids)
        for step in ERASURE_STEPS:
            files |= await step(db, project_id, ids)
        unused = await drop_unused_blob_rows(db, files)
        await record(
            db,
            by,
            ERASE_ACTION,
            "project",
            project_id,
            {"submissions": len(ids), "entities": entities, "files": len(unused)},
        )
    for name in objects:
        await rt.blobs.delete_object(name)
    return Erased(len(ids), await delete_unused_files(rt, unused), entities)


def _versions_of(submission_ids: Sequence[int]) -> Any:
    return select(SubmissionDef.id).where(SubmissionDef.submission_id.in_(submission_ids))


async def _erase_entities(
    db: AsyncSession, project_id: int, submission_ids: Sequence[int], entity_ids: Sequence[int]
) -> int:
    """Entities the submissions made or changed, and those named: rows, versions, backlog."""
    made = set(
        await db.scalars(
            select(EntityDef.entity_id).where(
                EntityDef.source_submission_def_id.in_(_versions_of(submission_ids))
            )
        )
    )
    wanted = sorted(made | set(entity_ids))
    held = (
        select(EntityRow.dataset_id, EntityRow.uuid)
        .join(Dataset, Dataset.id == EntityRow.dataset_id)
        .where(EntityRow.id.in_(wanted), Dataset.project_id == project_id)
    )
    for dataset_id, uuid in (await db.execute(held)).all():
        await db.execute(
            delete(EntityBacklog).where(
                EntityBacklog.dataset_id == dataset_id, EntityBacklog.uuid == uuid
            )
        )
    await db.execute(
        delete(EntityBacklog).where(
            EntityBacklog.submission_def_id.in_(_versions_of(submission_ids))
        )
    )
    # Versions of other entities a submission touched cannot stay pointing at it.
    await db.execute(delete(EntityDef).where(EntityDef.entity_id.in_(wanted)))
    await db.execute(delete(EntityRow).where(EntityRow.id.in_(wanted)))
    return len(wanted)


async def erase_entity(rt: Runtime, project_id: int, entity_uuid: str, *, by: int | None) -> Erased:
    """Erase one returnee by their entity: it, and every submission that made or changed it."""
    async with rt.read() as db:
        entity_ids = list(
            await db.scalars(
                select(EntityRow.id)
                .join(Dataset, Dataset.id == EntityRow.dataset_id)
                .where(Dataset.project_id == project_id, EntityRow.uuid == entity_uuid)
            )
        )
        if not entity_ids:
            raise problems.not_found()
        sources = select(EntityDef.source_submission_def_id).where(
            EntityDef.entity_id.in_(entity_ids)
        )
        datasets = select(EntityRow.dataset_id).where(EntityRow.id.in_(entity_ids))
        held = select(EntityBacklog.submission_def_id).where(
            EntityBacklog.uuid == entity_uuid, EntityBacklog.dataset_id.in_(datasets)
        )
        submissions = list(
            await db.scalars(
                select(SubmissionDef.submission_id)
                .where(or_(SubmissionDef.id.in_(sources), SubmissionDef.id.in_(held)))
                .distinct()
            )
        )
    return await erase_submissions(rt, project_id, submissions, by=by, entity_ids=entity_ids)


async def erase_case(
    rt: Runtime, project_id: int, case_field: str, case_value: str, *, by: int | None
) -> Erased:
    """Erase one returnee: every submission whose case answer is `case_value`."""
    if not case_value.strip():
        raise problems.unexpected_value("value", case_value, "it is empty.")
    async with rt.read() as db:
        ids = await case_submissions(db, project_id, case_field, case_value)
    return await erase_submissions(rt, project_id, ids, by=by)
