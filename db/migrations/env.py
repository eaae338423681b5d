"""Alembic environment: runs migrations synchronously on the URL set by `db.engine`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import db
from db.base import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
assert url, "db.engine.alembic_config sets sqlalchemy.url"
assert db.Base is Base  # importing db registers every model on Base.metadata


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Batch mode lets ALTER TABLE migrations work on SQLite too.
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
