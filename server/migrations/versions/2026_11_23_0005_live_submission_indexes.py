"""partial indexes over the submissions not deleted, for listing, counting and filtering

Every listing (OData pages, exports, the API) reads a form's submissions that are
not deleted, newest first. The old indexes held every submission, so
``deleted_at IS NULL`` and a ``$filter`` on the submission date were checked by
reading each table row: at 100,000 submissions a ``$count`` read them all, and a
filtered page stepped over every row the filter refused. The new indexes hold only
live submissions and carry the submission date (and ``deleted_at``, always null,
so SQLite can answer from the index alone).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.drop_index("ix_submissions_form_listing", table_name="submissions")
    op.drop_index("ix_submissions_form_by_date", table_name="submissions")
    op.create_index(
        "ix_submissions_live",
        "submissions",
        ["form_id", "draft", "id", "created_at", "deleted_at"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index(
        "ix_submissions_live_by_date",
        "submissions",
        ["form_id", "draft", "created_at", "id", "deleted_at"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_submissions_live_by_date", table_name="submissions")
    op.drop_index("ix_submissions_live", table_name="submissions")
    op.create_index(
        "ix_submissions_form_by_date", "submissions", ["form_id", "draft", "created_at", "id"]
    )
    op.create_index("ix_submissions_form_listing", "submissions", ["form_id", "draft", "id"])
