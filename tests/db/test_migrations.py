"""The migrations build exactly the schema the models describe, up and down, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db.base import Base
from db.engine import alembic_config


def _sync(url: str) -> str:
    u = make_url(url)
    name = "sqlite" if u.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return u.set(drivername=name).render_as_string(hide_password=False)


def test_models_and_migrations_agree(db_url: str) -> None:
    engine = create_engine(_sync(db_url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_back(db_url: str) -> None:
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")


def test_existing_returns_get_a_uid_each(db_url: str) -> None:
    # 0004 adds returns.uid to a shop that already has returns (the seeded ones).
    command.downgrade(alembic_config(db_url), "0003")
    command.upgrade(alembic_config(db_url), "head")
    engine = create_engine(_sync(db_url))
    with engine.connect() as conn:
        uids = conn.execute(text("SELECT uid FROM returns")).scalars().all()
    engine.dispose()
    assert uids and len(set(uids)) == len(uids)
    assert all(len(uid) == 32 for uid in uids)
