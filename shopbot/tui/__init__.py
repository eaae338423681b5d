"""`shopbot chat`: the full-screen terminal chat (Textual).

`run_tui(settings, model)` opens the database, builds the agent and runs `ShopBotApp` until
the user quits; `can_run_full_screen()` says whether the terminal can show it (otherwise use
the line chat, `shopbot.plain_chat`).
"""

from __future__ import annotations

import asyncio
import os
import sys

from shopbot.config import Settings
from shopbot.models.base import ChatModel
from shopbot.tui.app import ShopBotApp


def can_run_full_screen() -> bool:
    """A terminal on both ends that is not `dumb`: pipes and dumb terminals get the line chat."""
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"


def run_tui(settings: Settings, model: ChatModel, *, conversation_id: str | None = None) -> None:
    """Run the terminal chat until the user quits; `conversation_id` resumes that conversation."""
    from shopbot.app import build_agent, open_database, open_services

    async def main() -> None:
        engine, sessions = open_database(settings)
        try:
            async with open_services(settings, sessions) as services:
                agent = build_agent(settings, model, sessions, services)
                await ShopBotApp(agent, conversation_id=conversation_id).run_async()
        finally:
            await engine.dispose()

    asyncio.run(main())


__all__ = ["ShopBotApp", "can_run_full_screen", "run_tui"]
