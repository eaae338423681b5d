"""OpenTelemetry spans of the agent's turns, after the GenAI semantic conventions.

    invoke_agent shopbot          a turn: gen_ai.conversation.id, shopbot.turn, shopbot.steps,
    |                             shopbot.outcome, its model calls' tokens summed
    +-- step                      a step: shopbot.step, shopbot.action, shopbot.step.outcome
        +-- chat <model>          the model call: gen_ai.request.model, gen_ai.usage.*_tokens
        +-- guard <tool>          the verdict and its reason (loading the facts it needs included)
        +-- execute_tool <tool>   a dispatched tool: gen_ai.tool.name; error status on failure

Off by default: `shopbot.otlp` installs an SDK tracer provider only when
SHOPBOT_OTEL_ENDPOINT is set. Without one the API's tracer hands out non-recording spans,
and a turn's trace stops there: no child span is started, no attribute computed.

Spans are parented explicitly, never made current across a `yield`: the loop is an async
generator, and a context attached in one of its steps would leak into whoever consumes it.
Only a tool's span is current while the tool runs (an `await` with no `yield` inside), so
whatever instruments the tool's HTTP or database calls nests under it.

No message content by default: what customers write and what the model answers may be
personal data. `SHOPBOT_OTEL_CAPTURE_CONTENT=true` adds the model's raw output to each chat
span and the reply to the turn's span, as `gen_ai.output.messages`, with email addresses
masked as the recorder masks them (`shopbot.pii`). Guard reasons, parse errors and error
messages, always recorded, are masked the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Generator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from shopbot.config import Settings
from shopbot.events import ConfirmationRequested, Escalated, Event, Reply, TurnEnded
from shopbot.guard import Verdict
from shopbot.models.base import ModelRequest
from shopbot.pii import Minimiser

__all__ = ["AGENT_NAME", "ModelCall", "Tracing", "TurnTrace"]

AGENT_NAME = "shopbot"
TRACER_NAME = "shopbot"
ERROR_CHARS = 300
"""Longest error message or reason kept on a span."""

# The GenAI conventions' attribute names (the `opentelemetry-semantic-conventions` package
# carries them too, but only as incubating constants that move between releases).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
AGENT = "gen_ai.agent.name"
CONVERSATION = "gen_ai.conversation.id"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
ERROR_TYPE = "error.type"


class Tracing:
    """Where the agent's spans go, and whether they carry message content."""

    def __init__(self, tracer: Tracer | None = None, *, capture_content: bool = False) -> None:
        # The API's proxy tracer follows a provider installed later (`shopbot.otlp`).
        self.tracer = tracer or trace.get_tracer(TRACER_NAME)
        self.capture_content = capture_content

    @classmethod
    def of(cls, settings: Settings) -> Tracing:
        return cls(capture_content=settings.otel_capture_content)

    def turn(self, conversation_id: str, model: str, pii: Minimiser) -> TurnTrace:
        """The spans of one turn of `conversation_id` on the model named `model`."""
        return TurnTrace(self, conversation_id, model, pii)


def model_of(name: str) -> tuple[str, str, SpanKind]:
    """A `ChatModel.name` ("openai:gpt-4o-mini", "local:SmolLM2...", "scripted") as the
    conventions' provider and model, and the chat span's kind: only the OpenAI-compatible
    backend calls out of the process."""
    backend, _, model = name.partition(":")
    provider = {"local": "llama.cpp"}.get(backend, backend)
    return provider, model or backend, SpanKind.CLIENT if backend == "openai" else SpanKind.INTERNAL


