"""Central's documented answers, written down as msgspec structs, and the runner that
checks a route against them.

Each route gets a :class:`Contract`: one request that must succeed (status and
JSON shape, or status and content type for files) and one that must fail (status
and Central's problem code). Shapes follow Central's ``docs/api.yaml``: field
names and JSON types, required fields required, unknown fields allowed (Central
adds fields over time and clients ignore them). Decoding is msgspec's strict
mode, so an ``int`` sent as a string, a missing key or a wrong ``null`` fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
import msgspec
from msgspec import Meta

from tests.server.test_authorisation import Ctx, Fresh, url_of

# ISO 8601 in UTC as Central writes it (toISOString: milliseconds, "Z").
Iso = Annotated[str, Meta(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")]


class Shape(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """A documented response object: unknown keys pass, required keys must be there."""


class Problem(Shape):
    code: float
    message: str
    details: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class Success(Shape):
    success: bool


class Erasure(Shape):
    """Homeward's answer to an erasure (no Central counterpart)."""

    submissions: int
    files: int


class Session(Shape):
    token: str
    created_at: Iso
    expires_at: Iso


class Actor(Shape):
    id: int
    type: Literal["user", "field_key", "public_link", "singleUse"]
    display_name: str
    created_at: Iso
    updated_at: Iso | None
    deleted_at: Iso | None


class User(Actor):
    email: str


class Preferences(Shape):
    site: dict[str, Any]
    projects: dict[str, Any]


class ExtendedUser(User):
    verbs: list[str]
    preferences: Preferences


class AppUser(Actor):
    token: str | None
    project_id: int


class Role(Shape):
    id: int
    name: str
    system: str
    verbs: list[str]
    created_at: Iso
    updated_at: Iso | None


class Assignment(Shape):
    actor_id: int
    role_id: int


class FormSummaryAssignment(Shape):
    actor_id: int
    xml_form_id: str
    role_id: int


class ExtendedFormSummaryAssignment(Shape):
    actor: Actor
    xml_form_id: str
    role_id: int


class Project(Shape):
    id: int
    name: str
    description: str | None
    key_id: int | None
    archived: bool | None
    created_at: Iso
    updated_at: Iso | None


class ExtendedProject(Project):
    app_users: int
    forms: int
    last_submission: Iso | None
    datasets: int


class ExtendedProjectWithVerbs(ExtendedProject):
    verbs: list[str]


FormState = Literal["open", "closing", "closed"]


class Form(Shape):
    project_id: int
    xml_form_id: str
    name: str | None
    version: str
    enketo_id: str | None
    hash: str
    key_id: int | None
    state: FormState
    published_at: Iso | None
    created_at: Iso
    updated_at: Iso | None


class ReviewStateCounts(Shape):
    received: int
    has_issues: int
    edited: int


class ExtendedForm(Form):
    submissions: int
    review_states: ReviewStateCounts
    last_submission: Iso | None
    created_by: Actor | None
    excel_content_type: str | None
    entity_related: bool
    public_links: int


class DraftForm(Form):
    draft_token: str


class DeletedForm(Form):
    id: int
    deleted_at: Iso


class FormAttachment(Shape):
    name: str
    type: Literal["image", "audio", "video", "file"]
    exists: bool
    blob_exists: bool
    dataset_exists: bool
    updated_at: Iso | None


class Field(Shape):
    name: str
    path: str
    type: str
    binary: bool | None


ReviewState = Literal["hasIssues", "edited", "approved", "rejected"]


class SubmissionVersion(Shape):
    instance_id: str
    instance_name: str | None
    submitter_id: int
    device_id: str | None
    user_agent: str | None
    created_at: Iso
    current: bool


class ExtendedSubmissionVersion(SubmissionVersion):
    submitter: Actor
    form_version: str


class Submission(Shape):
    instance_id: str
    submitter_id: int
    device_id: str | None
    user_agent: str | None
    review_state: ReviewState | None
    created_at: Iso
    updated_at: Iso | None


class ExtendedSubmission(Submission):
    submitter: Actor


class SubmissionAttachment(Shape):
    name: str
    exists: bool


class DiffValue(Shape):
    new: Any
    old: Any
    path: list[str | int]


class Comment(Shape):
    body: str
    actor_id: int


class CleaningEntry(Shape):
    """Homeward's cleaning log entry (no Central counterpart)."""

    id: int | None
    instance_id: str
    field: str | None
    old_value: str | None
    new_value: str | None
    reason: str
    who: str | None
    created_at: Iso
    source: str


class ExportJob(Shape):
    """Homeward's export job (no Central counterpart): its state and progress."""

    id: int
    format: str
    state: str
    total: int | None
    done: int
    size: int | None
    created_at: Iso
    file_name: str


class Finding(Shape):
    """Homeward's stored finding of a data check (no Central counterpart)."""

    id: int
    instance_id: str
    kind: str
    field: str | None
    repeat_key: str | None
    value: str | None
    suggested_value: str | None
    message: str
    related: list[str]
    status: str
    created_at: Iso
    decided_by: str | None
    decided_at: Iso | None
    dismiss_reason: str | None
    cleaning_entry_id: int | None


