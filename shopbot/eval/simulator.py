"""Simulated customers: they open the conversation, answer the agent, and decide when it ends.

`RuleSimulator` (the default, deterministic) plays the scenario's persona by rules: asked for
an order number, an email, the items or a yes/no, it answers from the persona (trying its
emails in order, so a wrong one first makes a failed check); asked to confirm, it confirms or
declines as the persona does; asked anything else, it states its goal again (once); told
something, it says the persona's next line, and when it has none left, it ends the
conversation. `LlmSimulator` lets a chat model play the persona instead, on
any backend (`openai_chat`, `local_chat`, or any async function of messages).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from shopbot.config import Settings
from shopbot.eval.scenario import Scenario, Style
from shopbot.events import ConfirmationRequested, Escalated, Event, Reply
from shopbot.loop import ConfirmationAnswer, CustomerText, Incoming


@dataclass(frozen=True)
class AgentTurn:
    """What the customer saw of one agent turn."""

    replies: list[str]
    confirmation: ConfirmationRequested | None = None
    escalated: bool = False

    @classmethod
    def of(cls, events: list[Event]) -> AgentTurn:
        asked = [e for e in events if isinstance(e, ConfirmationRequested)]
        return cls(
            replies=[e.text for e in events if isinstance(e, Reply)],
            confirmation=asked[-1] if asked else None,
            escalated=any(isinstance(e, Escalated) for e in events),
        )

    @property
    def text(self) -> str:
        return " ".join(self.replies)


class Simulator(Protocol):
    async def next(self, turn: AgentTurn | None) -> Incoming | None:
        """The customer's next input after `turn` (None: the first), or None to stop."""
        ...


def _asks(text: str, *phrases: str) -> bool:
    """Does a question in `text` (a sentence ending in "?") contain one of `phrases`?"""
    return any(p in q for q in re.findall(r"[^.!?]*\?", text) for p in phrases)


_ITEMS = (
    "which item",
    "which one",
    "which would you like",
    "what would you like to return",
    "what items",
    "anything else",
    "which of",
)
_STYLE = {
    "polite": "{}",
    "terse": "{}",
    "angry": "Ugh, again?! {} And hurry up, this is taking forever.",
    "chatty": "Oh, of course! {} Sorry, I always forget these things, it's been a long week.",
}


def styled(style: Style, text: str) -> str:
    return _STYLE[style].format(text)


@dataclass
class RuleSimulator:
    scenario: Scenario
    said: list[str] = field(default_factory=list[str])
    _then: int = 0
    _restated: bool = False

    async def next(self, turn: AgentTurn | None) -> Incoming | None:
        persona = self.scenario.persona
        if turn is None:
            return self._say(persona.opening.text)
        if turn.escalated:
            return None  # a colleague takes over
        if turn.confirmation is not None:
            return ConfirmationAnswer(turn.confirmation.confirmation_id, persona.confirms)
        text = turn.text.casefold()
        if _asks(text, *_ITEMS):
            if persona.items is not None:
                return self._say(styled(persona.style, persona.items))
            return self._restate()  # the opening named them
        if _asks(text, "shall i", "should i", "would you like me", "do you want me"):
            return self._answer_offer()
        wants_order = _asks(text, "order number", "order id")
        wants_email = _asks(text, "email")
        if wants_order or wants_email:
            return self._identify(wants_order, wants_email)
        if _asks(text, ""):  # a question the persona has no answer for
            return self._restate()
        if self._then < len(persona.then):
            self._then += 1
            return self._say(persona.then[self._then - 1].text)
        return None

    def _answer_offer(self) -> Incoming:
        """Yes or no to the agent's offer ("Shall I return just the jeans?")."""
        return self._say("Yes, please." if self.scenario.persona.agrees else "No, thanks.")

    def _restate(self) -> Incoming | None:
        """Say the goal again, once; a second time the customer gives up."""
        if self._restated:
            return None
        self._restated = True
        return self._say(self.scenario.persona.opening.text)

    def _identify(self, wants_order: bool, wants_email: bool) -> Incoming | None:
        persona = self.scenario.persona
        parts: list[str] = []
        if wants_order:
            if not persona.orders:
                return None  # they do not have one: nothing more to say
            parts.append(
                persona.orders[0]
                if persona.style == "terse"
                else f"It's order {persona.orders[0]}."
            )
        if wants_email:
            said = " ".join(self.said).casefold()
            fresh = [e for e in persona.emails if e.casefold() not in said]
            if not fresh:
                return None  # every email they know has been tried
            parts.append(fresh[0] if persona.style == "terse" else f"My email is {fresh[0]}.")
        return self._say(styled(persona.style, " ".join(parts)))

    def _say(self, text: str) -> CustomerText:
        self.said.append(text)
        return CustomerText(text)


