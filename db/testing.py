"""Fresh, seeded databases in milliseconds, for tests, replays and benchmarks.

A template is migrated and seeded once; each clone is a file copy (SQLite) or a
`CREATE DATABASE ... TEMPLATE` (PostgreSQL), so every conversation starts from the same shop.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Generator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from db.engine import is_sqlite, upgrade

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
Seed = Callable[[Session], None]
"""What a template holds besides the schema; the demo shop when not given."""


def _seed(url: str, today: date | None, seed: Seed | None = None) -> None:
    from db.seed import load_demo_shop

    upgrade(url)
    engine = create_engine(make_url(url).set(drivername=_sync_driver(url)))
    with Session(engine) as session:
        if seed is None:
            load_demo_shop(session, today=today)
        else:
            seed(session)
        session.commit()
    engine.dispose()


def _sync_driver(url: str) -> str:
    return "sqlite" if is_sqlite(url) else "postgresql+psycopg"


def postgres_reachable(url: str = DEFAULT_POSTGRES_URL) -> str | None:
    """None when PostgreSQL answers at `url`, else why not (one line)."""
    engine = create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": 2}
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL not reachable at {url}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


class SqliteTemplate:
    def __init__(
        self, directory: Path, *, today: date | None = None, seed: Seed | None = None
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / "template.db"
        _seed(f"sqlite:///{self.path}", today, seed)

    def clone(self) -> str:
        target = self.directory / f"{uuid.uuid4().hex[:12]}.db"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresTemplate:
    def __init__(
        self,
        admin_url: str = DEFAULT_POSTGRES_URL,
        *,
        today: date | None = None,
        seed: Seed | None = None,
    ) -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.name = f"shopbot_tmpl_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE DATABASE "{self.name}"')
        _seed(self._url(self.name), today, seed)

    def _url(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _admin(self, statement: str) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(statement))
        engine.dispose()

    def clone(self) -> str:
        name = f"shopbot_t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        return self._url(name)

    def drop(self, url: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def close(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


Template = SqliteTemplate | PostgresTemplate


@contextmanager
def cloned(template: Template) -> Generator[str]:
    url = template.clone()
    try:
        yield url
    finally:
        template.drop(url)
