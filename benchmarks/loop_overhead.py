"""Harness time per agent step, model time excluded, on SQLite and PostgreSQL.

A scripted model plays a verified customer's order-status conversation over and over
(verify_identity, lookup_order, check_return_eligibility, reply). The harness time of a step
is the wall time between the model returning one output and being asked for the next:
parse, guard, order facts, tool, audit log, events, commit and the next prompt.

    python benchmarks/loop_overhead.py [--steps 1000] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, summary, templates
from db.engine import create_engine, session_factory
from shopbot.app import build_agent, start_conversation
from shopbot.config import Settings
from shopbot.loop import CustomerText
from shopbot.models.base import ModelRequest

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

    async def complete(self, request: ModelRequest) -> str:
        start = time.perf_counter()
        if self._returned is not None and self.i % len(SCRIPT):
            self.gaps.append((start - self._returned) * 1000)  # within one turn
        out = json.dumps(SCRIPT[self.i % len(SCRIPT)])
        self.i += 1
        self._returned = time.perf_counter()
        self.model_ms += (self._returned - start) * 1000
        return out


async def measure(url: str, tmp: Path, steps: int) -> tuple[list[float], list[float]]:
    """Per-step gaps inside turns, and whole turns' harness time divided by their steps."""
    settings = Settings(_env_file=None, database_url=url, data_dir=tmp)  # type: ignore[call-arg]
    engine = create_engine(url)
    model = TimedModel()
    agent = build_agent(settings, model, session_factory(engine))
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
    args = parser.parse_args()
    print(f"loop overhead per step (model time excluded) — {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend, template in templates(args.backend, Path(tmp)):
            url = template.clone()
            try:
                gaps, per_turn = asyncio.run(measure(url, Path(tmp), args.steps))
            finally:
                template.drop(url)
            print(f"{backend:10s} step gap inside a turn: {summary(gaps)}")
            print(
                f"{backend:10s} whole turn / steps:     {summary(per_turn)} "
                f"({len(per_turn) * len(SCRIPT)} steps in {len(per_turn)} turns, "
                f"mean {statistics.fmean(per_turn):.2f} ms)"
            )


if __name__ == "__main__":
    main()
