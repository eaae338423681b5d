"""The action schema, and parsing a model's step into one action (gate 1 of 3).

A backend answers with a `ModelStep` (`shopbot.models.base`): a `ToolCall`, a tool's name and
its arguments as the model gave them, or `RawText` it could not read as one (read here as
step JSON, `{"thought": "...", "action": {"tool": NAME, "args": {...}}}`). The action is a
pydantic discriminated union on `tool`, one member per registered tool plus `reply` (say
something to the customer, ending the turn) and `escalate` (hand over to a human). Anything
that does not validate becomes a `ParseFailure` the model reads and may fix.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from shopbot.models.base import ModelStep, RawText, json_text
from shopbot.storable import scrub, storable_data
from tools import ToolSpec

REPLY = "reply"
ESCALATE = "escalate"
UNSTORABLE_TEXT = "no text may hold a NUL character (\\u0000) or an unpaired surrogate."


class ReplyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=4000, description="What to tell the customer.")
    citations: list[str] = Field(
        default_factory=list[str],
        max_length=5,
        description="Anchors of the policy sections this reply relies on.",
    )


LOOP_REPEATS = 4
"""A run of words said this many times back to back is the model looping, not a reply..."""
LOOP_MIN_WORDS = 8
"""...once the run is this long: "1, 1, 1, 1" in a list of quantities is not a loop..."""
LONG_PHRASE = 6
"""...and a phrase of this many words or more is looping at its third time: the grammar caps
a string at 200 characters, which a long phrase fills before its fourth."""
LONGEST_LOOP = 40
"""The longest run of words (two or three sentences) looked for."""
_WORD = re.compile(r"[^\W_]+(?:[.,:'\u2019/-][^\W_]+)*")  # "29.00", "14:05", "can't" are one word


def repeated_phrase(text: str, *, finished: bool = True) -> str | None:
    """The words `text` says over and over, back to back ("sorry, sorry, sorry, ..."), if any.

    A small model decoding greedily can loop on a phrase until its token budget runs out.
    Words are compared without punctuation or case; while a reply is still being written
    (`finished=False`) its last word is left out, as it may still grow ("1" -> "12")."""
    words = _WORD.findall(text.casefold())
    if not finished:
        words = words[:-1]
    for period in range(1, min(LONGEST_LOOP, len(words) // (LOOP_REPEATS - 1)) + 1):
        repeats = LOOP_REPEATS if period < LONG_PHRASE else LOOP_REPEATS - 1
        need = max(repeats * period, LOOP_MIN_WORDS) - period
        run = 0
        for i in range(len(words) - period):
            run = run + 1 if words[i] == words[i + period] else 0
            if run >= need:
                start = i + 1 - run
                return " ".join(words[start : start + period])
    return None


@dataclass
class LoopWatch:
    """`repeated_phrase` for a reply while it is written: every `every` characters, on its
    last `tail` (a loop forming is at the end), so a long reply costs milliseconds, not a
    second of the event loop."""

    every: int = 24
    tail: int = 1500
    _checked: int = 0

    def check(self, shown: str) -> str | None:
        if len(shown) - self._checked < self.every:
            return None
        self._checked = len(shown)
        return repeated_phrase(shown[-self.tail :], finished=False)


class EscalateArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, description="Why a human should take over.")


BUILTIN_DESCRIPTIONS = {
    REPLY: "Say something to the customer and end your turn: answer, ask for what you need, "
    "or confirm what was done.",
    ESCALATE: "Hand the conversation to a human colleague when you cannot help within the rules.",
}


@dataclass(frozen=True)
class Action:
    """A parsed, schema-valid action: a tool name and its validated arguments."""

    tool: str
    args: BaseModel
    thought: str = ""

    @property
    def arguments(self) -> dict[str, Any]:
        return self.args.model_dump(mode="json")

    @property
    def digest(self) -> str:
        """Identifies the exact tool and arguments; confirmations are bound to it."""
        return action_digest(self.tool, self.arguments)


def action_digest(tool: str, arguments: Mapping[str, Any]) -> str:
    canonical = json.dumps({"tool": tool, "args": arguments}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ParseFailure:
    """The model's output did not validate; `error` is written for the model to fix it."""

    raw: str
    error: str
    looped: str | None = None
    """The phrase a reply kept repeating, when that is what failed: a small model decoding
    greedily can loop on one until its token budget runs out, and no customer should read it."""

    @classmethod
    def looping(cls, raw: str, phrase: str) -> ParseFailure:
        return cls(raw, f"The reply repeats {phrase!r} over and over: say it once.", phrase)


