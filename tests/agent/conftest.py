from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from db.engine import create_engine, session_factory
from db.testing import SqliteTemplate
from shopbot.app import build_agent
from shopbot.loop import Agent
from shopbot.models.scripted import ScriptedModel
from tests.plugin import settings_for, template


@pytest.fixture(scope="session")
def sqlite_template(request: pytest.FixtureRequest) -> SqliteTemplate:
    found = template(request.config, "sqlite")
    assert isinstance(found, SqliteTemplate)
    return found


@pytest.fixture
async def agent(db_url: str, tmp_path: Path) -> AsyncIterator[Agent]:
    """An agent on a scripted model and a fresh shop, on each backend."""
    engine = create_engine(db_url)
    yield build_agent(settings_for(db_url, tmp_path), ScriptedModel(), session_factory(engine))
    await engine.dispose()