class AcceptedFinding(Shape):
    finding: Finding
    entry: CleaningEntry


class CheckRun(Shape):
    checked: int
    added: int
    not_evaluated: list[dict[str, Any]]


class StoredCheckSettings(Shape):
    stored: bool
    settings: dict[str, Any]


class CheckReport(Shape):
    checked: int
    suggestions: list[dict[str, Any]]
    not_evaluated: list[dict[str, Any]]


class ExtendedComment(Comment):
    actor: Actor


class Audit(Shape):
    actor_id: int | None
    action: str
    actee_id: str | None
    details: dict[str, Any] | None
    logged_at: Iso


class ExtendedAudit(Audit):
    actor: Actor | None
    actee: dict[str, Any] | None


class Key(Shape):
    id: int
    public: str
    managed: bool
    hint: str | None


class PublicLink(Actor):
    token: str | None
    once: bool


class ExtendedPublicLink(PublicLink):
    created_by: Actor


class ODataCollection(Shape):
    name: str
    kind: str
    url: str


class ODataService(msgspec.Struct, forbid_unknown_fields=False):
    context: str = msgspec.field(name="@odata.context")
    value: list[ODataCollection]


class ODataRows(msgspec.Struct, forbid_unknown_fields=False):
    context: str = msgspec.field(name="@odata.context")
    value: list[dict[str, Any]]


# -- requests and what must come back -------------------------------------------

Body = Callable[[Ctx], dict[str, Any]]
XML_TYPES = ("text/xml", "application/xml")
JSON_ANSWER: tuple[str, ...] = ("application/json",)


@dataclass(frozen=True, kw_only=True)
class _Call:
    """How a case calls its route: as whom, with which path values, body and options."""

    caller: str = "admin"
    values: dict[str, str] = field(default_factory=dict)
    body: Body | None = None
    fresh: Fresh | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ok(_Call):
    """The success case: ``shape`` is a type to decode the JSON into, the content
    types a file answer may carry, or None for an answer without a body (HEAD)."""

    status: int
    shape: Any


@dataclass(frozen=True)
class Fail(_Call):
    """The failure case: Central's problem ``code`` (its status is the integer part).
    ``xml`` marks OpenRosa routes, which answer Collect in XML."""

    code: float
    xml: bool = False


@dataclass(frozen=True)
class Contract:
    method: str
    path: str
    ok: Ok
    fail: Fail

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def ids(contracts: list[Contract]) -> list[str]:
    return [c.id for c in contracts]


async def send(ctx: Ctx, contract: Contract, case: Ok | Fail) -> httpx.Response:
    values = dict(ctx.values)
    if case.fresh is not None:
        values |= await case.fresh(ctx)
    values |= case.values
    saved, ctx.values = ctx.values, values
    try:
        request = case.body(ctx) if case.body else {}
    finally:
        ctx.values = saved
    headers = ctx.headers[case.caller] | case.headers | request.pop("headers", {})
    response = await ctx.client.request(
        contract.method,
        url_of(contract.path, values),
        headers=headers,
        params=case.params or None,
        **request,
    )
    ctx.client.cookies.clear()  # a web sign-in's cookie must not sign in the next case
    return response


def content_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";")[0].strip()


async def check_success(ctx: Ctx, contract: Contract) -> None:
    case = contract.ok
    response = await send(ctx, contract, case)
    shown = f"{contract.id}: {response.status_code} {response.text[:300]}"
    if case.shape is None:  # HEAD: the status is the answer
        assert response.status_code == case.status, shown
        assert response.content == b"", shown
        return
    if isinstance(case.shape, tuple):
        if response.status_code == 307 and case.status == 200:
            # A file on S3: the answer is a presigned URL (docs/compatibility.md).
            async with httpx.AsyncClient() as direct:
                response = await direct.get(response.headers["location"])
        assert response.status_code == case.status, shown
        assert content_type(response) in case.shape, f"{shown} ({content_type(response)})"
        return
    assert response.status_code == case.status, shown
    assert content_type(response) == "application/json", shown
    try:
        msgspec.json.decode(response.content, type=case.shape, strict=True)
    except msgspec.ValidationError as error:
        raise AssertionError(f"{contract.id}: {error}\n{response.text[:600]}") from None


async def check_failure(ctx: Ctx, contract: Contract) -> None:
    case = contract.fail
    response = await send(ctx, contract, case)
    shown = f"{contract.id}: {response.status_code} {response.text[:300]}"
    assert response.status_code == int(case.code), shown
    if contract.method == "HEAD":  # no body to read the problem from
        return
    if case.xml:
        assert content_type(response) in XML_TYPES, shown
        assert b"<OpenRosaResponse" in response.content, shown
        return
    assert content_type(response) == "application/json", shown
    try:
        problem = msgspec.json.decode(response.content, type=Problem, strict=True)
    except msgspec.ValidationError as error:
        raise AssertionError(f"{contract.id}: {error}\n{response.text[:600]}") from None
    assert problem.code == case.code, shown
