"""findings of the data checks, kept for a decision, and each form's check settings

``check_findings`` holds what the checks found (one row per submission, check
and answer, whatever its status, so a dismissed finding is never found
again); ``form_checks`` holds a form's stored CheckSettings and how far the
automatic checks on new submissions have reached. No data changes here.

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-05 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "check_findings",
        sa.Column("id", Id, nullable=False),
        sa.Column("form_id", Id, nullable=False),
        sa.Column("submission_id", Id, nullable=False),
        sa.Column("instance_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=1024), nullable=True),
        sa.Column("field_key", sa.String(length=1024), nullable=False),
        sa.Column("repeat_key", sa.String(length=1300), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("suggested_value", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("related", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", Id, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dismiss_reason", sa.Text(), nullable=True),
        sa.Column("cleaning_entry_id", Id, nullable=True),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name=op.f("fk_check_findings_form_id_forms")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_check_findings_submission_id_submissions"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["actors.id"], name=op.f("fk_check_findings_decided_by_actors")
        ),
        sa.ForeignKeyConstraint(
            ["cleaning_entry_id"],
            ["cleaning_entries.id"],
            name=op.f("fk_check_findings_cleaning_entry_id_cleaning_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_findings")),
        sa.UniqueConstraint(
            "form_id", "instance_id", "kind", "field_key", name="uq_check_findings_target"
        ),
    )
    with op.batch_alter_table("check_findings", schema=None) as batch_op:
        batch_op.create_index("ix_check_findings_form_status", ["form_id", "status"])
        batch_op.create_index(batch_op.f("ix_check_findings_submission_id"), ["submission_id"])
    op.create_table(
        "form_checks",
        sa.Column("form_id", Id, nullable=False),
        sa.Column("settings", sa.LargeBinary(), nullable=True),
        sa.Column("checked_through", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name=op.f("fk_form_checks_form_id_forms")
        ),
        sa.PrimaryKeyConstraint("form_id", name=op.f("pk_form_checks")),
    )


def downgrade() -> None:
    op.drop_table("form_checks")
    op.drop_table("check_findings")
