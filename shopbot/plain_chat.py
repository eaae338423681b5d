"""`shopbot chat --plain`: a line-by-line chat for any terminal, and for pipes.

When ShopBot asks for a confirmation, answer `yes` or `no` (the loop takes a bare yes or no
right after the request as the answer: `shopbot.loop.typed_answer`); anything else is a new
message, and it withdraws the request (ShopBot asks again if that is still what you want).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from shopbot.errors import ShopBotError
from shopbot.events import (
    ConfirmationRequested,
    ConfirmationWithdrawn,
    Escalated,
    Event,
    Reply,
    VerdictGiven,
)
from shopbot.loop import Agent, CustomerText

CONFIRM_HINT = "         (answer yes to confirm, no to cancel)"


def render(event: Event, *, steps: bool) -> str | None:
    match event:
        case Reply(text=text, citations=citations):
            notes = "".join(
                f"\n    [{i}] {c.document} > {c.section}" for i, c in enumerate(citations, 1)
            )
            return f"shopbot> {text}{notes}"
        case ConfirmationWithdrawn():
            return "         (the request above is withdrawn: nothing was done)"
        case Escalated(reason=reason):
            return f"         (handed over to a human: {reason})"
        case VerdictGiven(tool=tool, decision=decision, reason=reason) if steps:
            return f"    . {tool}: {decision} ({reason})"
        case _:
            return None


async def chat(
    agent: Agent,
    conversation_id: str,
    *,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    steps: bool = False,
) -> None:
    write(f"ShopBot ({agent.model.name} model). Conversation {conversation_id}. Ctrl-D to quit.")
    while True:
        try:
            line = read("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        if not line:
            continue
        asked = False
        try:
            async for event in agent.run_turn(conversation_id, CustomerText(line)):
                asked = asked or isinstance(event, ConfirmationRequested)
                if (text := render(event, steps=steps)) is not None:
                    write(text)
            if asked:  # after the reply that says what would be done
                write(CONFIRM_HINT)
        except ShopBotError as exc:
            write(f"shopbot> {exc}")
        sys.stdout.flush()
