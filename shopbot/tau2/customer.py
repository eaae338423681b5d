"""The τ²-bench customer: a chat model plays the user of a task's `user_scenario`.

Like τ²-bench's user simulator, it is told the scenario (persona, task instructions, reason
for call, what it knows and does not know), writes one message at a time, gives information
only when asked, and ends with `###STOP###` when its goal is reached or it was transferred.
The conversation is shown to it with the roles swapped (the agent speaks as the user), as τ²
does. When the agent asks for a confirmation, its reply answers it through the interface
(`ConfirmationAnswer`): yes or no, as the reply begins; a reply that is neither goes to the
agent as a message, which withdraws the request (`shopbot.loop`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from shopbot.eval.simulator import AgentTurn, TextChat
from shopbot.loop import ConfirmationAnswer, CustomerText, Incoming

STOP_TOKENS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
GREETING = "Hi! How can I help you today?"
SYSTEM = """You play a customer contacting an online shop's customer service agent.
Follow the scenario below strictly; it is all you know.

Rules:
- Write only your next message to the agent: one short message, in your own words.
- Never make up information that the scenario does not give: what it does not give, you do
  not know. Do not recite the scenario; give a piece of information only when the agent
  asks for it.
- When the agent asks you to confirm an action, start your answer with "yes" if it is what
  the scenario wants, else with "no".
- When your goal is reached, or the agent cannot do more, or you are transferred to a human
  agent, write only ###STOP###.

<scenario>
{scenario}
</scenario>"""
_YES = re.compile(r"\W*(yes|yeah|yep|sure|ok|okay|confirm|correct|go ahead|please do)\b", re.I)
_NO = re.compile(r"\W*(no|nope|don't|do not|cancel|wait)\b", re.I)


def scenario_text(user_scenario: dict[str, Any]) -> str:
    """The scenario as τ² lays it out: the persona, then each instruction under its name."""
    parts: list[str] = []
    if persona := user_scenario.get("persona"):
        parts.append(f"Persona:\n{persona}")
    instructions = user_scenario.get("instructions") or {}
    if isinstance(instructions, str):
        parts.append(f"Instructions:\n{instructions}")
    else:
        for key in ("task_instructions", "reason_for_call", "known_info", "unknown_info"):
            if value := instructions.get(key):
                parts.append(f"{key.replace('_', ' ').capitalize()}:\n{value}")
    return "\n\n".join(parts)


def confirmation_answer(text: str) -> bool | None:
    """Yes (True), no (False), or neither (None), as the reply begins."""
    if _NO.match(text):
        return False
    if _YES.match(text):
        return True
    return None


@dataclass
class Tau2Customer:
    """A chat model playing the customer of one task (a `shopbot.eval.simulator.Simulator`)."""

    user_scenario: dict[str, Any]
    chat: TextChat
    max_chars: int = 1500
    messages: list[BaseMessage] = field(default_factory=list[BaseMessage])
    stopped_by: str | None = None
    """The stop token it ended with, if it did."""

    async def next(self, turn: AgentTurn | None) -> Incoming | None:
        if turn is not None and turn.escalated:
            return None  # handed to a human: the conversation is over for the benchmark
        if not self.messages:
            self.messages.append(SystemMessage(SYSTEM.format(scenario=self.scenario)))
        self.messages.append(HumanMessage(GREETING if turn is None else turn.text or "..."))
        text = (await self.chat(self.messages)).strip()
        if stop := next((s for s in STOP_TOKENS if s in text), None):
            self.stopped_by = stop
            return None
        if not text:
            return None  # nothing left to say
        text = text[: self.max_chars]
        self.messages.append(AIMessage(text))
        if turn is not None and turn.confirmation is not None:
            answer = confirmation_answer(text)
            if answer is not None:
                return ConfirmationAnswer(turn.confirmation.confirmation_id, answer)
        return CustomerText(text)

    @property
    def scenario(self) -> str:
        return scenario_text(self.user_scenario)


__all__ = ["GREETING", "STOP_TOKENS", "Tau2Customer", "confirmation_answer", "scenario_text"]
