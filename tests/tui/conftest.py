from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tui_support import Harness

from shopbot.app import open_database
from tests.plugin import settings_for


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times on screen are local time; the tests read them in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def _steady_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reading of the loop's timer is 5 ms after the last, so durations are stable."""
    ticks = itertools.count(step=0.005)
    monkeypatch.setattr("shopbot.loop.perf_counter", lambda: next(ticks))


@pytest.fixture
async def harness(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    settings = settings_for(sqlite_url, tmp_path)
    engine, sessions = open_database(settings)
    try:
        yield Harness(settings, sessions)
    finally:
        await engine.dispose()
