"""Mailer fixtures: migrated databases, real SMTP servers on loopback, a settable clock."""

from __future__ import annotations

import os
import shutil
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from mailer_support import (
    SMTP_PASSWORD,
    SMTP_USER,
    CapturingHandler,
    Clock,
    SmtpServer,
    authenticate,
    client_sockets_closed,
    free_port,
    make_tls,
    start_smtp,
    stop_smtp,
)
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import create_engine, session_factory, upgrade

POSTGRES_URL = os.environ.get(
    "SHOPBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
"""A database to connect to; each test gets a fresh database beside it, dropped after."""


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test rather than migrated each time."""
    path = tmp_path_factory.mktemp("template") / "shopbot.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    path = tmp_path / "shopbot.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A uniquely named, migrated PostgreSQL database, dropped afterwards."""
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}".strip())
    name = f"shopbot_mailer_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """The test runs on SQLite and on PostgreSQL (skipped when PostgreSQL is unreachable)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def sessions(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(sqlite_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    """A plain SMTP server on loopback: no TLS, no AUTH."""
    handler, port = CapturingHandler(), free_port()
    controller = start_smtp(handler, port)
    yield SmtpServer(handler, port, f"smtp://127.0.0.1:{port}")
    await client_sockets_closed()
    stop_smtp(controller)


@pytest.fixture(scope="session")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def smtp_tls_server(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> AsyncIterator[SmtpServer]:
    """An SMTP server that requires STARTTLS, then AUTH, like a submission relay."""
    server_tls, client_tls = tls_contexts
    handler, port = CapturingHandler(), free_port()
    controller = start_smtp(
        handler,
        port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    url = f"smtp://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}"
    yield SmtpServer(handler, port, url, client_tls)
    await client_sockets_closed()  # the server must still answer the TLS close
    stop_smtp(controller)
