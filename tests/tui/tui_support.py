"""Helpers for the terminal chat's tests: the app on a seeded database, screen text, scripts."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from time import monotonic
from typing import Any, Literal

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Button, Input

from shopbot.app import build_agent
from shopbot.config import Settings
from shopbot.models.scripted import Output, ScriptedModel
from shopbot.tui import ShopBotApp
from shopbot.tui.confirmation import ConfirmationPrompt

NOON = datetime.combine(date.today(), time(12, 0), UTC)
"""The agent's clock in these tests, so times on screen are the same every run."""
SIZE = (140, 42)

JANE = "Hi, I'd like to return the jeans from order 482913. My email is Jane.Doe@Example.com"
VERIFIED = (
    "Thanks Jane, you're verified. I see the Slim Fit Jeans, a Linen Shirt and Swim Shorts. "
    "Is anything else going back besides the jeans?"
)
JUST_THE_JEANS = "Just the jeans, they don't fit."
RETURN: dict[str, Any] = {"order_id": "482913", "lines": [1], "reason": "doesn't fit"}
DONE = "Done: the return of the Slim Fit Jeans is registered."


def step(tool: str, thought: str | None = None, **args: Any) -> Output:
    out: dict[str, Any] = {"action": {"tool": tool, "args": args}}
    if thought is not None:
        out["thought"] = thought
    return out


def verify_turn() -> list[Output]:
    """Turn 1 of fixtures/conversations/09_return_confirmed.yaml."""
    return [
        step(
            "verify_identity", "Check who this is.", order_id="482913", email="Jane.Doe@Example.com"
        ),
        step("lookup_order", order_id="482913"),
        step("reply", message=VERIFIED),
    ]


def return_turn() -> list[Output]:
    """Turn 2: eligibility, then the return, which waits for the customer's confirmation."""
    return [
        step("check_return_eligibility", order_id="482913", lines=[1]),
        step("create_return", **RETURN),
    ]


def confirmed_turn() -> list[Output]:
    return [step("create_return", **RETURN), step("reply", message=DONE)]


class Harness:
    """Builds apps on one seeded database, with a scripted model and a fixed clock."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    def app(
        self, outputs: Iterable[Output] | ScriptedModel = (), *, conversation_id: str | None = None
    ) -> ShopBotApp:
        model = outputs if isinstance(outputs, ScriptedModel) else ScriptedModel(outputs)
        agent = build_agent(self.settings, model, self.sessions, clock=lambda: NOON)
        return ShopBotApp(agent, conversation_id=conversation_id)


async def settle(pilot: Pilot[None]) -> None:
    """Wait for the running turn, then for the screen to catch up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def answer(pilot: Pilot[None], button: Literal["confirm", "cancel"]) -> None:
    """Press Confirm or Cancel (the first on screen) and wait for the turn it starts.

    The click reaches the app a few messages later, and under load Textual's idle check
    (CPU time against wall time) can report idle before it does: wait until the box is no
    longer open (the answer is on its way, its turn started), then for the turn."""
    prompt = pilot.app.query_one(f"#{button}", Button).query_ancestor(ConfirmationPrompt)
    await pilot.click(f"#{button}")
    deadline = monotonic() + 60
    while prompt.open:
        assert monotonic() < deadline, f"pressing {button} did not reach the app"
        await pilot.pause(0.01)
    await settle(pilot)


async def send(pilot: Pilot[None], text: str) -> None:
    """Type a message in the input box and press Enter; wait for ShopBot's answer."""
    pilot.app.query_one("#message", Input).value = text
    await pilot.press("enter")
    await settle(pilot)


def screen_text(app: App[Any]) -> str:
    """The screen as plain text, line by line: what a snapshot compares.

    Built like `App.export_screenshot`, which renders the same compositor output as SVG;
    text keeps the snapshot readable in a diff and free of colour-theme churn.
    """
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(
            full=True, screen_stack=app._background_screens, simplify=True
        )
    )
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"
