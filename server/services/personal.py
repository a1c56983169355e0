"""The personal-data policy: what one caller gets of one form's personal answers.

Every route that sends submission content asks :func:`personal_view` and sends
what the view gives: exports (columns and `media/`), the OData feed, submission
and version XML, diffs, instance names and attachments. Those who run the
project (managers, site administrators) read personal answers as they are;
everyone else who may read submissions (viewers, and any role that gains
`submission.read` later) gets keyed pseudonyms, or nothing where a stand-in
would not fit, and the files of personal questions are refused.

A read of personal answers in clear writes one audit entry per request
(`submission.personal.read`): who, when and what was read, never the values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exports.options import PersonalMode
from forms.personal import (
    INSTANCE_NAME,
    PersonalFields,
    mask_properties,
    mask_record,
    mask_xml,
    personal_fields,
    personal_file_names,
)
from server import problems
from server.auth import Principal
from server.db.models import Dataset, DatasetFormDef, Form, FormDef, Project
from server.runtime import Runtime
from server.services.audit import record
from server.services.forms import schema_by_id

__all__ = [
    "PERSONAL_READ",
    "EntityView",
    "PersonalView",
    "audit_entity_read",
    "audit_personal_read",
    "dataset_personal_properties",
    "entity_view",
    "form_personal_fields",
    "may_see_personal",
    "personal_view",
    "record_entity_read",
]

PERSONAL_READ = "submission.personal.read"

_decode_record = msgspec.json.Decoder(dict[str, object]).decode


def may_see_personal(principal: Principal, project_id: int) -> bool:
    """Those who run the project (managers, administrators) read personal answers."""
    return principal.can("project.update", project_id=project_id)


@dataclass(frozen=True, slots=True)
class PersonalView:
    """One caller's view of one form's personal answers."""

    fields: PersonalFields
    clear: bool
    key: bytes

    @property
    def masked(self) -> bool:
        """Whether this caller's answers need rewriting at all."""
        return self.fields.any and not self.clear

    @property
    def reads_clear(self) -> bool:
        """Whether sending this caller the form's answers is a read to audit."""
        return self.fields.any and self.clear

    def record(self, answers: Mapping[str, object]) -> dict[str, object]:
        if not self.masked:
            return dict(answers)
        return mask_record(answers, self.fields, self.key)

    def xml(self, xml: bytes) -> bytes:
        return mask_xml(xml, self.fields, self.key) if self.masked else xml

    def instance_name(self, name: str | None) -> str | None:
        """Withheld when computed from personal answers (a pseudonym of the whole would
        still be unique per person, and the name's parts cannot be told apart)."""
        return None if self.masked and self.fields.covers(INSTANCE_NAME) else name

    def check_attachment(self, stored_record: bytes, name: str) -> bool:
        """Whether `name` answers a personal question (403 for a caller who may not see it)."""
        if not self.fields.binary:
            return False
        personal = name in personal_file_names(_decode_record(stored_record), self.fields)
        if personal and self.masked:
            raise problems.personal_attachment_forbidden()
        return personal

    def personal_files(self, stored_record: bytes) -> frozenset[str]:
        """The files of one version that answer personal questions."""
        if not self.fields.binary:
            return frozenset()
        return personal_file_names(_decode_record(stored_record), self.fields)

    def files_left_out(self, mode: PersonalMode) -> Callable[[bytes], frozenset[str]] | None:
        """What an export's `media/` leaves out: personal files unless kept (None: nothing)."""
        return self.personal_files if mode != "keep" and self.fields.binary else None

    def entity_properties(
        self, properties: Mapping[str, str], personal: frozenset[str]
    ) -> dict[str, str]:
        """Entity properties saved from personal fields (`personal` names them), as shown."""
        if self.clear:
            return dict(properties)
        return mask_properties(properties, personal, self.key)

    def export_mode(self, asked: PersonalMode | None) -> PersonalMode:
        """The export's personal option: keep is refused (403) to those who may not see."""
        mode = asked or ("keep" if self.clear else "pseudonymise")
        if mode == "keep" and not self.clear:
            raise problems.personal_data_forbidden()
        return mode


