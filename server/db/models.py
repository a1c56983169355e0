"""Tables. Alembic migrations in ``server/migrations`` create exactly these.

Conventions: integer surrogate keys, timestamps in UTC (timezone-aware), soft
deletion through ``deleted_at`` where Central offers restore, and raw bytes
(XForms, submission XML, compiled schemas) in ``LargeBinary`` columns because they
are small and always read together with their row. Large files live in the
BlobStore and are referenced by sha256.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = DateTime(timezone=True)
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Actor(Base):
    """Anyone who can act: web users, app users (Central's field keys), public links."""

    __tablename__ = "actors"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # user | field_key | public_link
    display_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)


class User(Base):
    __tablename__ = "users"
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # MD5(email:realm:password), only kept where a deployment enables Digest sign-in.
    digest_ha1: Mapped[str | None] = mapped_column(String(32))


class Session(Base):
    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)


class FieldKey(Base):
    """An app user: a project-bound actor that authenticates with a token in the URL.

    The token is never stored: it is derived from the deployment's secret key and
    ``token_nonce`` so that it can be shown again (QR code), and looked up by hash.
    """

    __tablename__ = "field_keys"
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("actors.id"))
    token_nonce: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # Keys pseudonyms of personal data in exports; stable for the project's life.
    pseudonym_secret: Mapped[str] = mapped_column(String(64))
    # Months the answers marked personal are kept before `homeward retention`
    # pseudonymises them in place; null keeps them.
    retention_months: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    system: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    verbs: Mapped[str] = mapped_column(Text)  # JSON list
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class Assignment(Base):
    """A role held by an actor over the whole site, a project, or one form."""

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), index=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    form_id: Mapped[int | None] = mapped_column(ForeignKey("forms.id"))
    __table_args__ = (
        UniqueConstraint("actor_id", "role_id", "project_id", "form_id", name="uq_assignment"),
    )


class Blob(Base):
    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    md5: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class Form(Base):
    __tablename__ = "forms"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    xml_form_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open|closing|closed
    # No foreign keys here: forms and form_defs point at each other, and a cycle of
    # constraints would make every insert and delete order-sensitive.
    current_def_id: Mapped[int | None] = mapped_column(BigInteger)
    draft_def_id: Mapped[int | None] = mapped_column(BigInteger)
    # The nonce of the draft's test token, not the token: the token is derived from
    # it and the deployment secret (server.auth.derive_draft_token), as app users'
    # are, so the database alone opens no draft.
    draft_token: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (UniqueConstraint("project_id", "xml_form_id", name="uq_forms_project_xmlid"),)


class FormDef(Base):
    """One version (or the draft) of a form: the exact XForm bytes Collect downloads."""

    __tablename__ = "form_defs"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    version: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(255))
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    md5: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    xlsx_blob: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    xlsx_name: Mapped[str | None] = mapped_column(String(255))
    schema: Mapped[bytes] = mapped_column(LargeBinary)  # msgspec JSON of forms.schema
    public_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    published_at: Mapped[datetime | None] = mapped_column(Timestamp)


