"""entity lists (ODK Entities): datasets, their properties, entities and versions

`entities` keeps its current version's label and data inline, so that the list
served to Collect is one scan of one table in id order; `entity_defs` keeps every
version. `entity_backlog` holds offline updates that arrived before the updates
they build on. A form attachment may point at a dataset instead of a blob.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:00:00.000000
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

# Verbs the roles gain for entity lists, by role id (admin, manager, viewer).
_READ = ["dataset.list", "dataset.read", "entity.list", "entity.read"]
_MANAGE = [
    *_READ,
    "dataset.create",
    "dataset.update",
    "entity.create",
    "entity.update",
    "entity.delete",
    "entity.restore",
]
_NEW_VERBS = {1: _MANAGE, 5: _MANAGE, 6: _READ}


def _change_verbs(add: bool) -> None:
    connection = op.get_bind()
    roles = sa.table("roles", sa.column("id", sa.Integer()), sa.column("verbs", sa.Text()))
    for role_id, verbs in _NEW_VERBS.items():
        stored = connection.scalar(sa.select(roles.c.verbs).where(roles.c.id == role_id))
        if stored is None:
            continue
        current = set(json.loads(stored))
        current = current | set(verbs) if add else current - set(verbs)
        connection.execute(
            roles.update().where(roles.c.id == role_id).values(verbs=json.dumps(sorted(current)))
        )


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", Id, primary_key=True),
        sa.Column("project_id", Id, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("approval_required", sa.Boolean(), nullable=False),
        sa.Column("owner_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("published_at", Timestamp, nullable=True),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),
    )
    op.create_table(
        "dataset_properties",
        sa.Column("id", Id, primary_key=True),
        sa.Column("dataset_id", Id, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("published_at", Timestamp, nullable=True),
        sa.UniqueConstraint("dataset_id", "name", name="uq_dataset_properties_name"),
    )
    op.create_table(
        "dataset_form_defs",
        sa.Column("id", Id, primary_key=True),
        sa.Column("dataset_id", Id, sa.ForeignKey("datasets.id"), nullable=False, index=True),
        sa.Column("form_def_id", Id, sa.ForeignKey("form_defs.id"), nullable=False, index=True),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.UniqueConstraint("dataset_id", "form_def_id", name="uq_dataset_form_defs"),
    )
    op.create_table(
        "entities",
        sa.Column("id", Id, primary_key=True),
        sa.Column("dataset_id", Id, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("current_def_id", sa.BigInteger(), nullable=False),
        sa.Column("creator_id", Id, sa.ForeignKey("actors.id"), nullable=True),
        sa.Column("conflict", sa.String(8), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=True),
        sa.Column("deleted_at", Timestamp, nullable=True),
        sa.UniqueConstraint("dataset_id", "uuid", name="uq_entities_dataset_uuid"),
    )
    op.create_index(
        "ix_entities_dataset_live",
        "entities",
        ["dataset_id", "deleted_at", "id", "current_def_id"],
    )
    op.create_table(
        "entity_defs",
        sa.Column("id", Id, primary_key=True),
        sa.Column("entity_id", Id, sa.ForeignKey("entities.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("data_received", sa.LargeBinary(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("trunk_version", sa.Integer(), nullable=True),
        sa.Column("branch_id", sa.String(255), nullable=True),
        sa.Column("branch_base_version", sa.Integer(), nullable=True),
        sa.Column("conflicting_properties", sa.Text(), nullable=True),
        sa.Column(
            "source_submission_def_id",
            Id,
            sa.ForeignKey("submission_defs.id"),
            nullable=True,
            index=True,
        ),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("creator_id", Id, sa.ForeignKey("actors.id"), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "entity_backlog",
        sa.Column("id", Id, primary_key=True),
        sa.Column("dataset_id", Id, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("branch_id", sa.String(255), nullable=False),
        sa.Column("branch_base_version", sa.Integer(), nullable=False),
        sa.Column("submission_def_id", Id, sa.ForeignKey("submission_defs.id"), nullable=False),
        sa.Column("action", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_index(
        "ix_entity_backlog_branch", "entity_backlog", ["dataset_id", "uuid", "branch_id"]
    )
    with op.batch_alter_table("form_attachments") as batch:
        batch.add_column(sa.Column("dataset_id", sa.BigInteger(), nullable=True))
    _change_verbs(add=True)


def downgrade() -> None:
    _change_verbs(add=False)
    with op.batch_alter_table("form_attachments") as batch:
        batch.drop_column("dataset_id")
    op.drop_index("ix_entity_backlog_branch", "entity_backlog")
    op.drop_table("entity_backlog")
    op.drop_table("entity_defs")
    op.drop_index("ix_entities_dataset_live", "entities")
    op.drop_table("entities")
    op.drop_table("dataset_form_defs")
    op.drop_table("dataset_properties")
    op.drop_table("datasets")
