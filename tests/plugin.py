"""ShopBot's pytest plugin (loaded with `-p tests.plugin`).

- Seeded database templates, once per session: SQLite always, PostgreSQL when reachable
  (the header says which); `db_url` clones one per test, on each backend.
- Every `fixtures/conversations/*.yaml` is collected as a test, once per backend.
- No test reaches beyond loopback: a remote model (or anything remote) is an error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from db import ItemStatus, OrderStatus
from db.testing import (
    DEFAULT_POSTGRES_URL,
    PostgresTemplate,
    SqliteTemplate,
    Template,
    cloned,
    postgres_reachable,
)
from shopbot.config import Settings
from shopbot.models.base import KnownArgs
from shopbot.replay import Script, replay
from shopbot.state import ConversationState, known_args
from tools import REGISTRY
from tools.facts import LineFacts, OrderFacts

BACKENDS = ("sqlite", "postgresql")
POLICIES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
_templates = pytest.StashKey[dict[str, Template | str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_templates] = {}


def template(config: pytest.Config, backend: str) -> Template:
    """The session's template for `backend`; skips the test when PostgreSQL is unreachable."""
    cache = config.stash[_templates]
    if backend not in cache:
        if backend == "sqlite":
            tmp = Path(config._tmp_path_factory.mktemp("sqlite-template"))  # type: ignore[attr-defined]
            cache[backend] = SqliteTemplate(tmp)
        else:
            why = postgres_reachable(DEFAULT_POSTGRES_URL)
            cache[backend] = why if why else PostgresTemplate(DEFAULT_POSTGRES_URL)
    found = cache[backend]
    if isinstance(found, str):
        pytest.skip(found)
    return found


_policy = pytest.StashKey[Path]()


def policy_index_dir(config: pytest.Config) -> Path:
    """A data dir holding the demo policy index, built once per session (~15 s)."""
    if _policy not in config.stash:
        from shopbot.policy import PolicyIndex

        data_dir = Path(config._tmp_path_factory.mktemp("policy-index"))  # type: ignore[attr-defined]
        PolicyIndex.open(data_dir).sync(POLICIES)
        config.stash[_policy] = data_dir
    return config.stash[_policy]


def pytest_unconfigure(config: pytest.Config) -> None:
    for found in config.stash[_templates].values():
        if not isinstance(found, str):
            found.close()


def pytest_report_header(config: pytest.Config) -> str:
    why = postgres_reachable(DEFAULT_POSTGRES_URL)
    return f"databases: sqlite, {'postgresql' if why is None else 'NOT postgresql (' + why + ')'}"


def settings_for(url: str, tmp: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, database_url=url, data_dir=tmp, **overrides)  # type: ignore[call-arg]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated and seeded database on each backend."""
    with cloned(template(request.config, request.param)) as url:
        yield url


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with cloned(template(request.config, "sqlite")) as url:
        yield url


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                remote = not ipaddress.ip_address(host).is_loopback
            except ValueError:
                remote = host != "localhost"
            if remote:
                raise RuntimeError(f"tests may not reach {host}: use the scripted or local model")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".yaml" and file_path.parent.name == "conversations":
        return ReplayFile.from_parent(parent, path=file_path)
    return None


class ReplayFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        script = Script.load(self.path)
        for backend in BACKENDS:
            yield ReplayItem.from_parent(
                self, name=f"{self.path.stem}[{backend}]", script=script, backend=backend
            )


class ReplayFailed(Exception):
    pass


class ReplayItem(pytest.Item):
    def __init__(self, *, script: Script, backend: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.backend = backend

    def runtest(self) -> None:
        tmp = Path(self.config._tmp_path_factory.mktemp("replay"))  # type: ignore[attr-defined]
        policy: Any = None
        if self.script.uses("search_policy"):
            from shopbot.policy import PolicyIndex

            policy = PolicyIndex.open(policy_index_dir(self.config))
        with cloned(template(self.config, self.backend)) as url:
            settings = settings_for(url, tmp)
            result = asyncio.run(replay(self.script, settings, name=self.name, policy=policy))
        if not result.passed:
            raise ReplayFailed("\n".join(result.failures))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ReplayFailed):
            return f"{self.script.title}\n{excinfo.value}"
        return super().repr_failure(excinfo)  # type: ignore[return-value]

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"replay: {self.script.title} [{self.backend}]"


def order_facts(order_id: str, *names: str, customer_id: str = "cust_jane") -> OrderFacts:
    """A delivered order of active lines with these names (for tests)."""
    return OrderFacts(
        order_id=order_id,
        customer_id=customer_id,
        email="jane.doe@example.com",
        status=OrderStatus.DELIVERED,
        delivered_at=None,
        lines={
            n: LineFacts(line=n, name=name, status=ItemStatus.ACTIVE, final_sale=False)
            for n, name in enumerate(names, 1)
        },
    )


def known_for(allowed: Iterable[str], *said: str) -> dict[str, KnownArgs]:
    """What the loop tells a backend of the allowed tools' arguments once the customer has
    written `said` (for tests)."""
    state = ConversationState("c1", datetime.now(UTC), customer_texts=list(said))
    return known_args(REGISTRY, allowed, state)
