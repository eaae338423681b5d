"""Engines and sessions from one database URL, and schema upgrades through Alembic.

The URL is what a user writes (`sqlite:///data/shopbot.db`, `postgresql://host/db`); the
drivers are chosen here: aiosqlite and psycopg 3 for the application, their synchronous
twins for Alembic.

Engines hide bound parameters (`hide_parameters=True`): the values customers typed and the
rows ShopBot writes (emails, addresses, messages) stay out of SQL logging and out of the text
of database errors, which end up in logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def _url(url: str | URL, *, asynchronous: bool) -> URL:
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return u.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    if backend == "postgresql":
        return u.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module's own transaction handling breaks SAVEPOINT; SQLAlchemy emits BEGIN
    # itself instead (see `_sqlite_begin`), as its documentation recommends.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; NORMAL is durable across application crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front (waiting up to busy_timeout). A deferred
    # transaction that reads, then writes after another connection committed, fails at
    # once with "database is locked": WAL cannot upgrade a stale read snapshot.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def ensure_sqlite_dir(url: str | URL) -> None:
    u = make_url(url)
    if is_sqlite(u) and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str | URL, **kw: Any) -> AsyncEngine:
    """The application's async engine."""
    ensure_sqlite_dir(url)
    kw.setdefault("hide_parameters", True)
    if is_sqlite(url):
        kw.setdefault("connect_args", {"timeout": 5})
    else:
        kw.setdefault("pool_size", 10)
        kw.setdefault("max_overflow", 20)
    engine = create_async_engine(_url(url, asynchronous=True), **kw)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def sync_engine(url: str | URL, **kw: Any) -> Engine:
    """A synchronous engine on the same URL (bulk imports and exports, Alembic's drivers)."""
    ensure_sqlite_dir(url)
    kw.setdefault("hide_parameters", True)
    engine = create_sync_engine(_url(url, asynchronous=False), **kw)
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def bound_engine(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine | None:
    """The engine `sessions` are bound to (None: bound to something else, or nothing)."""
    bind = sessions.kw.get("bind")
    return bind if isinstance(bind, AsyncEngine) else None


def alembic_config(url: str | URL) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option(
        "sqlalchemy.url", _url(url, asynchronous=False).render_as_string(hide_password=False)
    )
    return cfg


def schema_behind(url: str | URL) -> str | None:
    """What is missing when the schema at `url` is not at the migrations' head (None: it is).

    A server or chat started on an older database would otherwise fail at its first write
    with an SQL error about a missing column."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine as create_sync_engine

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    ensure_sqlite_dir(url)
    engine = create_sync_engine(_url(url, asynchronous=False))
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    if current == head:
        return None
    at = f"at migration {current}" if current else "not created"
    return f"the database is {at}, this ShopBot needs {head}: run `shopbot db upgrade`"


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision` (creates the SQLite file if needed)."""
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)
