"""each version keeps its OData row's fields as ingest wrote them

A page of the OData feed spent most of its time turning stored records into
rows. Ingest now writes a version's row once (``odata_row``, the fields as JSON)
with the key of the form shape it was written for (``odata_shape``), and a page
sends those bytes while the form keeps that shape (``exports.odata.rendered``).

Versions stored before this migration have neither: their rows are written from
their records, as before, until ``homeward render-rows`` writes them.

On PostgreSQL the row stays in the table row (``STORAGE MAIN``): with the XML
and the record (together about 4 KB) past the 2 KB TOAST threshold, those two
are compressed and moved out of line, and a page reads none of them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("submission_defs") as batch:
        batch.add_column(sa.Column("odata_shape", sa.String(32), nullable=True))
        batch.add_column(sa.Column("odata_row", sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE submission_defs ALTER COLUMN odata_row SET STORAGE MAIN")


def downgrade() -> None:
    with op.batch_alter_table("submission_defs") as batch:
        batch.drop_column("odata_row")
        batch.drop_column("odata_shape")
