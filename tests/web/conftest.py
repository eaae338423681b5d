"""Fixtures for the widget backend: an app per test on each backend, in process or served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from web_support import Api, open_api

from shopbot.config import Settings
from tests.plugin import settings_for


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return settings_for(db_url, tmp_path)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async for opened in open_api(settings):
        yield opened
