"""τ²-bench retail databases for the tau2 tests: `db.json` imported once per backend into a
template (SQLite always, PostgreSQL when reachable); `tau2_url` clones a fresh one per test.

The data is read beside the repository (`../shared/tau2-retail`, or `SHOPBOT_TAU2_DIR`) and
never copied into it; without it the tests skip, saying where they looked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from db.tau2 import import_tau2
from db.testing import (
    DEFAULT_POSTGRES_URL,
    PostgresTemplate,
    SqliteTemplate,
    Template,
    cloned,
    postgres_reachable,
)
from shopbot.tau2.data import Data, load_db, missing_reason

_templates = pytest.StashKey[dict[str, Template | str]]()


def skip_without_data() -> None:
    if why := missing_reason():
        pytest.skip(why)


@pytest.fixture(scope="session")
def tau2_db() -> Data:
    skip_without_data()
    return load_db()


def tau2_template(config: pytest.Config, backend: str, data: Data) -> Template:
    """The session's imported template for `backend`; skips when PostgreSQL is unreachable."""
    cache = config.stash.setdefault(_templates, {})
    if backend not in cache:

        def seed(session: Session) -> None:
            import_tau2(session, data)

        if backend == "sqlite":
            tmp = Path(config._tmp_path_factory.mktemp("tau2-template"))  # type: ignore[attr-defined]
            cache[backend] = SqliteTemplate(tmp, seed=seed)
        else:
            why = postgres_reachable(DEFAULT_POSTGRES_URL)
            cache[backend] = why or PostgresTemplate(DEFAULT_POSTGRES_URL, seed=seed)
    found = cache[backend]
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="session", autouse=True)
def _close_tau2_templates(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for found in request.config.stash.get(_templates, {}).values():
        if not isinstance(found, str):
            found.close()


@pytest.fixture
def tau2_url(request: pytest.FixtureRequest, tau2_db: Data) -> Iterator[str]:
    """A fresh database holding exactly `db.json`, on the backend the test names by
    indirect parametrization ("sqlite" or "postgresql")."""
    backend: str = getattr(request, "param", "sqlite")
    with cloned(tau2_template(request.config, backend, tau2_db)) as url:
        yield url


@pytest.fixture
def tau2_sqlite_url(request: pytest.FixtureRequest, tau2_db: Data) -> Iterator[str]:
    with cloned(tau2_template(request.config, "sqlite", tau2_db)) as url:
        yield url