class FormAttachment(Base):
    __tablename__ = "form_attachments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_def_id: Mapped[int] = mapped_column(ForeignKey("form_defs.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # image | audio | video | file
    blob_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    # An entity list served in place of a file (Central links `<dataset>.csv` by name).
    dataset_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The type this upload declared (the blob row keeps the first upload's of those
    # bytes, perhaps in another project); None for rows from before migration 0008.
    content_type: Mapped[str | None] = mapped_column(String(255))
    __table_args__ = (UniqueConstraint("form_def_id", "name", name="uq_form_attachments_name"),)


_LIVE = text("deleted_at IS NULL")


class Submission(Base):
    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    instance_id: Mapped[str] = mapped_column(String(255))
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    submitter_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    device_id: Mapped[str | None] = mapped_column(String(255))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    review_state: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # When the project's retention pseudonymised its personal answers in place.
    personal_expired_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (
        UniqueConstraint("form_id", "draft", "instance_id", name="uq_submissions_instance"),
        # Only submissions not deleted, which every listing reads; with the
        # submission date (and deleted_at) in them, SQLite counts and filters on
        # the date from the index alone (migration 0005 says more).
        Index(
            "ix_submissions_live",
            "form_id",
            "draft",
            "id",
            "created_at",
            "deleted_at",
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        Index(
            "ix_submissions_live_by_date",
            "form_id",
            "draft",
            "created_at",
            "id",
            "deleted_at",
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
    )


class SubmissionDef(Base):
    """One version of a submission: the first one, then one per edit (deprecatedID)."""

    __tablename__ = "submission_defs"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    form_def_id: Mapped[int] = mapped_column(ForeignKey("form_defs.id"))
    # Indexed: ingest looks up every incoming instanceID among the stored versions.
    instance_id: Mapped[str] = mapped_column(String(255), index=True)
    deprecated_id: Mapped[str | None] = mapped_column(String(255))
    instance_name: Mapped[str | None] = mapped_column(Text)
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    xml_sha256: Mapped[str] = mapped_column(String(64))
    record: Mapped[bytes] = mapped_column(LargeBinary)  # parsed answers, msgspec JSON
    # The OData row's fields as ingest wrote them, and the key of the form shape
    # they were written for (exports.odata.rendered); null for encrypted versions.
    odata_shape: Mapped[str | None] = mapped_column(String(32))
    odata_row: Mapped[bytes | None] = mapped_column(LargeBinary)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    submitter_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    device_id: Mapped[str | None] = mapped_column(String(255))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class SubmissionAttachment(Base):
    __tablename__ = "submission_attachments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    submission_def_id: Mapped[int] = mapped_column(ForeignKey("submission_defs.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    blob_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    # As FormAttachment.content_type.
    content_type: Mapped[str | None] = mapped_column(String(255))
    __table_args__ = (
        UniqueConstraint("submission_def_id", "name", name="uq_submission_attachments_name"),
    )


class Audit(Base):
    __tablename__ = "audits"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_kind: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[str | None] = mapped_column(Text)  # JSON
    logged_at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class Comment(Base):
    """A reviewer's note on a submission (Central's comments)."""

    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class PublicLink(Base):
    """A public link to one form: an actor holding the pub-link role on that form.

    Like an app user's, its token is derived from the deployment secret and
    ``token_nonce`` and only its sha256 is stored.
    """

    __tablename__ = "public_links"
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    once: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    token_nonce: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class Dataset(Base):
    """An entity list (ODK Entities): declared by a form's entities sheet or the API."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(255))
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    # Null while only drafts declare the list: it then exists for no one but its forms.
    published_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),)


class DatasetProperty(Base):
    __tablename__ = "dataset_properties"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    published_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (UniqueConstraint("dataset_id", "name", name="uq_dataset_properties_name"),)


class DatasetFormDef(Base):
    """A form version that fills a dataset, and which of its fields go to which property."""

    __tablename__ = "dataset_form_defs"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    form_def_id: Mapped[int] = mapped_column(ForeignKey("form_defs.id"), index=True)
    # JSON: {"property": "/field/path"} and ["create", "update"].
    properties: Mapped[str] = mapped_column(Text)
    actions: Mapped[str] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("dataset_id", "form_def_id", name="uq_dataset_form_defs"),)


class EntityRow(Base):
    """One entity (case) of a dataset, with its current version's label and data inline,
    so that serving the list to Collect reads one table."""

    __tablename__ = "entities"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    uuid: Mapped[str] = mapped_column(String(36))
    label: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # msgspec JSON {property: value}
    current_def_id: Mapped[int] = mapped_column(BigInteger)
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    conflict: Mapped[str | None] = mapped_column(String(8))  # soft | hard
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The list's CSV line as the last create or update rendered it, and the key of
    # the properties it was rendered for (server.services.entity_lists.stored_line).
    csv_key: Mapped[str | None] = mapped_column(String(16))
    csv_line: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("dataset_id", "uuid", name="uq_entities_dataset_uuid"),
        # The list Collect downloads, and its fingerprint, read live rows in id order.
        Index("ix_entities_dataset_live", "dataset_id", "deleted_at", "id", "current_def_id"),
    )


class EntityDef(Base):
    """One version of an entity: the first, then one per update."""

    __tablename__ = "entity_defs"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # all properties after this version
    data_received: Mapped[bytes] = mapped_column(LargeBinary)  # what this version sent
    base_version: Mapped[int | None] = mapped_column(Integer)
    trunk_version: Mapped[int | None] = mapped_column(Integer)
    branch_id: Mapped[str | None] = mapped_column(String(255))
    branch_base_version: Mapped[int | None] = mapped_column(Integer)
    conflicting_properties: Mapped[str | None] = mapped_column(Text)  # JSON list
    source_submission_def_id: Mapped[int | None] = mapped_column(
        ForeignKey("submission_defs.id"), index=True
    )
    source: Mapped[str | None] = mapped_column(Text)  # JSON, e.g. a bulk upload's name
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    current: Mapped[bool] = mapped_column(Boolean, default=True)


class EntityBacklog(Base):
    """An offline update that arrived before the versions it builds on (held, then applied)."""

    __tablename__ = "entity_backlog"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    uuid: Mapped[str] = mapped_column(String(36))
    branch_id: Mapped[str] = mapped_column(String(255))
    branch_base_version: Mapped[int] = mapped_column(Integer)
    submission_def_id: Mapped[int] = mapped_column(ForeignKey("submission_defs.id"))
    action: Mapped[bytes] = mapped_column(LargeBinary)  # msgspec JSON of forms.entities
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    __table_args__ = (Index("ix_entity_backlog_branch", "dataset_id", "uuid", "branch_id"),)


class CleaningEntry(Base):
    """One entry of a form's cleaning log (exports.cleaning): never applied to the stored data.

    ``field`` is the answer's path ("/plot[2]/crop"); null removes the whole
    submission from cleaned exports. ``instance_id`` is the submission's, kept
    here because exports and the log's CSV name submissions by it.
    """

    __tablename__ = "cleaning_entries"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    instance_id: Mapped[str] = mapped_column(String(255))
    field: Mapped[str | None] = mapped_column(String(1024))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    # "manual", "upload", "check:<kind>" (an accepted suggestion).
    source: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class AnalysisCopy(Base):
    """A form's analysis copy: how far it reaches and who is extending it.

    The copy itself is Parquet segments in the BlobStore (services.analysis);
    it is derived data, rebuilt from the row store whenever its layout no
    longer matches the form's fields.
    """

    __tablename__ = "analysis_copies"
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), primary_key=True)
    # Key of the tables and columns the segments were written with.
    layout: Mapped[str] = mapped_column(String(32))
    # Every submission with a smaller or equal id is in a segment (or a draft).
    copied_through: Mapped[int] = mapped_column(BigInteger, default=0)
    # A process extending the copy holds it until then; an expired claim is free.
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)


class AnalysisSegment(Base):
    """One Parquet file per table of the form, for a run of submission ids."""

    __tablename__ = "analysis_segments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    # Part of the object names; unique per form.
    number: Mapped[int] = mapped_column(Integer)
    first_submission_id: Mapped[int] = mapped_column(BigInteger)
    last_submission_id: Mapped[int] = mapped_column(BigInteger)
    submissions: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    __table_args__ = (UniqueConstraint("form_id", "number", name="uq_analysis_segments_number"),)


class ExportRun(Base):
    """An export asked for as a job: any app process runs it, its file is kept a while."""

    __tablename__ = "export_runs"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    format: Mapped[str] = mapped_column(String(16))
    # What was asked (services.export_runs.ExportRequest, msgspec JSON), already
    # checked and with the personal-data decision made for whoever asked.
    request: Mapped[bytes] = mapped_column(LargeBinary)
    # queued, running, done, failed or expired.
    state: Mapped[str] = mapped_column(String(16))
    total: Mapped[int | None] = mapped_column(BigInteger)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    size: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)


class CheckFinding(Base):
    """A data check's finding on one answer or submission (exports.checks), kept for a decision.

    One row per (form, submission, check, answer): ``field_key`` is ``field`` or
    "" for a whole submission, so a finding accepted or dismissed once is never
    found again. Accepting writes a cleaning entry (``cleaning_entry_id``).
    """

    __tablename__ = "check_findings"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    instance_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    # "/household[2]/age"; null: the whole submission (a duplicate, a short interview).
    field: Mapped[str | None] = mapped_column(String(1024))
    field_key: Mapped[str] = mapped_column(String(1024))
    repeat_key: Mapped[str | None] = mapped_column(String(1300))
    value: Mapped[str | None] = mapped_column(Text)
    suggested_value: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    # Other submissions' instance ids, JSON.
    related: Mapped[str] = mapped_column(Text)
    # open, accepted or dismissed.
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    decided_at: Mapped[datetime | None] = mapped_column(Timestamp)
    dismiss_reason: Mapped[str | None] = mapped_column(Text)
    cleaning_entry_id: Mapped[int | None] = mapped_column(ForeignKey("cleaning_entries.id"))
    __table_args__ = (
        UniqueConstraint(
            "form_id", "instance_id", "kind", "field_key", name="uq_check_findings_target"
        ),
        Index("ix_check_findings_form_status", "form_id", "status"),
    )


class FormChecks(Base):
    """A form's check settings (null: the defaults) and how far the automatic checks reached.

    ``checked_through`` is the highest submission id checked; work is claimed
    with ``claimed_until`` as the analysis copy's is.
    """

    __tablename__ = "form_checks"
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), primary_key=True)
    # exports.checks.CheckSettings as JSON.
    settings: Mapped[bytes | None] = mapped_column(LargeBinary)
    checked_through: Mapped[int] = mapped_column(BigInteger, default=0)
    # Not checked again before this: a run over a large form paces the next one.
    due_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
