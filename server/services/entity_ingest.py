"""Entities from submissions: in the submission's own unit of work, never losing it.

A submission whose entity block cannot be applied (no label, a bad id, an id
already taken, an update of an entity that does not exist) is still stored; the
reason is recorded as an `entity.error` audit on the submission, as Central does.

Offline entities (spec 2024.1.0): a phone that updates an entity several times
before it syncs sends updates numbered by `baseVersion` on its `branchId`. One
that arrives before the update it builds on is held in `entity_backlog` and
applied when the missing one arrives, or forced by `force_backlog` once it has
waited long enough (Central's processing backlog).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection, bindparam, delete, func, insert, select

from forms.entities import EntityAction, EntityProblem, entity_action
from forms.schema import FormSchema
from forms.submission import ParsedSubmission
from server import problems
from server.db.models import (
    Dataset,
    EntityBacklog,
    EntityDef,
    EntityRow,
    Form,
    SubmissionDef,
)
from server.services.audit import now, record_on
from server.services.entities import (
    Author,
    Change,
    create_entity,
    dataset_by_name,
    find_entity,
    update_entity,
)

_encode_action = msgspec.json.Encoder().encode
_decode_action = msgspec.json.Decoder(EntityAction).decode
# Central forces held offline updates after five days.
BACKLOG_TIMEOUT = timedelta(days=5)
_BACKLOG = EntityBacklog.__table__


def process_submission(
    connection: Connection,
    *,
    form_id: int,
    schema: FormSchema,
    parsed: ParsedSubmission,
    submission_id: int,
    submission_def_id: int,
    author: Author,
    approved: bool = False,
) -> None:
    """Apply the submission's entity block, or record why it could not be applied."""
    if schema.entity is None:
        return
    # Personal data hook: values saved to properties from fields marked personal
    # will pass through server.services.personal's policy here once it exists.
    action = entity_action(schema.entity, parsed.entity, parsed.record)
    if action is None:
        return
    dataset = _dataset_of_form(connection, form_id, schema.entity.dataset)
    if dataset is None or dataset.published_at is None:
        action = EntityProblem(404.7, f"The entity list '{schema.entity.dataset}' does not exist.")
    elif isinstance(action, EntityProblem):
        if dataset.approval_required and not approved:
            return
    elif _creates(connection, dataset, action):
        if dataset.approval_required and not approved:
            return  # created when a reviewer approves the submission
    elif approved:
        return  # an update went in when the submission arrived, approval or not
    if schema.entity.offline:
        # Held updates that waited past the timeout go in before this one (Central
        # runs this on a schedule; here any offline submission sweeps it).
        force_backlog(connection)
    if isinstance(action, EntityProblem):
        _record_error(connection, submission_id, submission_def_id, author, action)
        return
    assert dataset is not None
    try:
        apply_action(connection, dataset, action, author)
    except problems.Problem as problem:
        error = EntityProblem(problem.code, problem.message)
        _record_error(connection, submission_id, submission_def_id, author, error)


# Statements of every entity submission, built once (building one costs more
# than running it).
_DATASET_OF_FORM = (
    select(Dataset.__table__)
    .join(Form, Form.project_id == Dataset.project_id)
    .where(Form.id == bindparam("form_id"), Dataset.name == bindparam("name"))
)
_HELD_SINCE = (
    select(_BACKLOG)
    .where(EntityBacklog.created_at <= bindparam("cutoff"))
    .order_by(EntityBacklog.branch_base_version, EntityBacklog.id)
)


def _creates(connection: Connection, dataset: Dataset, action: EntityAction) -> bool:
    """Whether the action makes a new entity. As in Central, only that waits for
    approval on a list that requires it; updates of existing entities go in at once."""
    if action.kind == "create":
        return True
    return action.kind == "upsert" and find_entity(connection, dataset.id, action.uuid) is None


def _dataset_of_form(connection: Connection, form_id: int, name: str) -> Dataset | None:
    """The list `name` in the form's project (dataset_by_name, in one statement)."""
    row = connection.execute(_DATASET_OF_FORM, {"form_id": form_id, "name": name}).first()
    return Dataset(**row._asdict()) if row is not None else None


