"""The one interface every chat model backend implements, on LangChain message types."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from langchain_core.messages import BaseMessage


@dataclass
class Usage:
    """What one model call cost in tokens, as its backend counted them (None: not counted)."""

    input_tokens: int | None = None
    """Tokens of the prompt the model read (a reused prefix included)."""
    output_tokens: int | None = None
    """Tokens the model wrote."""


@dataclass(frozen=True)
class ModelRequest:
    """One step's prompt and what the model may answer with."""

    messages: list[BaseMessage]
    """Stable system part first, per-step part last (so backends can reuse the prefix)."""
    allowed: frozenset[str]
    """Tools the guard could allow now; a backend offers only these."""
    schema: dict[str, Any]
    """JSON Schema of a step restricted to `allowed`: a grammar or a tool list."""
    hints: dict[str, list[str]] = field(default_factory=dict[str, list[str]])
    """Argument values the state knows (order ids and emails the customer wrote)."""
    conversation_id: str = ""
    opening: str | None = None
    """The customer's message when this is the first step of the turn it started; None at
    later steps, after a confirmation answer, and when the message answered a pending
    request in words (what it means then depends on the request)."""
    usage: Usage = field(default_factory=Usage, compare=False)
    """Filled in by the backend as it answers (the loop's traces read it)."""


class ChatModel(Protocol):
    """Proposes the next step as raw text; the loop parses and checks it."""

    @property
    def name(self) -> str: ...

    async def complete(self, request: ModelRequest) -> str: ...


@runtime_checkable
class StreamingChatModel(ChatModel, Protocol):
    """A backend that can also hand out the step's text while it is generated.

    The loop uses `stream` when a backend has it, to show a reply as it is written; the
    pieces joined are exactly what `complete` would have returned, and the loop parses and
    checks that whole text as usual. A generator, so the loop can close it when its turn is
    abandoned half-way and the backend stops generating.
    """

    def stream(self, request: ModelRequest) -> AsyncGenerator[str]: ...
