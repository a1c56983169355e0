"""Central's JSON shapes, as msgspec structs (camelCase on the wire)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec


class ApiModel(msgspec.Struct, rename="camel"):
    """Base of every response body: camelCase keys, ``null`` kept (pyodk wants the keys)."""


class ApiInput(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """Base of request bodies. Unknown keys are ignored, as Central does."""


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SessionOut(ApiModel):
    token: str
    created_at: str
    expires_at: str


class SessionIn(ApiInput):
    email: str
    password: str


class ActorOut(ApiModel):
    id: int
    type: str
    display_name: str
    created_at: str
    updated_at: str | None
    deleted_at: str | None


class UserOut(ActorOut):
    email: str
    # GET /v1/users/current with X-Extended-Metadata: true only.
    verbs: list[str] | msgspec.UnsetType = msgspec.UNSET
    preferences: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class AppUserOut(ActorOut):
    token: str | None
    project_id: int
    created_by: int


class AppUserIn(ApiInput):
    display_name: str


class ProjectOut(ApiModel):
    id: int
    name: str
    description: str | None
    archived: bool
    key_id: None
    created_at: str
    updated_at: str | None
    deleted_at: str | None
    # Homeward: months personal answers are kept (null: kept until deleted).
    retention_months: int | None = None
    # With X-Extended-Metadata: true only.
    app_users: int | msgspec.UnsetType = msgspec.UNSET
    forms: int | msgspec.UnsetType = msgspec.UNSET
    last_submission: str | msgspec.UnsetType | None = msgspec.UNSET
    datasets: int | msgspec.UnsetType = msgspec.UNSET
    verbs: list[str] | msgspec.UnsetType = msgspec.UNSET
    # With ?forms=true only: the forms the caller may see, in their extended shape.
    form_list: list[FormOut] | msgspec.UnsetType = msgspec.UNSET


class ProjectIn(ApiInput):
    name: str
    description: str | None = None


# Retention of personal answers, in months (100 years at most).
RetentionMonths = Annotated[int, msgspec.Meta(ge=1, le=1200)]


class ProjectPatch(ApiInput):
    name: str | None = None
    description: str | None = None
    archived: bool | None = None
    # Homeward: months personal answers are kept; null turns retention off.
    retention_months: RetentionMonths | msgspec.UnsetType | None = msgspec.UNSET


class FormAssignmentIn(ApiInput):
    role_id: int
    actor_id: int


class ProjectFormIn(ApiInput):
    xml_form_id: str
    state: str | None = None
    assignments: list[FormAssignmentIn] | None = None


class ProjectPut(ApiInput):
    name: str
    description: str | None = None
    archived: bool | None = None
    forms: list[ProjectFormIn] | None = None


class FormOut(ApiModel):
    project_id: int
    xml_form_id: str
    name: str | None
    version: str
    enketo_id: None
    enketo_once_id: None
    hash: str
    key_id: None
    state: str
    created_at: str
    updated_at: str | None
    published_at: str | None
    entity_related: bool = False
    webforms_enabled: bool = False
    # Only on drafts: the token of the draft's test URLs (/v1/test/{draftToken}/...).
    draft_token: str | None = None
    # Only on deleted forms (?deleted=true): the id POST .../forms/{id}/restore takes.
    id: int | msgspec.UnsetType = msgspec.UNSET
    deleted_at: str | msgspec.UnsetType | None = msgspec.UNSET
    # With X-Extended-Metadata: true only.
    submissions: int | msgspec.UnsetType = msgspec.UNSET
    last_submission: str | msgspec.UnsetType | None = msgspec.UNSET
    review_states: ReviewStatesOut | msgspec.UnsetType = msgspec.UNSET
    created_by: ActorOut | msgspec.UnsetType | None = msgspec.UNSET
    excel_content_type: str | msgspec.UnsetType | None = msgspec.UNSET
    public_links: int | msgspec.UnsetType = msgspec.UNSET


class ReviewStatesOut(ApiModel):
    received: int = 0
    has_issues: int = 0
    edited: int = 0


class FormPatch(ApiInput):
    state: str | None = None


class FormAttachmentOut(ApiModel):
    name: str
    type: str
    exists: bool
    blob_exists: bool
    dataset_exists: bool
    updated_at: str | None
    hash: str | None = None


class SubmissionVersionOut(ApiModel):
    instance_id: str
    instance_name: str | None
    submitter_id: int | None
    device_id: str | None
    user_agent: str | None
    created_at: str
    current: bool
    form_version: str | None = None
    # With X-Extended-Metadata: true only.
    submitter: ActorOut | msgspec.UnsetType = msgspec.UNSET


class SubmissionOut(ApiModel):
    instance_id: str
    submitter_id: int | None
    device_id: str | None
    user_agent: str | None
    review_state: str | None
    created_at: str
    updated_at: str | None
    deleted_at: str | None
    current_version: SubmissionVersionOut | None = None
    # With X-Extended-Metadata: true only.
    submitter: ActorOut | msgspec.UnsetType = msgspec.UNSET
    form_version: str | msgspec.UnsetType = msgspec.UNSET


class ReviewPatch(ApiInput):
    review_state: str | None = None


class CommentIn(ApiInput):
    body: str


class CommentOut(ApiModel):
    body: str
    actor_id: int | None
    created_at: str
    actor: ActorOut | msgspec.UnsetType = msgspec.UNSET


class AuditOut(ApiModel):
    actor_id: int | None
    action: str
    actee_id: str | None
    details: dict[str, Any] | None
    logged_at: str
    actor: ActorOut | msgspec.UnsetType | None = msgspec.UNSET
    actee: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET


class SubmissionAttachmentOut(ApiModel):
    name: str
    exists: bool


class RoleOut(ApiModel):
    id: int
    name: str
    system: str
    verbs: list[str]
    created_at: str
    updated_at: str | None


class AssignmentOut(ApiModel):
    actor_id: int
    role_id: int


class Success(ApiModel):
    success: bool = True


class UserIn(ApiInput):
    email: str
    password: str | None = None
    display_name: str | None = None


class UserPatch(ApiInput):
    display_name: str | None = None
    email: str | None = None


class PasswordIn(ApiInput):
    old: str
    new: str


class PublicLinkOut(ActorOut):
    token: str | None
    once: bool
    # With X-Extended-Metadata: true only.
    created_by: ActorOut | msgspec.UnsetType | None = msgspec.UNSET


class PublicLinkIn(ApiInput):
    display_name: str
    once: bool = False


class FormAssignmentOut(ApiModel):
    actor_id: int | msgspec.UnsetType = msgspec.UNSET
    xml_form_id: str = ""
    role_id: int = 0
    # With X-Extended-Metadata: true the actor replaces actorId, as in Central.
    actor: ActorOut | msgspec.UnsetType = msgspec.UNSET


class KeyOut(ApiModel):
    id: int
    public: str
    managed: bool
    hint: str | None
    created_at: str


class FieldOut(ApiModel):
    name: str
    path: str
    type: str
    binary: bool | None = None
    select_multiple: bool | None = None
    # Homeward: the caller sees this field's answers masked (marked personal), so it
    # may not filter by them (403.1); only present when true.
    masked: bool | msgspec.UnsetType = msgspec.UNSET