def apply_action(
    connection: Connection, dataset: Dataset, action: EntityAction, author: Author
) -> None:
    """Create or update, holding offline updates that arrive out of branch order."""
    entity = find_entity(connection, dataset.id, action.uuid)
    if action.kind == "create" or (action.kind == "upsert" and entity is None):
        create_entity(
            connection,
            dataset,
            entity_uuid=action.uuid,
            label=action.label or "",
            data=action.data,
            author=author,
        )
        _apply_held(connection, dataset, action.uuid, action.branch_id, 1)
        return
    if entity is None:
        if action.branch_id and author.submission_def_id is not None:
            _hold(connection, dataset, action, author.submission_def_id)
            return
        raise problems.Problem(
            404.8,
            f"The entity with UUID ({action.uuid}) specified in the submission does not "
            f"exist in the dataset ({dataset.name}).",
        )
    base = action.base_version
    if action.kind == "update" and action.branch_id and base is not None:
        previous = _branch_predecessor(connection, entity, action)
        if previous is None and author.submission_def_id is not None:
            _hold(connection, dataset, action, author.submission_def_id)
            return
        base = previous
    change = Change(
        label=action.label,
        data=action.data,
        base_version=base if action.kind == "update" else None,
        trunk_version=action.trunk_version,
        branch_id=action.branch_id,
        branch_base_version=action.base_version,
    )
    update_entity(connection, dataset, entity, change, author)
    if action.branch_id and action.base_version is not None:
        _apply_held(connection, dataset, action.uuid, action.branch_id, action.base_version + 1)


def _branch_predecessor(
    connection: Connection, entity: EntityRow, action: EntityAction
) -> int | None:
    """The server version this offline update builds on, or None if it is not here yet.

    The first update of a branch builds on the trunk version the phone had (or on
    the create, for an entity made offline); a later one on the branch's previous
    update, whatever server version that became.
    """
    base = action.base_version
    assert base is not None
    if action.trunk_version is not None and base == action.trunk_version:
        return base
    if action.trunk_version is None and base == 1:
        return 1
    return connection.scalar(
        select(EntityDef.version).where(
            EntityDef.entity_id == entity.id,
            EntityDef.branch_id == action.branch_id,
            EntityDef.branch_base_version == base - 1,
        )
    )


def _hold(connection: Connection, dataset: Dataset, action: EntityAction, def_id: int) -> None:
    connection.execute(
        insert(EntityBacklog).values(
            dataset_id=dataset.id,
            uuid=action.uuid,
            branch_id=action.branch_id or "",
            branch_base_version=action.base_version or 0,
            submission_def_id=def_id,
            action=_encode_action(action),
            created_at=now(),
        )
    )


def _apply_held(
    connection: Connection, dataset: Dataset, entity_uuid: str, branch: str | None, base: int
) -> None:
    """Apply the held update that comes next on this branch, if one is waiting."""
    if not branch:
        # A create may be what held updates of an entity made offline wait for.
        rows = connection.execute(
            select(_BACKLOG).where(
                EntityBacklog.dataset_id == dataset.id, EntityBacklog.uuid == entity_uuid
            )
        ).all()
        firsts = [r for r in rows if r.branch_base_version == 1]
        for held in firsts:
            _apply_one(connection, dataset, held)
        return
    held_row = connection.execute(
        select(_BACKLOG).where(
            EntityBacklog.dataset_id == dataset.id,
            EntityBacklog.uuid == entity_uuid,
            EntityBacklog.branch_id == branch,
            EntityBacklog.branch_base_version == base,
        )
    ).first()
    if held_row is not None:
        _apply_one(connection, dataset, held_row)


def _apply_one(connection: Connection, dataset: Dataset, held: Any) -> None:
    connection.execute(delete(EntityBacklog).where(EntityBacklog.id == held.id))
    action = _decode_action(held.action)
    author = _held_author(connection, held)
    apply_action(connection, dataset, action, author)


def _held_author(connection: Connection, held: Any) -> Author:
    from server.db.models import SubmissionDef

    row = connection.execute(
        select(SubmissionDef.submitter_id, SubmissionDef.user_agent).where(
            SubmissionDef.id == held.submission_def_id
        )
    ).first()
    submitter, agent = (row[0], row[1]) if row is not None else (None, None)
    return Author(submitter, agent, submission_def_id=held.submission_def_id)


def force_backlog(connection: Connection, *, older_than: datetime | None = None) -> int:
    """Apply held updates that waited past the timeout, oldest branch step first.

    A forced update of an entity that never arrived creates it (Central does the
    same), and one whose predecessors never arrived applies as if they had.
    """
    cutoff = older_than or (now() - BACKLOG_TIMEOUT)
    held = connection.execute(_HELD_SINCE, {"cutoff": cutoff}).all()
    for row in held:
        still = connection.scalar(
            select(func.count()).select_from(EntityBacklog).where(EntityBacklog.id == row.id)
        )
        if not still:
            continue  # applied as the successor of an earlier one
        connection.execute(delete(EntityBacklog).where(EntityBacklog.id == row.id))
        dataset = connection.execute(
            select(Dataset.__table__).where(Dataset.id == row.dataset_id)
        ).first()
        assert dataset is not None
        action = _decode_action(row.action)
        forced = msgspec.structs.replace(action, kind="upsert", base_version=None, branch_id=None)
        author = _held_author(connection, row)
        try:
            apply_action(connection, Dataset(**dataset._asdict()), forced, author)
        except problems.Problem as problem:
            # Never silently dropped: the held submission gets its entity.error.
            submission_id = connection.scalar(
                select(SubmissionDef.submission_id).where(SubmissionDef.id == row.submission_def_id)
            )
            if submission_id is not None:
                error = EntityProblem(problem.code, problem.message)
                _record_error(connection, submission_id, row.submission_def_id, author, error)
            continue
        if action.branch_id and action.base_version is not None:
            _apply_held(
                connection,
                Dataset(**dataset._asdict()),
                action.uuid,
                action.branch_id,
                action.base_version + 1,
            )
    return len(held)


