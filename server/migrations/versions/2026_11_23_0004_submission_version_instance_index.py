"""an index for finding a submission's version by its instanceID

Every submission looks up the versions already stored under its instanceID
(resends, split uploads, edits). Without this index PostgreSQL scanned every
version of every submission for it: 4.6 ms at 3,000 submissions, growing with
each one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 11:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_submission_defs_instance_id", "submission_defs", ["instance_id"])


def downgrade() -> None:
    op.drop_index("ix_submission_defs_instance_id", table_name="submission_defs")