class TurnTrace:
    """One turn's spans: the loop says what happens, this writes it down.

    Used as a context manager around the turn: an exception that ends the turn marks the
    turn's span (and the open step's) as failed."""

    def __init__(self, tracing: Tracing, conversation_id: str, model: str, pii: Minimiser) -> None:
        self._tracer = tracing.tracer
        self._content = tracing.capture_content
        self._pii = pii
        self._conversation_id = conversation_id
        self._provider, self._model, self._chat_kind = model_of(model)
        self.span = self._start(
            f"invoke_agent {AGENT_NAME}",
            None,
            {
                OPERATION: "invoke_agent",
                AGENT: AGENT_NAME,
                CONVERSATION: conversation_id,
                PROVIDER: self._provider,
                REQUEST_MODEL: self._model,
            },
        )
        self.on = self.span.is_recording()
        """False when nothing records (no SDK provider, or not sampled): then nothing else
        is started or computed."""
        self._step: Span | None = None
        self._outcome: str | None = None
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None

    def __enter__(self) -> TurnTrace:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.on:
            if exc is not None:
                for span in (self._step, self.span):
                    if span is not None:
                        self._failed(span, exc)
            if self._outcome is not None:
                self.span.set_attribute("shopbot.outcome", self._outcome)
            if self._input_tokens is not None:
                self.span.set_attribute(INPUT_TOKENS, self._input_tokens)
            if self._output_tokens is not None:
                self.span.set_attribute(OUTPUT_TOKENS, self._output_tokens)
        self.end_step()
        self.span.end()

    def saw(self, event: Event) -> None:
        """An event the turn yielded: its number, steps and outcome come from these."""
        if not self.on:
            return
        match event:
            case TurnEnded(turn=turn, steps=steps):
                self.span.set_attributes({"shopbot.turn": turn, "shopbot.steps": steps})
            case ConfirmationRequested():
                self._outcome = "confirmation"
            case Escalated():
                self._outcome = "escalated"
            case Reply(text=text):
                self._outcome = self._outcome or "reply"
                if self._content:
                    self.span.set_attribute(OUTPUT_MESSAGES, self._assistant(text))
            case _:
                pass

    def step(self, number: int) -> None:
        """Step `number` begins (ending the previous one)."""
        self.end_step()
        if self.on:
            self._step = self._start("step", self.span, {"shopbot.step": number})

    def end_step(self) -> None:
        if self._step is not None:
            self._step.end()
            self._step = None

    @contextmanager
    def chat(self, request: ModelRequest) -> Generator[ModelCall]:
        """The span of one model call; its tokens are read from `request.usage` at the end."""
        if not self.on:
            yield ModelCall(None, self)
            return
        span = self._start(
            f"chat {self._model}",
            self._step,
            {
                OPERATION: "chat",
                PROVIDER: self._provider,
                REQUEST_MODEL: self._model,
                CONVERSATION: self._conversation_id,
            },
            self._chat_kind,
        )
        try:
            yield ModelCall(span, self)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        finally:
            usage = request.usage
            if usage.input_tokens is not None:
                span.set_attribute(INPUT_TOKENS, usage.input_tokens)
                self._input_tokens = (self._input_tokens or 0) + usage.input_tokens
            if usage.output_tokens is not None:
                span.set_attribute(OUTPUT_TOKENS, usage.output_tokens)
                self._output_tokens = (self._output_tokens or 0) + usage.output_tokens
            span.end()

    def parse_failed(self, error: str) -> None:
        if self._step is not None:
            self._step.set_attributes(
                {
                    "shopbot.step.outcome": "parse_failed",
                    "shopbot.parse_error": self._masked(error),
                }
            )

    def verdict(self, tool: str, verdict: Verdict, ms: float) -> None:
        """The guard's verdict on `tool`, reached in the last `ms` milliseconds."""
        if self._step is None:
            return
        self._step.set_attributes(
            {"shopbot.action": tool, "shopbot.step.outcome": verdict.decision}
        )
        end = time.time_ns()
        span = self._start(
            f"guard {tool}",
            self._step,
            {
                "shopbot.action": tool,
                "shopbot.guard.decision": verdict.decision,
                "shopbot.guard.reason": self._masked(verdict.reason),
            },
            start_time=end - int(ms * 1_000_000),
        )
        span.end(end_time=end)

    async def execute_tool(
        self, tool: str, call: Awaitable[tuple[dict[str, Any], bool]]
    ) -> tuple[dict[str, Any], bool]:
        """Await `call`, a dispatch of `tool`, in its span: an error observation fails it."""
        if self._step is None:
            return await call
        span = self._start(
            f"execute_tool {tool}",
            self._step,
            {OPERATION: "execute_tool", TOOL_NAME: tool, TOOL_TYPE: "function"},
        )
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                data, error = await call
            if error:
                kind = str(data.get("error", "tool_error"))
                _fail(span, kind, self._masked(str(data.get("message", kind))))
            return data, error
        except BaseException as exc:
            self._failed(span, exc)
            raise
        finally:
            span.end()

    def _start(
        self,
        name: str,
        parent: Span | None,
        attributes: dict[str, Any],
        kind: SpanKind = SpanKind.INTERNAL,
        start_time: int | None = None,
    ) -> Span:
        # Exceptions are recorded by `_failed`, masked: the SDK's own would keep the message
        # and the traceback's locals as they are.
        return self._tracer.start_span(
            name,
            context=trace.set_span_in_context(parent) if parent is not None else None,
            kind=kind,
            attributes=attributes,
            start_time=start_time,
            record_exception=False,
            set_status_on_exception=False,
        )

    def _failed(self, span: Span, exc: BaseException) -> None:
        kind = type(exc)
        _fail(span, f"{kind.__module__}.{kind.__qualname__}", self._masked(str(exc)))

    def _masked(self, text: str) -> str:
        return self._pii.text(text)[:ERROR_CHARS]

    def _assistant(self, text: str) -> str:
        """`text` as the conventions' output messages, its email addresses masked."""
        part = {"type": "text", "content": self._pii.text(text)}
        return json.dumps([{"role": "assistant", "parts": [part]}])


class ModelCall:
    """What the loop tells a model call's span besides its tokens."""

    def __init__(self, span: Span | None, turn: TurnTrace) -> None:
        self._span = span
        self._turn = turn

    def answered(self, raw: str) -> None:
        """The model's raw output: kept (masked) only when content is captured."""
        if self._span is not None and self._turn._content:
            self._span.set_attribute(OUTPUT_MESSAGES, self._turn._assistant(raw))

    def failed(self, exc: BaseException) -> None:
        """The backend failed (`ModelError`); the loop goes on to a safe reply."""
        if self._span is not None:
            self._turn._failed(self._span, exc)


def _fail(span: Span, kind: str, message: str) -> None:
    span.set_attribute(ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, message))