def _record_error(
    connection: Connection,
    submission_id: int,
    submission_def_id: int,
    author: Author,
    problem: EntityProblem,
) -> None:
    record_on(
        connection,
        author.actor_id,
        "entity.error",
        "submission",
        submission_id,
        {
            "submissionId": submission_id,
            "submissionDefId": submission_def_id,
            "errorMessage": problem.message,
            "problem": {"problemCode": problem.code, "problemDetails": None},
        },
    )


def process_edit(
    connection: Connection,
    *,
    form_id: int,
    schema: FormSchema,
    parsed: ParsedSubmission,
    submission_id: int,
    submission_def_id: int,
    author: Author,
) -> None:
    """An edit (deprecatedID) fills the list only where the submission never did.

    Central's rule: once any version of a submission made or updated an entity,
    later versions leave it alone (a correction goes to the entity itself); one
    whose entity failed (entity.error) or was not asked for is tried again with
    the edit, and one held in the backlog waits there.
    """
    if schema.entity is None:
        return
    versions = select(SubmissionDef.id).where(SubmissionDef.submission_id == submission_id)
    made = connection.scalar(
        select(EntityDef.id).where(EntityDef.source_submission_def_id.in_(versions)).limit(1)
    )
    held = connection.scalar(
        select(EntityBacklog.id).where(EntityBacklog.submission_def_id.in_(versions)).limit(1)
    )
    if made is not None or held is not None:
        return
    process_submission(
        connection,
        form_id=form_id,
        schema=schema,
        parsed=parsed,
        submission_id=submission_id,
        submission_def_id=submission_def_id,
        author=author,
    )


def process_on_approval(
    connection: Connection, submission_id: int, actor_id: int | None, *, pending: bool = False
) -> None:
    """An approved submission fills a list that waits for approval (approvalRequired).

    Lists that do not wait were filled at ingest; a submission already applied
    (or already refused, with its entity.error) is not applied twice. `pending`:
    the list has just stopped waiting (PATCH ...?convert=true), so a submission
    it held back fills it now.
    """
    from forms.submission import parse_submission
    from server.db.models import Audit, FormDef, Submission, SubmissionDef
    from server.services.forms import schema_by_id_on

    row = connection.execute(
        select(
            SubmissionDef.id,
            SubmissionDef.xml,
            SubmissionDef.user_agent,
            SubmissionDef.submitter_id,
            FormDef.id,
            FormDef.sha256,
            Submission.form_id,
            Submission.draft,
        )
        .join(Submission, Submission.id == SubmissionDef.submission_id)
        .join(FormDef, FormDef.id == SubmissionDef.form_def_id)
        .where(SubmissionDef.submission_id == submission_id, SubmissionDef.current.is_(True))
    ).first()
    if row is None or row.draft:
        return
    def_id, xml, agent, submitter, form_def_id, sha, form_id, _ = row
    schema = schema_by_id_on(connection, form_def_id, sha)
    if schema.entity is None:
        return
    project_id = connection.scalar(select(Form.project_id).where(Form.id == form_id))
    assert project_id is not None
    dataset = dataset_by_name(connection, project_id, schema.entity.dataset)
    if dataset is None or not (dataset.approval_required or pending):
        return
    defs = select(SubmissionDef.id).where(SubmissionDef.submission_id == submission_id)
    applied = connection.scalar(
        select(func.count())
        .select_from(EntityDef)
        .where(EntityDef.source_submission_def_id.in_(defs))
    )
    # Refused for this very version; an edit made since then is tried again.
    refused = connection.scalars(
        select(Audit.details).where(
            Audit.action == "entity.error",
            Audit.target_kind == "submission",
            Audit.target_id == submission_id,
        )
    )
    refused_here = any(
        msgspec.json.decode(d or "{}").get("submissionDefId") == def_id for d in refused
    )
    if applied or refused_here:
        return
    parsed = parse_submission(xml, schema.repeat_paths)
    process_submission(
        connection,
        form_id=form_id,
        schema=schema,
        parsed=parsed,
        submission_id=submission_id,
        submission_def_id=def_id,
        # The entity is the submitter's (ownerOnly lists show it to them), as in Central.
        author=Author(submitter if submitter is not None else actor_id, agent, def_id),
        approved=True,
    )
