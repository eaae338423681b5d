"""Snapshots of the main screens, as text, in `snapshots/`.

Text rather than SVG: a diff of a changed screen reads like the screen, and colour-theme or
Textual rendering details do not churn it (colours are checked in test_tui_chat.py). The
clock is fixed, timings are steady and times show in UTC, so the screens are the same each
run. After an intended change, look at the diff and rewrite them:

    .venv/bin/pytest tests/tui --inline-snapshot=fix

`SHOPBOT_TUI_SVG=DIR` also saves each screen as an SVG screenshot there, to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from inline_snapshot import external_file
from textual.pilot import Pilot
from tui_support import (
    JANE,
    JUST_THE_JEANS,
    SIZE,
    Harness,
    answer,
    confirmed_turn,
    return_turn,
    screen_text,
    send,
    verify_turn,
)

from shopbot.tui.status import StatusBar


async def snapshot(pilot: Pilot[None], name: str) -> str:
    """The screen as text, without what differs from run to run."""
    app = pilot.app
    for status in app.query(StatusBar):
        status.database = "sqlite data/shopbot.db"  # not the test's temporary file
    app.clear_notifications()  # they come and go on their own clock
    await pilot.pause()
    if folder := os.environ.get("SHOPBOT_TUI_SVG"):
        app.save_screenshot(f"{name}.svg", path=folder)
    # The demo shop's dates are relative to the day it was seeded.
    return re.sub(r"\b20\d\d-\d\d-\d\d\b", "YYYY-MM-DD", screen_text(app))


async def test_welcome(harness: Harness) -> None:
    app = harness.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert await snapshot(pilot, "welcome") == external_file("snapshots/welcome.txt")


async def test_confirmation_pending(harness: Harness) -> None:
    app = harness.app([*verify_turn(), *return_turn()])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
        assert await snapshot(pilot, "confirmation") == external_file("snapshots/confirmation.txt")


async def _two_conversations(harness: Harness) -> None:
    async with harness.app([*verify_turn(), *return_turn()]).run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
    async with harness.app([*verify_turn()]).run_test(size=SIZE) as pilot:
        await send(pilot, JANE)


async def test_conversation_list(harness: Harness) -> None:
    await _two_conversations(harness)
    app = harness.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert await snapshot(pilot, "conversations") == external_file(
            "snapshots/conversations.txt"
        )


async def test_resumed_and_confirmed(harness: Harness) -> None:
    first = harness.app([*verify_turn(), *return_turn()])
    async with first.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
    earlier = first.conversation_id
    app = harness.app(confirmed_turn(), conversation_id=earlier)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await answer(pilot, "confirm")
        assert await snapshot(pilot, "resumed") == external_file("snapshots/resumed.txt")


async def test_help(harness: Harness) -> None:
    app = harness.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert await snapshot(pilot, "help") == external_file("snapshots/help.txt")


def test_snapshots_folder_has_no_strays() -> None:
    tests = {"welcome", "confirmation", "conversations", "resumed", "help"}
    found = {p.stem for p in (Path(__file__).parent / "snapshots").glob("*.txt")}
    assert found <= tests, f"snapshots without a test: {found - tests}"
