"""comments, public links, and the roles' verbs for review, restore and audits

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 08:00:00.000000
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", Id, nullable=False),
        sa.Column("submission_id", Id, nullable=False),
        sa.Column("actor_id", Id, nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_comments_actor_id_actors")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_comments_submission_id_submissions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comments_submission_id"), ["submission_id"])

    op.create_table(
        "public_links",
        sa.Column("actor_id", Id, nullable=False),
        sa.Column("form_id", Id, nullable=False),
        sa.Column("once", sa.Boolean(), nullable=False),
        sa.Column("created_by", Id, nullable=True),
        sa.Column("token_nonce", sa.String(length=64), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_public_links_actor_id_actors")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["actors.id"], name=op.f("fk_public_links_created_by_actors")
        ),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name=op.f("fk_public_links_form_id_forms")
        ),
        sa.PrimaryKeyConstraint("actor_id", name=op.f("pk_public_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_public_links_token_hash")),
    )
    with op.batch_alter_table("public_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_public_links_form_id"), ["form_id"])

    # The verbs as this revision knows them (Central's submission.restore, form.restore);
    # written out here so that later changes to server/roles.py need their own revision.
    roles = sa.table("roles", sa.column("id", sa.Integer()), sa.column("verbs", sa.Text()))
    for role_id, verbs in VERBS.items():
        op.execute(
            roles.update().where(roles.c.id == role_id).values(verbs=json.dumps(sorted(verbs)))
        )


def downgrade() -> None:
    with op.batch_alter_table("public_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_public_links_form_id"))
    op.drop_table("public_links")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comments_submission_id"))
    op.drop_table("comments")


_READ = {"project.read", "form.list", "form.read", "submission.list", "submission.read"}
_MANAGE = _READ | {
    "project.update",
    "project.delete",
    "assignment.list",
    "assignment.create",
    "assignment.delete",
    "field_key.list",
    "field_key.create",
    "field_key.delete",
    "public_link.list",
    "public_link.create",
    "public_link.delete",
    "form.create",
    "form.update",
    "form.delete",
    "form.restore",
    "submission.create",
    "submission.update",
    "submission.delete",
    "submission.restore",
}
_SITE = {
    "project.list",
    "project.create",
    "user.list",
    "user.read",
    "user.create",
    "user.update",
    "user.delete",
    "audit.read",
    "config.read",
}
VERBS = {
    1: _MANAGE | _SITE,
    2: {"form.read", "submission.create"},
    5: _MANAGE,
    6: _READ,
    7: {"form.read"},
    8: {"project.read", "form.list", "form.read", "submission.create"},
    9: {"form.read", "submission.create"},
}