TextChat = Callable[[list[BaseMessage]], Awaitable[str]]
"""A chat model as the simulator and the judge need it: messages in, text out."""

STOP = "###STOP###"
_PERSONA = """You play a customer of an online clothing shop, chatting with its assistant.
You are {name}. You write {style}. Your goal: {goal}
What you know: order numbers {orders}; email addresses {emails}.{items}
Rules: write only the customer's next message, one or two sentences. Give an order number or
email only when asked. When asked to confirm, answer "yes" or "no" ({confirm}). When your goal
is reached, or the assistant cannot help, answer exactly {stop}."""


@dataclass
class LlmSimulator:
    """A chat model plays the persona; it opens with the persona's opening line, so every
    simulator starts the same conversation."""

    scenario: Scenario
    chat: TextChat
    transcript: list[str] = field(default_factory=list[str])

    async def next(self, turn: AgentTurn | None) -> Incoming | None:
        persona = self.scenario.persona
        if turn is None:
            self.transcript.append(f"Customer: {persona.opening.text}")
            return CustomerText(persona.opening.text)
        if turn.escalated:
            return None
        self.transcript.append(f"Assistant: {turn.text}")
        system = _PERSONA.format(
            name=persona.name,
            style=persona.style,
            goal=" ".join([persona.opening.text, *(s.text for s in persona.then)]),
            orders=", ".join(persona.orders) or "none",
            emails=", ".join(persona.emails) or "none",
            items=f" The items: {persona.items}" if persona.items else "",
            confirm="you agree" if persona.confirms else "you changed your mind: no",
            stop=STOP,
        )
        ask = "\n".join([*self.transcript, "Customer:"])
        text = (await self.chat([SystemMessage(system), HumanMessage(ask)])).strip()
        if STOP in text or not text:
            return None
        self.transcript.append(f"Customer: {text}")
        if turn.confirmation is not None:
            approve = re.match(r"\W*(yes|yeah|sure|ok|confirm)", text, re.IGNORECASE) is not None
            return ConfirmationAnswer(turn.confirmation.confirmation_id, approve)
        return CustomerText(text[:1500])


def openai_chat(settings: Settings, *, model: str | None = None) -> TextChat:
    """A `TextChat` on the OpenAI-compatible endpoint of `settings` (SHOPBOT_LLM_*)."""
    from langchain_openai import ChatOpenAI

    if not settings.llm_base_url:
        from shopbot.errors import ConfigError

        raise ConfigError("SHOPBOT_LLM_BASE_URL is not set: the OpenAI-compatible endpoint")
    client = ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=model or settings.llm_model,
        temperature=0,
    )

    async def chat(messages: list[BaseMessage]) -> str:
        answer = await client.ainvoke(messages)
        return str(answer.content)

    return chat


def local_chat(settings: Settings) -> TextChat:
    """A `TextChat` on the embedded llama.cpp model (plain text, no grammar)."""
    from llama_cpp import Llama  # pyright: ignore[reportMissingTypeStubs]

    from shopbot.models.local import packaged_model_path

    llama: Any = Llama(
        model_path=str(settings.model_path or packaged_model_path()),
        n_ctx=4096,
        n_threads=2,
        verbose=False,
    )
    roles = {"system": "system", "human": "user", "ai": "assistant"}

    def complete(messages: list[BaseMessage]) -> str:
        out = llama.create_chat_completion(
            messages=[{"role": roles[m.type], "content": str(m.content)} for m in messages],
            max_tokens=80,
            temperature=0.0,
        )
        return str(out["choices"][0]["message"]["content"] or "")

    async def chat(messages: list[BaseMessage]) -> str:
        return await asyncio.to_thread(complete, messages)

    return chat


__all__ = [
    "AgentTurn",
    "LlmSimulator",
    "RuleSimulator",
    "Simulator",
    "TextChat",
    "local_chat",
    "openai_chat",
]
