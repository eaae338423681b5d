"""Fixtures for the widget backend: an app per test on each backend, in process or served; a
headless Chromium for the browser tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright
from web_support import CHROMIUM, CHROMIUM_ARGS, STAFF_PASSWORD, Api, Escalates, open_api

from shopbot.config import Settings
from tests.plugin import settings_for


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return settings_for(db_url, tmp_path)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async for opened in open_api(settings):
        yield opened


@pytest.fixture
async def staff_api(settings: Settings) -> AsyncIterator[Api]:
    """An app over https (the staff cookie is Secure) with the staff account Sam, whose model
    hands a customer who asks for a human to a person."""
    async for opened in open_api(settings, model=Escalates(), base_url="https://shopbot.test"):
        await opened.backend.accounts.add("Sam", STAFF_PASSWORD)
        yield opened


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
