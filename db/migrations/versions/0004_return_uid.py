"""returns.uid: a random id per return, for the label's idempotency key

Return ids restart after `shopbot db seed --reset` (SQLite reuses them) or a restored backup,
and two shops sharing one carrier account both have a return 1: a key derived from the id
alone made the carrier hand a new return the label it had sold for an old one. Existing
returns get a fresh uid each.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:00:00.000000
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_returns = sa.table("returns", sa.column("id", sa.Integer()), sa.column("uid", sa.String(32)))


def upgrade() -> None:
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(length=32), nullable=True))

    conn = op.get_bind()
    ids = conn.execute(sa.select(_returns.c.id)).scalars().all()
    if ids:
        conn.execute(
            _returns.update()
            .where(_returns.c.id == sa.bindparam("b_id"))
            .values(uid=sa.bindparam("b_uid")),
            [{"b_id": id_, "b_uid": uuid.uuid4().hex} for id_ in ids],
        )

    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.alter_column("uid", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_returns_uid"), ["uid"])


def downgrade() -> None:
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_returns_uid"), type_="unique")
        batch_op.drop_column("uid")
