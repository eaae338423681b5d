"""conversation holder: the staff member who has taken a conversation over (human handoff)

Two nullable columns on `conversations`, nothing else touched. `messages.role` gains the
value "staff"; it is a plain string column (no native enum, no CHECK), so that needs no DDL.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 05:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("held_since", db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_conversations_held_by_staff"),
            "staff",
            ["held_by"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_conversations_held_by_staff"), type_="foreignkey")
        batch_op.drop_column("held_since")
        batch_op.drop_column("held_by")
