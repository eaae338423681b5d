"""The reference return conversation end to end with the scripted model: ms per turn.

Each run replays fixtures/conversations/30_reference_return.yaml on a fresh copy of the
demo shop: five turns, ending in a label bought from the in-process carrier sandbox and an
email delivered through the outbox to a real SMTP server on loopback. A turn's time is the
wall time of `Agent.run_turn` including the outbox delivery after it: harness, sandbox and
SMTP, no model time (the scripted model answers at once).

    python benchmarks/return_flow.py [--runs 30] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, summary, templates
from db.testing import Template, cloned
from shopbot.config import Settings
from shopbot.replay import Script, replay

SCRIPT = Path(__file__).resolve().parents[1] / "fixtures/conversations/30_reference_return.yaml"


def run(template: Template, tmp: Path, runs: int) -> tuple[list[float], list[float]]:
    script = Script.load(SCRIPT)
    turns: list[float] = []
    confirm_turns: list[float] = []
    for _ in range(runs):
        timings: list[float] = []
        with cloned(template) as url:
            settings = Settings(_env_file=None, database_url=url, data_dir=tmp)  # type: ignore[call-arg]
            result = asyncio.run(replay(script, settings, timings=timings))
        if not result.passed:
            raise SystemExit(f"the reference conversation failed: {result.failures}")
        turns += timings
        confirm_turns.append(timings[-1])  # return + label + email + reply
    return turns, confirm_turns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    print(f"reference return conversation, ms per turn — {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend, template in templates(args.backend, Path(tmp)):
            turns, confirm = run(template, Path(tmp), args.runs)
            print(f"{backend:10s} all turns:          {summary(turns)}")
            print(
                f"{backend:10s} the confirmed turn: {summary(confirm)} "
                f"(mean {statistics.fmean(confirm):.1f} ms: return, label, email, reply)"
            )


if __name__ == "__main__":
    main()
