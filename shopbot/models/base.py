"""The one interface every chat model backend implements, on LangChain message types.

A backend is asked with a `ModelRequest` and answers with a `ModelStep`: a `ToolCall` (a
tool's name and its arguments, as pydantic-ai's `ToolCallPart`) or `RawText`, output it
could not read as one. Each backend maps its own output into it (llama.cpp's and the
scripts' JSON text through `read_step`, an API's tool call directly) and checks nothing:
gate 1 (`shopbot.actions.ActionSchema.parse`) validates the step, and says what is wrong
with it to the model. Streamed, a step arrives as `StepDelta`s (the reply's text as it is
written, as pydantic-ai's `TextPartDelta`s) and then the step itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from langchain_core.messages import BaseMessage

from shopbot.streaming import ReplyDraft


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
class Said:
    """A message of the conversation as the per-step prompt shows it."""

    role: str
    """`customer` or `assistant` (`db.Role`'s values)."""
    text: str


@dataclass(frozen=True)
class StepShown:
    """A step of this turn as the per-step prompt shows it."""

    tool: str | None
    """The action's tool; None for output that was no action."""
    outcome: str | None
    """Its observation or error as shown (cut short with the step when the prompt's budget
    cut it); None when the cut left none of it."""


@dataclass(frozen=True)
class Situation:
    """Where the conversation stands at a step, as the per-step prompt tells the model
    (`shopbot.prompts` builds both from the state): what a backend that condenses the prompt
    reads instead of its lines (the bare base model's exemplar key, `shopbot.exemplars`)."""

    verified: bool
    failed_checks: int
    """Failed identity checks (shown while not verified)."""
    approved: str | None
    """The approved confirmation's action, `{"tool": ..., "args": ...}` as the prompt writes it."""
    hint: str | None
    """The prompt's next-step hint."""
    conversation: tuple[Said, ...]
    """The messages the prompt shows, oldest first (its budget drops the oldest)."""
    steps: tuple[StepShown, ...]
    """This turn's steps so far."""


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
    request in words or the assistant's question (what it means then depends on what was
    asked)."""
    situation: Situation | None = None
    """Where the conversation stands; None for a request not built from a conversation's
    state (a test's, a recorded training row's): a backend then reads the prompt as it is."""
    usage: Usage = field(default_factory=Usage, compare=False)
    """Filled in by the backend as it answers (the loop's traces read it)."""


@dataclass(frozen=True)
class ToolCall:
    """A step read as a call: a tool's name and its arguments, not yet validated."""

    tool: str
    args: dict[str, Any] | str
    """As the backend received them: decoded, or JSON text that gate 1 decodes (a streamed
    call's arguments, a call whose arguments the client could not decode)."""
    thought: str = ""
    raw: str = ""
    """What the model wrote, for the audit log (`action_log.raw_output`); by default the call
    written as step JSON."""

    def __post_init__(self) -> None:
        if not self.raw:
            object.__setattr__(self, "raw", step_json(self.tool, self.args, self.thought))


@dataclass(frozen=True)
class RawText:
    """Output a backend could not read as a call: prose, broken or truncated JSON, JSON of
    another shape. Gate 1 reads it as text and says what is wrong with it."""

    raw: str


ModelStep = ToolCall | RawText
"""What a backend answers a step with."""


@dataclass(frozen=True)
class StepDelta:
    """A piece of a step while the model writes it."""

    raw: str
    """The piece of the model's output: joined, what the audit log keeps of a step the loop
    cut off (a reply looping on a phrase)."""
    reply: str = ""
    """The reply text the piece revealed, when the step is a reply (a draft the customer sees)."""


class ChatModel(Protocol):
    """Proposes the next step; the loop parses and checks it."""

    @property
    def name(self) -> str: ...

    async def complete(self, request: ModelRequest) -> ModelStep: ...


@runtime_checkable
class StreamingChatModel(ChatModel, Protocol):
    """A backend that can also hand out the step while it is generated.

    The loop uses `stream` when a backend has it, to show a reply as it is written: it yields
    `StepDelta`s, then the step `complete` would have returned, which the loop parses and
    checks as usual. A generator, so the loop can close it (its turn abandoned half-way, a
    reply looping) and the backend stops generating.
    """

    def stream(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]: ...


def step_json(tool: str, args: dict[str, Any] | str, thought: str = "") -> str:
    """A call written as step JSON (arguments that are text are written as they are)."""
    if isinstance(args, str):
        head = json.dumps({"thought": thought, "action": {"tool": tool, "args": None}})
        return head.removesuffix("null}}") + args + "}}"
    return json.dumps({"thought": thought, "action": {"tool": tool, "args": args}})


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def json_text(raw: str) -> str | None:
    """The JSON object in a model's text, if it has braces: chat models like to wrap JSON in
    code fences or add a sentence around it."""
    text = _FENCE.sub("", raw.strip())
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else None


def read_step(text: str) -> ModelStep:
    """A step written as JSON text, `{"thought": ..., "action": {"tool": ..., "args": {...}}}`
    (what llama.cpp's grammar, the scripts and the oracles write), as a call; text that does
    not decode to exactly that shape is `RawText`, for gate 1 to say why."""
    found = json_text(text)
    if found is None:
        return RawText(text)
    try:
        data = json.loads(found)
    except (ValueError, RecursionError):  # gate 1 words each reason
        return RawText(text)
    return step_of(data, text)


def step_of(data: Any, raw: str) -> ModelStep:
    """Decoded step JSON as a call when it has exactly a step's keys and types, else `RawText`
    (gate 1 then finds and words what is wrong, as it does for any text)."""
    if not isinstance(data, dict) or not set(cast(dict[str, Any], data)) <= {"thought", "action"}:
        return RawText(raw)
    step = cast(dict[str, Any], data)
    action, thought = step.get("action"), step.get("thought", "")
    if not isinstance(action, dict) or not isinstance(thought, str):
        return RawText(raw)
    call = cast(dict[str, Any], action)
    tool, args = call.get("tool"), call.get("args")
    if set(call) != {"tool", "args"} or not isinstance(tool, str) or not isinstance(args, dict):
        return RawText(raw)
    return ToolCall(tool, cast(dict[str, Any], args), thought, raw)


async def read_stream(pieces: AsyncGenerator[str]) -> AsyncGenerator[StepDelta | ModelStep]:
    """A step written as JSON text in pieces: each piece with the reply text it revealed
    (`ReplyDraft`), then the step. Closing it closes `pieces`, so the backend stops writing."""
    draft = ReplyDraft()
    async with aclosing(pieces):
        async for piece in pieces:
            yield StepDelta(piece, draft.feed(piece))
    yield read_step(draft.raw)


async def at_once(step: ModelStep) -> AsyncGenerator[StepDelta | ModelStep]:
    """A step already whole, streamed as one piece (a reply's text in one draft)."""
    yield StepDelta(step.raw, ReplyDraft().feed(step.raw))
    yield step


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
