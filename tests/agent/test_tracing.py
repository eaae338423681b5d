"""A turn's OpenTelemetry spans, read back from the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from agent_support import act, turn
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shopbot.app import start_conversation
from shopbot.config import Settings
from shopbot.errors import ModelError, ScriptError
from shopbot.loop import Agent, CustomerText
from shopbot.models.base import ModelRequest
from shopbot.models.scripted import ScriptedModel
from shopbot.otlp import install
from shopbot.replay import Script, replay
from shopbot.tracing import Tracing
from tests.plugin import settings_for
from tests.tracing_support import forget_tracer_provider

CONVERSATIONS = Path(__file__).resolve().parents[2] / "fixtures" / "conversations"
JANE = "Return the jeans from 482913 please, jane.doe@example.com"
ADDRESS = "jane.doe@example.com"
VERIFY = act("verify_identity", order_id="482913", email=ADDRESS)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    yield found
    found.shutdown()


def traced(agent: Agent, exporter: InMemorySpanExporter, *, capture: bool = False) -> Agent:
    """`agent` with a tracer of its own that keeps every span in `exporter`."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return replace(agent, tracing=Tracing(provider.get_tracer("test"), capture_content=capture))


async def first_turn(
    agent: Agent, exporter: InMemorySpanExporter, *outputs: Any, text: str = JANE
) -> tuple[str, tuple[ReadableSpan, ...]]:
    """A new conversation's first turn with these model outputs: its id and its spans."""
    agent = traced(agent, exporter)
    cid = await start_conversation(agent.sessions, agent.settings)
    await turn(agent, cid, CustomerText(text), *outputs)
    return cid, exporter.get_finished_spans()


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


