"""initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-23 04:46:20.438070
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Central's system roles as they stood when this migration was written; later
# changes to server/roles.py arrive in migrations of their own.
ROLES = [
    (1, "admin", "Administrator"),
    (2, "app-user", "App User"),
    (5, "manager", "Project Manager"),
    (6, "viewer", "Project Viewer"),
    (7, "form-viewer", "Form Viewer"),
    (8, "formfill", "Data Collector"),
    (9, "pub-link", "Public Link"),
]


def upgrade() -> None:

    op.create_table(
        "actors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actors")),
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("pseudonym_secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("verbs", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("system", name=op.f("uq_roles_system")),
    )
    op.create_table(
        "audits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=True),
        sa.Column("target_id", sa.BigInteger(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_audits_actor_id_actors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audits")),
    )
    with op.batch_alter_table("audits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audits_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audits_logged_at"), ["logged_at"], unique=False)

    op.create_table(
        "field_keys",
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("token_nonce", sa.String(length=64), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_field_keys_actor_id_actors")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["actors.id"], name=op.f("fk_field_keys_created_by_actors")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_field_keys_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("actor_id", name=op.f("pk_field_keys")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_field_keys_token_hash")),
    )
    with op.batch_alter_table("field_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_field_keys_project_id"), ["project_id"], unique=False)

    op.create_table(
        "forms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("xml_form_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("current_def_id", sa.BigInteger(), nullable=True),
        sa.Column("draft_def_id", sa.BigInteger(), nullable=True),
        sa.Column("draft_token", sa.String(length=64), nullable=True),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["actors.id"], name=op.f("fk_forms_created_by_actors")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_forms_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forms")),
        sa.UniqueConstraint("project_id", "xml_form_id", name="uq_forms_project_xmlid"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_sessions_actor_id_actors")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_actor_id"), ["actor_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("digest_ha1", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["actors.id"], name=op.f("fk_users_actor_id_actors")),
        sa.PrimaryKeyConstraint("actor_id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("form_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_assignments_actor_id_actors")
        ),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name=op.f("fk_assignments_form_id_forms")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_assignments_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_assignments_role_id_roles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint("actor_id", "role_id", "project_id", "form_id", name="uq_assignment"),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assignments_actor_id"), ["actor_id"], unique=False)

    op.create_table(
        "form_defs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("form_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("xml", sa.LargeBinary(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("xlsx_blob", sa.String(length=64), nullable=True),
        sa.Column("xlsx_name", sa.String(length=255), nullable=True),
        sa.Column("schema", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["form_id"], ["forms.id"], name=op.f("fk_form_defs_form_id_forms")),
        sa.ForeignKeyConstraint(
            ["xlsx_blob"], ["blobs.sha256"], name=op.f("fk_form_defs_xlsx_blob_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_defs")),
    )
    with op.batch_alter_table("form_defs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_form_defs_form_id"), ["form_id"], unique=False)

    op.create_table(
        "submissions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("form_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instance_id", sa.String(length=255), nullable=False),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column(
            "submitter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("review_state", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name=op.f("fk_submissions_form_id_forms")
        ),
        sa.ForeignKeyConstraint(
            ["submitter_id"], ["actors.id"], name=op.f("fk_submissions_submitter_id_actors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("form_id", "draft", "instance_id", name="uq_submissions_instance"),
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_submissions_form_listing", ["form_id", "draft", "id"], unique=False
        )

    op.create_table(
        "form_attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "form_def_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["blob_sha256"], ["blobs.sha256"], name=op.f("fk_form_attachments_blob_sha256_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["form_def_id"],
            ["form_defs.id"],
            name=op.f("fk_form_attachments_form_def_id_form_defs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_attachments")),
        sa.UniqueConstraint("form_def_id", "name", name="uq_form_attachments_name"),
    )
    with op.batch_alter_table("form_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_form_attachments_form_def_id"), ["form_def_id"], unique=False
        )

    op.create_table(
        "submission_defs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "submission_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "form_def_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("instance_id", sa.String(length=255), nullable=False),
        sa.Column("deprecated_id", sa.String(length=255), nullable=True),
        sa.Column("instance_name", sa.Text(), nullable=True),
        sa.Column("xml", sa.LargeBinary(), nullable=False),
        sa.Column("xml_sha256", sa.String(length=64), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column(
            "submitter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_def_id"], ["form_defs.id"], name=op.f("fk_submission_defs_form_def_id_form_defs")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_defs_submission_id_submissions"),
        ),
        sa.ForeignKeyConstraint(
            ["submitter_id"], ["actors.id"], name=op.f("fk_submission_defs_submitter_id_actors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_defs")),
    )
    with op.batch_alter_table("submission_defs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submission_defs_submission_id"), ["submission_id"], unique=False
        )

    op.create_table(
        "submission_attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "submission_def_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["blob_sha256"],
            ["blobs.sha256"],
            name=op.f("fk_submission_attachments_blob_sha256_blobs"),
        ),
        sa.ForeignKeyConstraint(
            ["submission_def_id"],
            ["submission_defs.id"],
            name=op.f("fk_submission_attachments_submission_def_id_submission_defs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_attachments")),
        sa.UniqueConstraint("submission_def_id", "name", name="uq_submission_attachments_name"),
    )
    with op.batch_alter_table("submission_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submission_attachments_submission_def_id"),
            ["submission_def_id"],
            unique=False,
        )
    roles = sa.table(
        "roles",
        sa.column("id", sa.Integer()),
        sa.column("system", sa.String()),
        sa.column("name", sa.String()),
        sa.column("verbs", sa.Text()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    from server.roles import ROLES_BY_ID

    now = datetime.now(UTC)
    op.bulk_insert(
        roles,
        [
            {
                "id": role_id,
                "system": system,
                "name": name,
                "verbs": json.dumps(sorted(ROLES_BY_ID[role_id].verbs)),
                "created_at": now,
            }
            for role_id, system, name in ROLES
        ],
    )


def downgrade() -> None:

    with op.batch_alter_table("submission_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_attachments_submission_def_id"))

    op.drop_table("submission_attachments")
    with op.batch_alter_table("submission_defs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_defs_submission_id"))

    op.drop_table("submission_defs")
    with op.batch_alter_table("form_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_attachments_form_def_id"))

    op.drop_table("form_attachments")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_submissions_form_listing")

    op.drop_table("submissions")
    with op.batch_alter_table("form_defs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_defs_form_id"))

    op.drop_table("form_defs")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignments_actor_id"))

    op.drop_table("assignments")
    op.drop_table("users")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_actor_id"))

    op.drop_table("sessions")
    op.drop_table("forms")
    with op.batch_alter_table("field_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_field_keys_project_id"))

    op.drop_table("field_keys")
    with op.batch_alter_table("audits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audits_logged_at"))
        batch_op.drop_index(batch_op.f("ix_audits_action"))

    op.drop_table("audits")
    op.drop_table("roles")
    op.drop_table("projects")
    op.drop_table("blobs")
    op.drop_table("actors")
