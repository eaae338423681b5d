"""The local model's step latency: cold vs warm vs interleaved conversations, in one run.

Requests are the scripted replay's own (benchmarks/replay_steps.py): steps 2.. of two
conversations, A = 30_reference_return and B = 09_return_confirmed.

- cold: the context is emptied before each step (no prefix to reuse);
- warm: A's steps one after another, as the loop asks them (the prefix of each step, the
  stable system part and the conversation so far, was evaluated by the step before);
- interleaved: A, B, A, B... through one model: every switch saves the previous
  conversation's state and restores the next one's;
- interleaved, no saved states (keep_states=0): what the switches cost without them.

Per step: time to the first streamed piece (the prompt's evaluation, where reuse pays),
the whole step, and decoding speed (tokens after the first piece / time after it). With
`--prompt full` the prompt is the loop's (about 1000 tokens, the long prefix); with
`--prompt exemplars` the bare base model's (short system prompt + nearest exemplars); with
`--prompt student` the default local model's (the base with the shipped adapter, reading the
student's compact view).

    python benchmarks/local_model.py [--steps 4] [--threads 2] [--prompt full|exemplars|student|all]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from benchmarks.replay_steps import RecordedStep, record
from shopbot.config import Settings
from shopbot.exemplars import ExemplarLibrary
from shopbot.models.base import StepDelta
from shopbot.models.local import RETURNS_ADAPTER, LocalModel

A, B = "30_reference_return", "09_return_confirmed"


@dataclass
class Timing:
    first_ms: float
    total_ms: float
    prompt_tokens: int
    new_tokens: int

    @property
    def tokens_per_s(self) -> float:
        decoding = (self.total_ms - self.first_ms) / 1000
        return (self.new_tokens - 1) / decoding if decoding > 0 else float("nan")


async def step(model: LocalModel, s: RecordedStep, cid: str) -> Timing:
    t0 = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    async for piece in model.stream(replace(s.request, conversation_id=cid)):
        first = first if first is not None else time.perf_counter()
        if isinstance(piece, StepDelta):
            pieces.append(piece.raw)
    total = time.perf_counter()
    new = len(model.llm.tokenize("".join(pieces).encode(), add_bos=False, special=False))
    return Timing(
        ((first or total) - t0) * 1000, (total - t0) * 1000, model.llm.n_tokens - new + 1, new
    )


def forget(model: LocalModel) -> None:
    model.llm.reset()
    model._states.clear()
    model._current = None


async def measure(model: LocalModel, a: list[RecordedStep], b: list[RecordedStep], n: int):
    runs: dict[str, list[Timing]] = {}
    forget(model)
    runs["cold"] = []
    for s in a[1 : n + 1]:
        forget(model)
        runs["cold"].append(await step(model, s, "A"))
    forget(model)
    await step(model, a[0], "A")
    runs["warm"] = [await step(model, s, "A") for s in a[1 : n + 1]]
    for name, keep in (("interleaved", 16), ("interleaved, no saved states", 0)):
        forget(model)
        model.keep_states = keep
        await step(model, a[0], "A")
        await step(model, b[0], "B")
        runs[name] = []
        for sa, sb in zip(a[1 : n + 1], b[1 : n + 1], strict=False):
            runs[name] += [await step(model, sa, "A"), await step(model, sb, "B")]
        model.keep_states = 16
    return runs


def report(prompt: str, runs: dict[str, list[Timing]]) -> tuple[list[str], dict[str, object]]:
    cold_first = statistics.median(t.first_ms for t in runs["cold"])
    cold_total = statistics.median(t.total_ms for t in runs["cold"])
    lines = [
        f"prompt: {prompt}",
        "| steps | n | prompt tokens | first piece median | step median | decode tok/s | "
        "first piece: cold / this | step: cold / this |",
        "|---|---|---|---|---|---|---|---|",
    ]
    data: dict[str, object] = {}
    for name, ts in runs.items():
        first = statistics.median(t.first_ms for t in ts)
        total = statistics.median(t.total_ms for t in ts)
        tps = statistics.median(t.tokens_per_s for t in ts)
        tokens = statistics.median(t.prompt_tokens for t in ts)
        lines.append(
            f"| {name} | {len(ts)} | {tokens:.0f} | {first:.0f} ms | {total:.0f} ms | {tps:.1f} | "
            f"{cold_first / first:.1f}x | {cold_total / total:.1f}x |"
        )
        data[name] = {
            "first_ms": [round(t.first_ms, 1) for t in ts],
            "total_ms": [round(t.total_ms, 1) for t in ts],
            "prompt_tokens": [t.prompt_tokens for t in ts],
            "new_tokens": [t.new_tokens for t in ts],
        }
    return lines, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4, help="timed steps per conversation")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--prompt", choices=["full", "exemplars", "student", "all"], default="all")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/local_model.json"))
    args = parser.parse_args()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"local model step latency — {machine()}; threads {args.threads}; {load}")
    with tempfile.TemporaryDirectory() as tmp:
        steps = record(Path(tmp), [A, B])
    a = [s for s in steps if s.conversation == A]
    b = [s for s in steps if s.conversation == B]
    model = LocalModel(n_threads=args.threads)
    out: dict[str, object] = {"machine": machine(), "load": load, "threads": args.threads}
    prompts = ["full", "exemplars", "student"] if args.prompt == "all" else [args.prompt]
    for prompt in prompts:
        if prompt == "student":
            model.close()
            model = LocalModel(
                n_threads=args.threads,
                adapter=RETURNS_ADAPTER,
                merge_dir=Settings().merged_models_dir,
            )
        model.exemplars = ExemplarLibrary.load() if prompt == "exemplars" else None
        lines, out[prompt] = report(prompt, asyncio.run(measure(model, a, b, args.steps)))
        print("\n".join(lines), flush=True)
    state_ms: list[float] = []
    for _ in range(5):  # the cost of one switch: save A, load B
        t0 = time.perf_counter()
        model._switch("A" if model._current == "B" else "B")
        state_ms.append((time.perf_counter() - t0) * 1000)
    sizes = [len(s.llama_state) + s.scores.nbytes for s in model._states.values()]
    print(
        f"one switch (save + load): median {statistics.median(state_ms):.1f} ms; "
        f"saved states {[f'{n / 1e6:.1f} MB' for n in sizes]}"
    )
    out["switch_ms"] = state_ms
    out["state_bytes"] = sizes
    out["after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"load after: {out['after']}; wrote {args.json}")


if __name__ == "__main__":
    main()
