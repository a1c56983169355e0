"""each entity keeps the CSV line Collect downloads, as its last write rendered it

Serving a 100,000-entity list spent most of its time decoding each entity's
properties and writing them as CSV. Creates and updates now render the line
once (``csv_line``: name, label, __version and the properties, without the line
end) with the key of the property list it was rendered for (``csv_key``), and a
download splices the stored lines while the list keeps those properties
(properties added since only append empty columns).

Entities stored before this migration have neither: their lines are rendered at
download, as before, until their next update.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entities") as batch:
        batch.add_column(sa.Column("csv_key", sa.String(16), nullable=True))
        batch.add_column(sa.Column("csv_line", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entities") as batch:
        batch.drop_column("csv_line")
        batch.drop_column("csv_key")
