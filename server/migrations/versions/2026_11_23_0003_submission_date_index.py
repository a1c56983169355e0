"""an index for listing a form's submissions by submission date

OData's $orderby=__system/submissionDate (and its keyset $skiptoken) otherwise
sorts every submission of the form for each page.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 08:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_submissions_form_by_date",
        "submissions",
        ["form_id", "draft", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_submissions_form_by_date", table_name="submissions")
