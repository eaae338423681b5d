"""identity token jti: the customer identity tokens already used, so each opens one conversation

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 23:16:45.314328
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "used_identity_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_used_identity_tokens")),
    )
    with op.batch_alter_table("used_identity_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_used_identity_tokens_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("used_identity_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_identity_tokens_expires_at"))
    op.drop_table("used_identity_tokens")
