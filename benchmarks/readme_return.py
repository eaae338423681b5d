"""The README's return with the embedded model: model time per turn, as a customer waits.

Jane Doe writes the README's first message; a rule-simulated customer answers whatever
ShopBot asks (the items, a reason, the confirmation: yes) until the return is done. The
model is the default local one (the packaged base with the shipped adapter), loaded once and
warmed by one untimed run of the same conversation first (its grammars compiled, the
prompt's start evaluated once), as a running server would be. Per turn: the steps the
model took and its time; the transcript shows what happened.

    python benchmarks/readme_return.py [--runs 3] [--adapter none]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from shopbot.app import build_model, open_policy_index
from shopbot.config import Settings
from shopbot.eval.runner import ScenarioTrials
from shopbot.eval.scenario import Expect, ExpectedReturn, Goal, Persona, Scenario
from shopbot.eval.simulator import RuleSimulator
from shopbot.models.base import ModelStep
from shopbot.replay import EmailExpectation

README_LINE = "Hi, I want to return the jeans from order 482913. My email is jane.doe@example.com"
SCENARIO = Scenario(
    id="readme_return",
    title="The README's return",
    category="return",
    persona=Persona(
        name="Jane Doe",
        orders=["482913"],
        emails=["jane.doe@example.com"],
        items="Just the jeans, they're too small.",
        opening=README_LINE,  # pyright: ignore[reportArgumentType]
    ),
    goal=Goal(kind="return", order_id="482913", lines=[1], reason="too small"),
    expect=Expect(
        verified_as="cust_jane",
        returns=[ExpectedReturn(order_id="482913", lines=[1])],
        emails=[
            EmailExpectation(
                to="jane.doe@example.com", subject_contains="482913", attachment="application/pdf"
            )
        ],
    ),
)


class Timed:
    """The model, with each call's time kept per turn."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls: list[float] = []

    @property
    def name(self) -> str:
        return str(self.model.name)

    async def complete(self, request: Any) -> ModelStep:
        import time

        t0 = time.perf_counter()
        out = await self.model.complete(request)
        self.calls.append(time.perf_counter() - t0)
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--adapter", default=None, help="SHOPBOT_MODEL_ADAPTER (default: shipped)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/readme_return.json"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"the README's return, embedded model — {machine()}; {load}", flush=True)
    settings = Settings(_env_file=None, model="local", model_adapter=args.adapter)  # type: ignore[call-arg]
    model = build_model(settings)
    runs: list[dict[str, Any]] = []

    async def go() -> None:
        async with ScenarioTrials(
            lambda s: timed, RuleSimulator, policy_index=open_policy_index(settings)
        ) as trials:
            for n in range(args.runs + 1):
                timed.calls.clear()
                result = await trials(SCENARIO, n)
                if n == 0:
                    continue  # warm-up: loads the grammar cache and the prompt's start
                runs.append(
                    {
                        "passed": result.passed,
                        "failures": result.failures,
                        "turns": len(result.turn_ms),
                        "steps": result.model_calls,
                        "model_s": round(sum(timed.calls), 2),
                        "turn_s": [round(ms / 1000, 2) for ms in result.turn_ms],
                        "step_s": [round(c, 2) for c in timed.calls],
                        "transcript": result.transcript,
                    }
                )
                print(json.dumps(runs[-1]), flush=True)

    timed = Timed(model)
    asyncio.run(go())
    model_s = [r["model_s"] for r in runs]
    print(
        f"model time for the whole return: median {statistics.median(model_s):.1f} s over "
        f"{len(runs)} runs; passed {sum(r['passed'] for r in runs)}/{len(runs)}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine(), "load": load, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