def ids(span: ReadableSpan) -> tuple[int, int]:
    """The span's trace id and its own id."""
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def parent_of(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    assert span.parent.trace_id == ids(span)[0]
    return next(s for s in spans if ids(s)[1] == span.parent.span_id)


def texts(span: ReadableSpan) -> list[str]:
    """Every string a span carries: attributes, its status, its events' attributes."""
    found = [str(v) for v in (span.attributes or {}).values()]
    found.append(span.status.description or "")
    for event in span.events:
        found += [str(v) for v in (event.attributes or {}).values()]
    return found


async def test_a_turn_is_one_tree_of_steps_model_calls_verdicts_and_tools(
    agent: Agent, exporter: InMemorySpanExporter
) -> None:
    cid, spans = await first_turn(
        agent,
        exporter,
        VERIFY,
        act("lookup_order", order_id="482913"),
        # No policy index among this agent's services: the tool fails (`no_index`).
        act("search_policy", query="return window"),
        act("reply", message="Your jeans can go back."),
    )
    (root,) = named(spans, "invoke_agent")
    assert root.parent is None and root.kind is SpanKind.INTERNAL
    attrs = root.attributes or {}
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.conversation.id"] == cid
    assert (attrs["shopbot.turn"], attrs["shopbot.steps"], attrs["shopbot.outcome"]) == (
        1,
        4,
        "reply",
    )
    assert {ids(s)[0] for s in spans} == {ids(root)[0]}

    steps = named(spans, "step")
    assert [(s.attributes or {})["shopbot.step"] for s in steps] == [1, 2, 3, 4]
    assert all(parent_of(s, spans) is root for s in steps)
    assert [(s.attributes or {})["shopbot.action"] for s in steps] == [
        "verify_identity", "lookup_order", "search_policy", "reply",
    ]  # fmt: skip

    chats = named(spans, "chat ")
    assert [parent_of(c, spans) for c in chats] == steps
    model = agent.model
    assert isinstance(model, ScriptedModel)
    for chat, call in zip(chats, model.calls, strict=True):
        a = chat.attributes or {}
        assert chat.name == "chat scripted" and a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.request.model"] == "scripted"
        assert a["gen_ai.usage.input_tokens"] == call.usage.input_tokens
        assert a["gen_ai.usage.output_tokens"] == call.usage.output_tokens
    used = [c.usage for c in model.calls]
    assert attrs["gen_ai.usage.input_tokens"] == sum(u.input_tokens or 0 for u in used) > 0
    assert attrs["gen_ai.usage.output_tokens"] == sum(u.output_tokens or 0 for u in used) > 0

    guards = named(spans, "guard ")
    assert [parent_of(g, spans) for g in guards] == steps
    assert [(g.attributes or {})["shopbot.guard.decision"] for g in guards] == ["allow"] * 4

    tools = named(spans, "execute_tool ")
    assert [t.name for t in tools] == [
        "execute_tool verify_identity", "execute_tool lookup_order", "execute_tool search_policy",
    ]  # fmt: skip
    assert [parent_of(t, spans) for t in tools] == steps[:3]
    assert [(t.attributes or {})["gen_ai.tool.name"] for t in tools] == [
        "verify_identity", "lookup_order", "search_policy",
    ]  # fmt: skip
    assert [t.status.status_code for t in tools] == [
        StatusCode.UNSET,
        StatusCode.UNSET,
        StatusCode.ERROR,
    ]
    assert (tools[2].attributes or {})["error.type"] == "no_index"
    assert root.status.status_code is StatusCode.UNSET


async def test_parse_failures_denials_and_confirmations_are_each_steps_outcome(
    agent: Agent, exporter: InMemorySpanExporter
) -> None:
    _, spans = await first_turn(
        agent,
        exporter,
        "not json",
        act("lookup_order", order_id="482913"),  # before verification: denied
        VERIFY,
        act("create_return", order_id="482913", lines=[1], reason="too small"),
    )
    steps = named(spans, "step")
    outcomes = [(s.attributes or {})["shopbot.step.outcome"] for s in steps]
    assert outcomes == ["parse_failed", "deny", "allow", "confirm"]
    assert (steps[0].attributes or {})["shopbot.parse_error"]
    assert "shopbot.action" not in (steps[0].attributes or {})
    (denied,) = [g for g in named(spans, "guard ") if g.name == "guard lookup_order"]
    assert "verif" in str((denied.attributes or {})["shopbot.guard.reason"])
    # Denied and confirmation-bound actions are not dispatched.
    assert [t.name for t in named(spans, "execute_tool ")] == ["execute_tool verify_identity"]
    (root,) = named(spans, "invoke_agent")
    assert (root.attributes or {})["shopbot.outcome"] == "confirmation"


async def test_no_email_address_is_recorded_unless_content_is_captured_and_then_masked(
    agent: Agent, exporter: InMemorySpanExporter
) -> None:
    other = act("verify_identity", order_id="482913", email="john.roe@example.com")
    reply = act("reply", message=f"Thanks, I have {ADDRESS} on file.")
    cid = await start_conversation(agent.sessions, agent.settings)

    agent = traced(agent, exporter)
    await turn(agent, cid, CustomerText(JANE), other, VERIFY, reply)
    spans = exporter.get_finished_spans()
    # The guard's reason names the address it refused: masked, as in the audit log.
    refused = next(
        g
        for g in named(spans, "guard ")
        if (g.attributes or {})["shopbot.guard.decision"] == "deny"
    )
    assert "j***@example.com" in str((refused.attributes or {})["shopbot.guard.reason"])
    for span in spans:
        assert "gen_ai.output.messages" not in (span.attributes or {})
        assert not [t for t in texts(span) if "jane.doe@" in t or "john.roe@" in t], span.name

    exporter.clear()
    agent = traced(agent, exporter, capture=True)
    await turn(agent, cid, CustomerText("and again?"), VERIFY, reply)
    spans = exporter.get_finished_spans()
    captured = [
        str((s.attributes or {})["gen_ai.output.messages"])
        for s in spans
        if "gen_ai.output.messages" in (s.attributes or {})
    ]
    assert len(captured) == 3  # two model outputs and the turn's reply
    assert all("j***@example.com" in c for c in captured)
    for span in spans:
        assert not [t for t in texts(span) if "jane.doe@" in t], span.name


async def test_a_failing_model_call_is_an_error_span_and_the_turn_ends_safely(
    agent: Agent, exporter: InMemorySpanExporter
) -> None:
    def down(_request: ModelRequest) -> str:
        raise ModelError("cannot reach the model at http://127.0.0.1:9")

    _, spans = await first_turn(agent, exporter, down, text="hello")
    (chat,) = named(spans, "chat ")
    assert chat.status.status_code is StatusCode.ERROR
    assert (chat.attributes or {})["error.type"] == "shopbot.errors.ModelError"
    assert "gen_ai.usage.input_tokens" not in (chat.attributes or {})  # nothing was counted
    (root,) = named(spans, "invoke_agent")
    assert (root.attributes or {})["shopbot.outcome"] == "escalated"
    assert root.status.status_code is StatusCode.UNSET  # the turn itself ended as designed


async def test_an_exception_that_ends_the_turn_fails_its_span_and_the_open_step(
    agent: Agent, exporter: InMemorySpanExporter
) -> None:
    agent = traced(agent, exporter)
    cid = await start_conversation(agent.sessions, agent.settings)
    with pytest.raises(ScriptError):  # the script is empty: the model "runs out"
        [e async for e in agent.run_turn(cid, CustomerText("hello"))]
    spans = exporter.get_finished_spans()
    for name in ("invoke_agent", "step", "chat "):
        (span,) = named(spans, name)
        assert span.status.status_code is StatusCode.ERROR, name
        assert (span.attributes or {})["error.type"] == "shopbot.errors.ScriptError"


async def test_off_by_default_nothing_is_installed_and_nothing_records(agent: Agent) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.otel_endpoint is None
    assert install(settings) is None
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    spans = agent.tracing.turn("c1", agent.model.name, agent.pii)
    assert not spans.on and not spans.span.is_recording()
    cid = await start_conversation(agent.sessions, agent.settings)
    events: list[Any] = await turn(
        agent, cid, CustomerText(JANE), VERIFY, act("reply", message="Hi.")
    )
    assert events  # the turn ran as ever, with nothing to record it


@pytest.fixture
def installed() -> Iterator[InMemorySpanExporter]:
    """A process-wide SDK provider, as `shopbot.otlp.install` sets, keeping spans in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    forget_tracer_provider()


async def test_a_replayed_return_is_one_trace_a_turn_through_the_installed_provider(
    db_url: str, tmp_path: Path, installed: InMemorySpanExporter
) -> None:
    script = Script.load(CONVERSATIONS / "09_return_confirmed.yaml")
    result = await replay(script, settings_for(db_url, tmp_path))
    assert result.passed, result.failures
    spans = installed.get_finished_spans()
    turns = sorted(named(spans, "invoke_agent"), key=lambda s: s.start_time or 0)
    said = [
        ((t.attributes or {})["shopbot.turn"], (t.attributes or {})["shopbot.outcome"])
        for t in turns
    ]
    assert said == [(1, "reply"), (2, "confirmation"), (3, "reply")]
    assert len({ids(t)[0] for t in turns}) == 3  # a trace each
    assert len({str((t.attributes or {})["gen_ai.conversation.id"]) for t in turns}) == 1
    (created,) = [t for t in named(spans, "execute_tool ") if t.name.endswith("create_return")]
    assert ids(created)[0] == ids(turns[2])[0]  # run in the turn the customer confirmed it
