"""the analysis copy's state (how far each form's copy reaches, and its segments),
and exports run as jobs

Each form keeps a columnar copy of its submissions as Parquet segments in the
BlobStore (services.analysis). These two tables say which segments exist and
up to which submission id the copy reaches; a process extending a copy claims
its row until ``claimed_until``. No data is moved: the copy starts empty and
the background job (or ``homeward rebuild-analysis``) fills it.

``export_runs`` holds exports asked for as jobs (services.export_runs): what
was asked, the state and progress, and until when the file is kept.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "analysis_copies",
        sa.Column("form_id", _ID, nullable=False),
        sa.Column("layout", sa.String(32), nullable=False),
        sa.Column("copied_through", sa.BigInteger(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["form_id"], ["forms.id"], name="fk_analysis_copies_form_id_forms"),
        sa.PrimaryKeyConstraint("form_id", name="pk_analysis_copies"),
    )
    op.create_table(
        "analysis_segments",
        sa.Column("id", _ID, nullable=False),
        sa.Column("form_id", _ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("first_submission_id", sa.BigInteger(), nullable=False),
        sa.Column("last_submission_id", sa.BigInteger(), nullable=False),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name="fk_analysis_segments_form_id_forms"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_analysis_segments"),
        sa.UniqueConstraint("form_id", "number", name="uq_analysis_segments_number"),
    )
    op.create_index("ix_analysis_segments_form_id", "analysis_segments", ["form_id"])
    op.create_table(
        "export_runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("form_id", _ID, nullable=False),
        sa.Column("requested_by", _ID, nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("request", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["form_id"], ["forms.id"], name="fk_export_runs_form_id_forms"),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["actors.id"], name="fk_export_runs_requested_by_actors"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_export_runs"),
    )
    op.create_index("ix_export_runs_form_id", "export_runs", ["form_id"])


def downgrade() -> None:
    op.drop_index("ix_export_runs_form_id", table_name="export_runs")
    op.drop_table("export_runs")
    op.drop_index("ix_analysis_segments_form_id", table_name="analysis_segments")
    op.drop_table("analysis_segments")
    op.drop_table("analysis_copies")