def _member(name: str, args_model: type[BaseModel]) -> type[BaseModel]:
    camel = "".join(part.title() for part in name.split("_"))
    tool_type: Any = Literal[name]  # pyright: ignore[reportInvalidTypeForm]
    return create_model(
        f"{camel}Action",
        __config__=ConfigDict(extra="forbid"),
        tool=(tool_type, ...),
        args=(args_model, ...),
    )


class ActionSchema:
    """The action union for a set of tools, and the parser that uses it."""

    def __init__(self, tools: Iterable[ToolSpec]) -> None:
        self.tools: dict[str, ToolSpec] = {t.name: t for t in tools}
        self.descriptions = {n: t.description for n, t in self.tools.items()} | BUILTIN_DESCRIPTIONS
        self.args_models: dict[str, type[BaseModel]] = {
            n: t.args_model for n, t in self.tools.items()
        } | {REPLY: ReplyArgs, ESCALATE: EscalateArgs}
        self.step_model = self.step_model_for(frozenset(self.args_models))
        self._schemas: dict[frozenset[str], dict[str, Any]] = {}

    @property
    def names(self) -> list[str]:
        return list(self.args_models)

    def step_model_for(self, allowed: frozenset[str]) -> type[BaseModel]:
        """The step schema offering only `allowed` tools (what a grammar or tool list uses)."""
        return _step_model(tuple((n, self.args_models[n]) for n in self.names if n in allowed))

    def json_schema(self, allowed: Iterable[str] | None = None) -> dict[str, Any]:
        """The step's JSON Schema; generated once per allowed set (it costs milliseconds)."""
        key = frozenset(self.args_models if allowed is None else allowed)
        schema = self._schemas.get(key)
        if schema is None:
            schema = self._schemas[key] = self.step_model_for(key).model_json_schema()
        return schema

    def parse(self, step: ModelStep) -> Action | ParseFailure:
        """Gate 1: the step as an action, or why it is none, worded for the model."""
        raw = step.raw
        if isinstance(step, RawText):
            data = _decoded(raw, json_text(raw))
        else:
            args = _decoded(raw, step.args) if isinstance(step.args, str) else step.args
            if isinstance(args, ParseFailure):
                return args
            data = {"thought": step.thought, "action": {"tool": step.tool, "args": args}}
        if isinstance(data, ParseFailure):
            return data
        if not storable_data(data):
            return ParseFailure(raw, f"Invalid action: {UNSTORABLE_TEXT}")
        action = data.get("action") if isinstance(data, dict) else None
        tool = action.get("tool") if isinstance(action, dict) else None
        if isinstance(tool, str) and tool not in self.args_models:
            return ParseFailure(raw, f"Unknown tool {tool!r}. Tools: {', '.join(self.names)}.")
        try:
            valid = self.step_model.model_validate(data)
        except ValidationError as exc:
            return ParseFailure(raw, scrub(_describe(exc)))
        parsed: Any = getattr(valid, "action")  # noqa: B009 - dynamic model
        if isinstance(parsed.args, ReplyArgs) and (looped := repeated_phrase(parsed.args.message)):
            return ParseFailure.looping(raw, looped)
        return Action(tool=parsed.tool, args=parsed.args, thought=getattr(valid, "thought", ""))


def _decoded(raw: str, text: str | None) -> Any:
    """JSON text decoded, or a `ParseFailure` saying why it is not."""
    if text is None:
        return ParseFailure(
            raw,
            'Output must be one JSON object: {"thought": ..., "action": '
            '{"tool": ..., "args": {...}}}.',
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return ParseFailure(raw, f"Invalid JSON: {exc.msg} at position {exc.pos}.")
    except ValueError:  # an integer of more digits than int() takes
        return ParseFailure(raw, "Invalid JSON: a number is too long.")
    except RecursionError:
        return ParseFailure(raw, "Invalid JSON: nested too deeply.")


@cache
def _step_model(members: tuple[tuple[str, type[BaseModel]], ...]) -> type[BaseModel]:
    union: Any = Union[tuple(_member(n, m) for n, m in members)]  # noqa: UP007
    action_type: Any = Annotated[union, Field(discriminator="tool")]
    return create_model(
        "Step",
        __config__=ConfigDict(extra="forbid"),
        thought=(str, Field(default="", max_length=2000, description="Your reasoning, briefly.")),
        action=(action_type, ...),
    )


def _describe(exc: ValidationError) -> str:
    parts: list[str] = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).endswith("Action"))
        parts.append(f"{loc}: {err['msg']}")
    return "Invalid action: " + "; ".join(parts) + "."
