"""Entity lists (datasets): declared by forms at upload and publish, or through the API.

A draft that declares a list or properties creates them unpublished: they
exist for the draft (its dataset diff shows what publishing would add) and for
no one else. Publishing the form publishes them. Properties only ever grow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from forms.entities import valid_property_name
from forms.schema import FormSchema
from server import problems
from server.auth import Principal
from server.db.models import (
    Audit,
    Dataset,
    DatasetFormDef,
    DatasetProperty,
    EntityDef,
    EntityRow,
    Form,
    FormAttachment,
    FormDef,
    Submission,
    SubmissionDef,
)
from server.services.audit import now, record
from server.services.entity_ingest import process_on_approval

_DATASET_NAME_LIMIT = 255


async def find_dataset(
    db: AsyncSession, project_id: int, name: str, *, published: bool = True
) -> Dataset:
    dataset = await db.scalar(
        select(Dataset).where(Dataset.project_id == project_id, Dataset.name == name)
    )
    if dataset is None or (published and dataset.published_at is None):
        raise problems.not_found()
    return dataset


async def list_datasets(db: AsyncSession, project_id: int) -> Sequence[Dataset]:
    return (
        await db.scalars(
            select(Dataset)
            .where(Dataset.project_id == project_id, Dataset.published_at.is_not(None))
            .order_by(Dataset.name)
        )
    ).all()


async def properties_of(db: AsyncSession, dataset_id: int) -> Sequence[DatasetProperty]:
    return (
        await db.scalars(
            select(DatasetProperty)
            .where(DatasetProperty.dataset_id == dataset_id)
            .order_by(DatasetProperty.id)
        )
    ).all()


def check_dataset_name(name: str) -> None:
    if not name or len(name) > _DATASET_NAME_LIMIT or not valid_property_name(name):
        raise problems.unexpected_value(
            "name",
            name,
            "an entity list's name starts with a letter or _, holds only letters, digits, "
            "_, - and ., and is not 'name' or 'label'.",
        )


async def create_dataset(
    db: AsyncSession, project_id: int, name: str, *, approval_required: bool, by: Principal
) -> Dataset:
    check_dataset_name(name)
    existing = await db.scalar(
        select(Dataset).where(Dataset.project_id == project_id, Dataset.name == name)
    )
    if existing is not None and existing.published_at is not None:
        raise problems.already_exists("name", name)
    at = now()
    dataset = existing or Dataset(project_id=project_id, name=name, owner_only=False, created_at=at)
    dataset.approval_required = approval_required
    dataset.published_at = at
    db.add(dataset)
    await db.flush()
    await record(db, by.actor_id, "dataset.create", "dataset", dataset.id, {"name": name})
    return dataset


async def add_property(
    db: AsyncSession, dataset: Dataset, name: str, by: Principal
) -> DatasetProperty:
    if not valid_property_name(name):
        raise problems.unexpected_value(
            "name", name, "a property name is a valid XML name other than name and label."
        )
    existing = await db.scalar(
        select(DatasetProperty).where(
            DatasetProperty.dataset_id == dataset.id, DatasetProperty.name == name
        )
    )
    if existing is not None and existing.published_at is not None:
        raise problems.already_exists("name, datasetId", f"{name}, {dataset.id}")
    at = now()
    prop = existing or DatasetProperty(dataset_id=dataset.id, name=name, created_at=at)
    prop.published_at = at
    db.add(prop)
    await db.flush()
    await record(db, by.actor_id, "dataset.update", "dataset", dataset.id, {"properties": [name]})
    return prop


async def delete_property(db: AsyncSession, dataset: Dataset, name: str, by: Principal) -> None:
    """Remove a published property no form writes and no live entity holds a value for.

    Otherwise 409.22 with what stands in the way (Central's prerequisites): the
    forms whose published version or draft saves to it, and how many entities
    hold a non-empty value (with up to three of them).
    """
    prop = await db.scalar(
        select(DatasetProperty).where(
            DatasetProperty.dataset_id == dataset.id,
            DatasetProperty.name == name,
            DatasetProperty.published_at.is_not(None),
        )
    )
    if prop is None:
        raise problems.not_found()
    writing = await db.execute(
        select(Form.xml_form_id, FormDef.title, DatasetFormDef.properties)
        .join(FormDef, FormDef.form_id == Form.id)
        .join(DatasetFormDef, DatasetFormDef.form_def_id == FormDef.id)
        .where(
            DatasetFormDef.dataset_id == dataset.id,
            Form.deleted_at.is_(None),
            or_(FormDef.id == Form.current_def_id, FormDef.id == Form.draft_def_id),
        )
        .order_by(Form.xml_form_id)
    )
    forms = {
        xml_form_id: title
        for xml_form_id, title, saved in writing
        if name in json.loads(saved or "{}")
    }
    holding = [
        (uuid, label)
        for uuid, label, data in await db.execute(
            select(EntityRow.uuid, EntityRow.label, EntityRow.data)
            .where(EntityRow.dataset_id == dataset.id, EntityRow.deleted_at.is_(None))
            .order_by(EntityRow.id)
        )
        if json.loads(data).get(name, "").strip()
    ]
    prerequisites: dict[str, object] = {}
    if forms:
        prerequisites["dependentForms"] = {
            "message": "You can't delete this property because there are Form(s) writing to it",
            "details": {"forms": [{"formName": t, "xmlFormId": f} for f, t in forms.items()]},
        }
    if holding:
        prerequisites["nonEmptyEntities"] = {
            "message": "You can't delete this property because there are Entity(ies) with "
            f"the non-empty value for the '{name}'",
            "details": {
                "totalCount": len(holding),
                "entities": [{"uuid": u, "label": lbl} for u, lbl in holding[:3]],
            },
        }
    if prerequisites:
        raise problems.Problem(
            409.22,
            f'Prerequisites for deleting the property "{name}" are not met.',
            {"prerequisites": prerequisites},
        )
    await db.delete(prop)
    await record(
        db, by.actor_id, "dataset.update", "dataset", dataset.id, {"deletedProperty": name}
    )


async def declare_from_form(
    db: AsyncSession, project_id: int, form_def: FormDef, schema: FormSchema, *, publish: bool
) -> None:
    """The dataset and properties a form version declares; published with the form."""
    declaration = schema.entity
    if declaration is None:
        return
    at = now()
    dataset = await db.scalar(
        select(Dataset).where(Dataset.project_id == project_id, Dataset.name == declaration.dataset)
    )
    if dataset is None:
        check_dataset_name(declaration.dataset)
        dataset = Dataset(
            project_id=project_id,
            name=declaration.dataset,
            approval_required=False,
            owner_only=False,
            created_at=at,
        )
        db.add(dataset)
        await db.flush()
    if publish and dataset.published_at is None:
        dataset.published_at = at
        await _link_waiting_attachments(db, project_id, dataset)
    known = {p.name: p for p in await properties_of(db, dataset.id)}
    for name in declaration.properties:
        prop = known.get(name)
        if prop is None:
            if not valid_property_name(name):
                raise problems.unexpected_value(
                    "save_to", name, "a property name is a valid XML name other than name/label."
                )
            prop = DatasetProperty(dataset_id=dataset.id, name=name, created_at=at)
            db.add(prop)
        if publish and prop.published_at is None:
            prop.published_at = at
    linked = await db.scalar(
        select(DatasetFormDef.id).where(
            DatasetFormDef.dataset_id == dataset.id, DatasetFormDef.form_def_id == form_def.id
        )
    )
    if linked is None:
        actions = [
            a for a, on in (("create", declaration.creates), ("update", declaration.updates)) if on
        ]
        db.add(
            DatasetFormDef(
                dataset_id=dataset.id,
                form_def_id=form_def.id,
                properties=json.dumps(declaration.properties),
                actions=json.dumps(actions),
            )
        )
    await db.flush()


async def _link_waiting_attachments(db: AsyncSession, project_id: int, dataset: Dataset) -> None:
    """Forms already waiting for `<list>.csv` (no file uploaded) get the new list."""
    defs = (
        select(Form.current_def_id)
        .where(Form.project_id == project_id)
        .union(select(Form.draft_def_id).where(Form.project_id == project_id))
    )
    waiting = await db.scalars(
        select(FormAttachment).where(
            FormAttachment.form_def_id.in_(defs),
            FormAttachment.name == f"{dataset.name}.csv",
            FormAttachment.blob_sha256.is_(None),
            FormAttachment.dataset_id.is_(None),
        )
    )
    for attachment in waiting:
        attachment.dataset_id = dataset.id


async def link_attachments(db: AsyncSession, project_id: int, form_def_id: int) -> None:
    """Attachments named `<list>.csv` are served from the entity list of that name."""
    attachments = (
        await db.scalars(select(FormAttachment).where(FormAttachment.form_def_id == form_def_id))
    ).all()
    wanted = {a.name[: -len(".csv")]: a for a in attachments if a.name.endswith(".csv")}
    if not wanted:
        return
    found = await db.execute(
        select(Dataset.name, Dataset.id).where(
            Dataset.project_id == project_id,
            Dataset.name.in_(wanted),
            Dataset.published_at.is_not(None),
        )
    )
    for name, dataset_id in found:
        attachment = wanted[name]
        if attachment.blob_sha256 is None and attachment.dataset_id is None:
            attachment.dataset_id = dataset_id
    await db.flush()


@dataclass(frozen=True, slots=True)
class PropertyDiff:
    name: str
    is_new: bool
    in_form: bool


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    name: str
    is_new: bool
    properties: list[PropertyDiff]


async def dataset_diff(
    db: AsyncSession, project_id: int, form_def: FormDef, schema: FormSchema
) -> list[DatasetDiff]:
    """What the form version declares, against what is published (Central's dataset-diff)."""
    declaration = schema.entity
    if declaration is None:
        return []
    dataset = await db.scalar(
        select(Dataset).where(Dataset.project_id == project_id, Dataset.name == declaration.dataset)
    )
    props = await properties_of(db, dataset.id) if dataset is not None else []
    in_form = set(declaration.properties)
    listed = [
        PropertyDiff(p.name, p.published_at is None, p.name in in_form)
        for p in props
        if p.published_at is not None or p.name in in_form
    ]
    named = {p.name for p in listed}
    listed += [PropertyDiff(n, True, True) for n in declaration.properties if n not in named]
    is_new = dataset is None or dataset.published_at is None
    return [DatasetDiff(declaration.dataset, is_new, listed)]


async def entity_counts(
    db: AsyncSession, dataset_ids: list[int]
) -> dict[int, tuple[int, object, int]]:
    """Live entities per dataset, the last time one changed, and how many are in
    conflict (X-Extended-Metadata)."""
    if not dataset_ids:
        return {}
    rows = await db.execute(
        select(
            EntityRow.dataset_id,
            func.count(),
            func.max(func.coalesce(EntityRow.updated_at, EntityRow.created_at)),
            func.count(EntityRow.conflict),
        )
        .where(EntityRow.dataset_id.in_(dataset_ids), EntityRow.deleted_at.is_(None))
        .group_by(EntityRow.dataset_id)
    )
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def source_forms(db: AsyncSession, dataset_id: int) -> list[tuple[str, str]]:
    """(xmlFormId, name) of the published forms that fill the dataset."""
    rows = await db.execute(
        select(Form.xml_form_id, FormDef.title)
        .join(FormDef, FormDef.id == Form.current_def_id)
        .join(DatasetFormDef, DatasetFormDef.form_def_id == FormDef.id)
        .where(DatasetFormDef.dataset_id == dataset_id, Form.deleted_at.is_(None))
        .order_by(Form.xml_form_id)
    )
    return [(row[0], row[1]) for row in rows]


async def linked_forms(db: AsyncSession, dataset_id: int) -> list[tuple[str, str]]:
    """(xmlFormId, name) of the published forms that download the dataset."""
    rows = await db.execute(
        select(Form.xml_form_id, FormDef.title)
        .join(FormDef, FormDef.id == Form.current_def_id)
        .join(FormAttachment, FormAttachment.form_def_id == FormDef.id)
        .where(FormAttachment.dataset_id == dataset_id, Form.deleted_at.is_(None))
        .order_by(Form.xml_form_id)
    )
    return [(row[0], row[1]) for row in rows]


async def property_forms(db: AsyncSession, dataset_id: int) -> dict[str, list[str]]:
    """Property name -> xmlFormIds of the published forms that save to it."""
    rows = await db.execute(
        select(Form.xml_form_id, DatasetFormDef.properties)
        .join(FormDef, FormDef.id == Form.current_def_id)
        .join(DatasetFormDef, DatasetFormDef.form_def_id == FormDef.id)
        .where(DatasetFormDef.dataset_id == dataset_id, Form.deleted_at.is_(None))
    )
    result: dict[str, list[str]] = {}
    for xml_form_id, properties in rows:
        for name in json.loads(properties):
            result.setdefault(name, []).append(xml_form_id)
    return result


async def readable_by_form_users(
    db: AsyncSession, principal: Principal, project_id: int, dataset_id: int
) -> bool:
    """App users and data collectors read a list only through a form that links it."""
    form_ids = await db.scalars(
        select(Form.id)
        .join(FormAttachment, FormAttachment.form_def_id == Form.current_def_id)
        .where(
            Form.project_id == project_id,
            Form.deleted_at.is_(None),
            FormAttachment.dataset_id == dataset_id,
        )
    )
    return any(principal.can("form.read", project_id=project_id, form_id=f) for f in form_ids)


async def update_dataset(
    db: AsyncSession,
    dataset: Dataset,
    *,
    approval_required: bool | None,
    owner_only: bool | None,
    by: Principal,
    convert: bool | None = None,
) -> None:
    """Change the list's flags; turning approvalRequired off asks what to do with
    the submissions it held back (Central's `?convert=`): none pending, or
    convert=false, leaves them; convert=true fills the list from them now;
    no answer while some are pending is 400.29."""
    changes: dict[str, bool] = {}
    converting = approval_required is False and convert is True
    if approval_required is False and convert is None:
        count = len(await pending_submissions(db, dataset.id))
        if count:
            raise problems.Problem(
                400.29,
                f"There are {count} pending submissions: send convert=true to make their "
                "entities now, or convert=false to leave them as they are.",
                {"count": count},
            )
    if approval_required is not None:
        dataset.approval_required = approval_required
        changes["approvalRequired"] = approval_required
    if owner_only is not None:
        dataset.owner_only = owner_only
        changes["ownerOnly"] = owner_only
    details: dict[str, object] = dict(changes)
    if approval_required is False:
        details["autoConvert"] = converting
    await record(db, by.actor_id, "dataset.update", "dataset", dataset.id, details)
    if converting:
        await db.flush()
        held = await pending_submissions(db, dataset.id)

        def convert_all(session: Session) -> None:
            for submission_id in held:
                process_on_approval(session.connection(), submission_id, by.actor_id, pending=True)

        await db.run_sync(convert_all)


# Review states of submissions a list waiting for approval has not taken yet.
_UNREVIEWED = ("received", "edited", "hasIssues")


async def pending_submissions(db: AsyncSession, dataset_id: int) -> list[int]:
    """Submissions to forms filling the list whose entity was never made or refused.

    As Central counts them: the current version of a live, non-draft submission
    of a form version that fills the list, not yet approved or rejected, with no
    entity version from any of its versions in this list and no entity.error on
    its current version.
    """
    source = aliased(SubmissionDef)
    made = (
        select(EntityDef.id)
        .join(EntityRow, EntityRow.id == EntityDef.entity_id)
        .join(source, source.id == EntityDef.source_submission_def_id)
        .where(EntityRow.dataset_id == dataset_id, source.submission_id == Submission.id)
    )
    rows = (
        await db.execute(
            select(Submission.id, SubmissionDef.id)
            .join(
                SubmissionDef,
                and_(SubmissionDef.submission_id == Submission.id, SubmissionDef.current),
            )
            .join(
                DatasetFormDef,
                and_(
                    DatasetFormDef.form_def_id == SubmissionDef.form_def_id,
                    DatasetFormDef.dataset_id == dataset_id,
                ),
            )
            .join(Form, Form.id == Submission.form_id)
            .where(
                Submission.draft.is_(False),
                Submission.deleted_at.is_(None),
                Form.deleted_at.is_(None),
                or_(Submission.review_state.is_(None), Submission.review_state.in_(_UNREVIEWED)),
                ~made.exists(),
            )
            .order_by(Submission.id)
        )
    ).all()
    if not rows:
        return []
    refused = await db.execute(
        select(Audit.details).where(
            Audit.action == "entity.error",
            Audit.target_kind == "submission",
            Audit.target_id.in_([submission_id for submission_id, _ in rows]),
        )
    )
    refused_defs = {json.loads(details or "{}").get("submissionDefId") for (details,) in refused}
    return [submission_id for submission_id, def_id in rows if def_id not in refused_defs]


async def dataset_counts(db: AsyncSession, project_ids: list[int]) -> dict[int, int]:
    """Published entity lists per project (extended project metadata)."""
    if not project_ids:
        return {}
    rows = await db.execute(
        select(Dataset.project_id, func.count())
        .where(Dataset.project_id.in_(project_ids), Dataset.published_at.is_not(None))
        .group_by(Dataset.project_id)
    )
    return {row[0]: row[1] for row in rows}
