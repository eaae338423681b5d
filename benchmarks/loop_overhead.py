"""Harness time per agent step, model time excluded, on SQLite and PostgreSQL.

A scripted model plays a verified customer's order-status conversation over and over
(verify_identity, lookup_order, check_return_eligibility, reply). The harness time of a step
is the wall time between the model returning one output and being asked for the next:
parse, guard, order facts, tool, audit log, events, commit and the next prompt.

    python benchmarks/loop_overhead.py [--steps 1000] [--backend sqlite|postgresql|both]
                                       [--traces]

`--traces` records every turn's spans (`shopbot.tracing`) through the SDK's batch processor
into its in-memory exporter, as an OTLP export would minus the network: the difference to a
run without is what tracing costs a step. Without it the agent's tracer is the no-op one.
On a busy machine that difference drowns in the noise, so `--traces` also times the loop's
tracing calls alone (a step's worth: step, chat, verdict, tool) in CPU time, recording and
no-op.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, summary, templates
from db.engine import create_engine, session_factory
from shopbot.app import build_agent, start_conversation
from shopbot.config import Settings
from shopbot.events import Reply, TurnEnded
from shopbot.guard import Verdict
from shopbot.loop import CustomerText
from shopbot.models.base import ModelRequest, ModelStep, read_step
from shopbot.pii import Minimiser
from shopbot.tracing import Tracing

SCRIPT = [
    {
        "action": {
            "tool": "verify_identity",
            "args": {"order_id": "482913", "email": "jane.doe@example.com"},
        }
    },
    {"action": {"tool": "lookup_order", "args": {"order_id": "482913"}}},
    {"action": {"tool": "check_return_eligibility", "args": {"order_id": "482913"}}},
    {
        "action": {
            "tool": "reply",
            "args": {"message": "Your order was delivered; the jeans can go back."},
        }
    },
]


class TimedModel:
    """Replays SCRIPT forever and records when each call starts and ends."""

    name = "timed-script"

    def __init__(self) -> None:
        self.i = 0
        self.gaps: list[float] = []
        self.model_ms = 0.0
        self._returned: float | None = None

    async def complete(self, request: ModelRequest) -> ModelStep:
        start = time.perf_counter()
        if self._returned is not None and self.i % len(SCRIPT):
            self.gaps.append((start - self._returned) * 1000)  # within one turn
        out = read_step(json.dumps(SCRIPT[self.i % len(SCRIPT)]))
        self.i += 1
        self._returned = time.perf_counter()
        self.model_ms += (self._returned - start) * 1000
        return out


def in_memory_tracing() -> tuple[Tracing, Callable[[], int]]:
    """Tracing into the SDK's in-memory exporter, and a count of the spans it finished."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))

    def finished() -> int:
        provider.force_flush()
        return len(exporter.get_finished_spans())

    return Tracing(provider.get_tracer("shopbot")), finished


async def tracing_cpu_us(tracing: Tracing, steps: int) -> float:
    """CPU microseconds a step of the loop's tracing calls takes, alone (four-step turns)."""
    pii = Minimiser(lambda: "k" * 32)
    request = ModelRequest(messages=[], allowed=frozenset({"reply"}), schema={})
    verdict = Verdict("allow", "allowed")

    async def dispatched() -> tuple[dict[str, object], bool]:
        return {"status": "delivered"}, False

    start = time.process_time()
    for _ in range(steps // len(SCRIPT)):
        with tracing.turn("c1", TimedModel.name, pii) as trace:
            for step in range(1, len(SCRIPT) + 1):
                trace.step(step)
                with trace.chat(request) as call:
                    call.answered("{}")
                trace.verdict("lookup_order", verdict, 0.2)
                await trace.execute_tool("lookup_order", dispatched())
            trace.end_step()
            trace.saw(Reply(text="Delivered."))
            trace.saw(TurnEnded(turn=1, steps=len(SCRIPT), ms=1.0))
    return (time.process_time() - start) * 1e6 / steps


async def measure(
    url: str, tmp: Path, steps: int, tracing: Tracing | None
) -> tuple[list[float], list[float]]:
    """Per-step gaps inside turns, and whole turns' harness time divided by their steps."""
    settings = Settings(_env_file=None, database_url=url, data_dir=tmp)  # type: ignore[call-arg]
    engine = create_engine(url)
    model = TimedModel()
    agent = build_agent(settings, model, session_factory(engine))
    if tracing is not None:
        agent = replace(agent, tracing=tracing)
    per_turn: list[float] = []
    while len(per_turn) * len(SCRIPT) < steps:
        cid = await start_conversation(agent.sessions, settings)
        text = "Where is order 482913? I'm jane.doe@example.com"
        model_before, start = model.model_ms, time.perf_counter()
        async for _ in agent.run_turn(cid, CustomerText(text)):
            pass
        harness = (time.perf_counter() - start) * 1000 - (model.model_ms - model_before)
        per_turn.append(harness / len(SCRIPT))
    await engine.dispose()
    return model.gaps, per_turn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--traces", action="store_true", help="record spans (in memory)")
    args = parser.parse_args()
    tracing = "spans recorded in memory" if args.traces else "tracing off"
    print(f"loop overhead per step (model time excluded, {tracing}) — {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend, template in templates(args.backend, Path(tmp)):
            url = template.clone()
            try:
                tracing, finished = in_memory_tracing() if args.traces else (None, None)
                gaps, per_turn = asyncio.run(measure(url, Path(tmp), args.steps, tracing))
            finally:
                template.drop(url)
            print(f"{backend:10s} step gap inside a turn: {summary(gaps)}")
            print(
                f"{backend:10s} whole turn / steps:     {summary(per_turn)} "
                f"({len(per_turn) * len(SCRIPT)} steps in {len(per_turn)} turns, "
                f"mean {statistics.fmean(per_turn):.2f} ms)"
            )
            if finished is not None:
                print(f"{backend:10s} spans recorded: {finished()}")
    if args.traces:
        recording, _ = in_memory_tracing()
        on, off = (asyncio.run(tracing_cpu_us(t, args.steps)) for t in (recording, Tracing()))
        print(f"tracing calls alone, CPU per step: {on:.1f} µs recording, {off:.1f} µs no-op")


if __name__ == "__main__":
    main()
