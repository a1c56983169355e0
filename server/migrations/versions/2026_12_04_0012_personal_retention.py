"""projects may keep personal answers for a number of months; submissions say when theirs went

``projects.retention_months`` (null: kept) is how long a project keeps the
answers its forms mark personal; ``homeward retention`` then pseudonymises
them in place and sets ``submissions.personal_expired_at`` so that a
submission is rewritten once. No data changes here.

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("retention_months", sa.Integer(), nullable=True))
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(
            sa.Column("personal_expired_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("personal_expired_at")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("retention_months")