async def form_personal_fields(db: AsyncSession, form_id: int) -> PersonalFields:
    """The form's personal paths over all its versions (drafts included)."""
    rows = (
        await db.execute(select(FormDef.id, FormDef.sha256).where(FormDef.form_id == form_id))
    ).all()
    return personal_fields([await schema_by_id(db, def_id, sha) for def_id, sha in rows])


async def personal_view(db: AsyncSession, principal: Principal, form: Form) -> PersonalView:
    secret = await db.scalar(select(Project.pseudonym_secret).where(Project.id == form.project_id))
    return PersonalView(
        fields=await form_personal_fields(db, form.id),
        clear=may_see_personal(principal, form.project_id),
        key=(secret or "").encode(),
    )


async def audit_personal_read(
    rt: Runtime, principal: Principal, form: Form, what: str, **details: Any
) -> None:
    """Record that `principal` read `form`'s personal answers in clear (never the values)."""
    async with rt.transaction() as db:
        await record(
            db,
            principal.actor_id,
            PERSONAL_READ,
            "form",
            form.id,
            {"xmlFormId": form.xml_form_id, "read": what, **details},
        )


@dataclass(frozen=True, slots=True)
class EntityView:
    """One caller's view of one entity list: properties saved from personal fields
    are pseudonymised for those below manager (the label is the intake form's
    choice and is shown as it is)."""

    view: PersonalView
    # The dataset's properties whose `saveto` field is personal in a form that fills it.
    personal: frozenset[str]

    @property
    def masked(self) -> bool:
        return bool(self.personal) and not self.view.clear

    @property
    def reads_clear(self) -> bool:
        return bool(self.personal) and self.view.clear

    @property
    def key(self) -> bytes:
        return self.view.key

    def data(self, properties: Mapping[str, str]) -> dict[str, str]:
        if not self.masked:
            return dict(properties)
        return self.view.entity_properties(properties, self.personal)

    def value(self, name: str, value: str | None) -> str | None:
        """One property's value (`label` and the rest as they are)."""
        if value is None or not self.masked or name not in self.personal:
            return value
        return self.data({name: value})[name]

    def check_query(self, filter_text: str | None, search: str | None) -> None:
        """A masked caller may not narrow the list by personal values (an oracle)."""
        if not self.masked:
            return
        if search or (filter_text and any(name in filter_text for name in self.personal)):
            raise problems.personal_data_forbidden()


async def dataset_personal_properties(db: AsyncSession, dataset_id: int) -> frozenset[str]:
    """Properties saved from a field marked personal in any version of a form filling the list."""
    rows = (
        await db.execute(
            select(FormDef.id, FormDef.sha256, FormDef.form_id)
            .join(DatasetFormDef, DatasetFormDef.form_def_id == FormDef.id)
            .where(DatasetFormDef.dataset_id == dataset_id)
        )
    ).all()
    fields_of: dict[int, PersonalFields] = {}
    personal: set[str] = set()
    for def_id, sha, form_id in rows:
        declaration = (await schema_by_id(db, def_id, sha)).entity
        if declaration is None:
            continue
        if form_id not in fields_of:
            fields_of[form_id] = await form_personal_fields(db, form_id)
        fields = fields_of[form_id]
        personal.update(n for n, path in declaration.properties.items() if fields.covers(path))
    return frozenset(personal)


async def entity_view(
    db: AsyncSession, principal: Principal | None, dataset: Dataset
) -> EntityView:
    secret = await db.scalar(
        select(Project.pseudonym_secret).where(Project.id == dataset.project_id)
    )
    clear = principal is not None and may_see_personal(principal, dataset.project_id)
    view = PersonalView(fields=PersonalFields(), clear=clear, key=(secret or "").encode())
    return EntityView(view, await dataset_personal_properties(db, dataset.id))


async def audit_entity_read(
    rt: Runtime, principal: Principal | None, dataset: Dataset, what: str
) -> None:
    """Record a read in clear of an entity list's personal properties (never the values)."""
    async with rt.transaction() as db:
        await record_entity_read(db, principal, dataset, what)


async def record_entity_read(
    db: AsyncSession, principal: Principal | None, dataset: Dataset, what: str
) -> None:
    """The same, within a unit of work already writing."""
    await record(
        db,
        principal.actor_id if principal is not None else None,
        PERSONAL_READ,
        "dataset",
        dataset.id,
        {"dataset": dataset.name, "read": what},
    )
