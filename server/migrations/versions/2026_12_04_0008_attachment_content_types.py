"""each attachment keeps the content type it was sent with

Blobs are shared by sha256 across projects, so the blob row's type is the one
the first upload of those bytes declared, perhaps in another project. An
attachment now records its own. Rows written before this migration have none
and are served with the blob's type, as before.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("submission_attachments", "form_attachments")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("content_type", sa.String(255), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("content_type")
