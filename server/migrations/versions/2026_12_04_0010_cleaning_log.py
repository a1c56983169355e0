"""a cleaning log per form: entries that cleaned exports apply at read time

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cleaning_entries",
        sa.Column("id", Id, nullable=False),
        sa.Column("form_id", Id, nullable=False),
        sa.Column("submission_id", Id, nullable=False),
        sa.Column("instance_id", sa.String(length=255), nullable=False),
        sa.Column("field", sa.String(length=1024), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("actor_id", Id, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_cleaning_entries_actor_id_actors")
        ),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name=op.f("fk_cleaning_entries_form_id_forms")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_cleaning_entries_submission_id_submissions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cleaning_entries")),
    )
    with op.batch_alter_table("cleaning_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cleaning_entries_form_id"), ["form_id"])
        batch_op.create_index(batch_op.f("ix_cleaning_entries_submission_id"), ["submission_id"])


def downgrade() -> None:
    op.drop_table("cleaning_entries")
