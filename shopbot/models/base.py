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
class KnownArgs:
    """Values the state knows for some of one tool's arguments (`tools.base.ToolSpec.known`)."""

    values: dict[str, list[str]]
    """By argument name; an empty list: none known."""
    binding: bool = False
    """The guard allows no other values (an identity check's: what the customer wrote), so
    every backend holds the model to them; without one for each, the check cannot succeed.
    Otherwise they guide a small model, which copies its examples' values."""


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
    """What the state knows, by kind: order ids and emails the customer wrote (`order_id`,
    `email`), the lines their words name (`lines`, "order:line"), the policy anchors
    retrieved in the turn (`citation`)."""
    known: dict[str, KnownArgs] = field(default_factory=dict[str, KnownArgs])
    """By allowed tool, the values the state knows for its arguments: a backend restricts
    them (a grammar, a strict tool schema)."""
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


def action_args(schema: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """A step schema's actions by tool: the name of its member definition, and the
    definition of its arguments (a node of `schema`, to restrict in place)."""
    defs: dict[str, Any] = schema.get("$defs", {})
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for member, node in defs.items():
        props = node.get("properties", {})
        tool, ref = props.get("tool", {}).get("const"), props.get("args", {}).get("$ref")
        if isinstance(tool, str) and isinstance(ref, str) and ref.rsplit("/", 1)[-1] in defs:
            found[tool] = (member, defs[ref.rsplit("/", 1)[-1]])
    return found


def only(prop: dict[str, Any], values: list[str]) -> dict[str, Any]:
    """An argument's schema restricted to `values` (numbers for an integer argument)."""
    if prop.get("type") == "integer":
        return {"type": "integer", "enum": [int(v) for v in values]}
    return {"type": "string", "enum": values}
