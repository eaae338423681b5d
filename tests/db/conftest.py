"""Migrated databases for the db tests: a fresh SQLite file, and PostgreSQL when reachable.

Each backend is migrated once per run with `db.engine.upgrade`. Tests get a `session` whose
work is rolled back afterwards, so every test starts from empty shop tables.

PostgreSQL tests create a database of their own on the server at `SHOPBOT_TEST_POSTGRES_URL`
(default: the local `test` database) and drop it at the end; they are skipped when the
server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.engine import upgrade

POSTGRES_URL = os.environ.get(
    "SHOPBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def sync_engine(url: str | URL) -> Engine:
    """A synchronous engine (what the seed loader and the tau2 mapping take)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        engine = create_engine(u.set(drivername="sqlite"))
        # Off by default in SQLite; on here so a wrong delete order fails as it would in PG.
        event.listen(engine, "connect", _foreign_keys)
        return engine
    return create_engine(
        u.set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": 3}
    )


def _foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'shop.db'}"
    upgrade(url)
    engine = sync_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    server = sync_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        server.dispose()
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}: {str(exc.orig).splitlines()[0]}")
    name = f"shopbot_test_{uuid.uuid4().hex[:12]}"
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = None
    try:
        url = make_url(POSTGRES_URL).set(database=name)
        upgrade(url)
        engine = sync_engine(url)
        yield engine
    finally:
        if engine is not None:
            engine.dispose()
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each test that uses the database runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
        session.rollback()
