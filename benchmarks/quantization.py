"""The student at each quantization level: what it costs and what it still gets right.

Variants: the packaged Q4_1 base with the shipped GGUF LoRA adapter (what `make run` loads),
and the merged student (`shopbot distil export --levels F16,Q8_0,Q5_K_M,Q4_K_M`) at each
level. Per variant, in one run:

- size on disk (base + adapter for the adapter variant), load time (median of 3);
- raw llama.cpp speed on 2 threads (no grammar): prefill tokens/s over a student prompt of
  about 300 tokens (context emptied first, median of 3) and greedy decode tokens/s (64 tokens);
- right actions, teacher-forced, on the replay suite (`benchmarks/local_accuracy.py`'s steps)
  and on a sample of the generated held-out test split, and the step median;
- with `--scenarios`, the eval scenarios' pass^1 (`shopbot eval`'s runner, rule simulator).

    python benchmarks/quantization.py [--run data/distil/run] [--heldout 150] [--scenarios]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from benchmarks.local_accuracy import run_variant
from benchmarks.replay_steps import record
from shopbot.actions import ActionSchema
from shopbot.distil.generate import read
from shopbot.distil.heldout import score, unseen
from shopbot.models.local import RETURNS_ADAPTER, LocalModel, packaged_model_path
from tools import TOOLS

DATA = Path("fixtures/distil/steps.jsonl.gz")
LEVELS = ["F16", "Q8_0", "Q5_K_M", "Q4_K_M"]


def _model(path: Path | None, adapter: Path | None) -> LocalModel:
    return LocalModel(path, adapter=adapter, student=True, n_threads=2)


def raw_speed(model: LocalModel, prompt: str) -> tuple[float, float, int]:
    """Prefill and decode tokens/s of the bare llama.cpp object, on its own thread."""
    llm: Any = model.llm

    def run() -> tuple[float, float, int]:
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        prefill: list[float] = []
        decode: list[float] = []
        for _ in range(3):
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(tokens)
            prefill.append(len(tokens) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for _ in range(64):
                token = llm.sample(temp=0.0)
                llm.eval([token])
            decode.append(64 / (time.perf_counter() - t0))
        llm.reset()
        return statistics.median(prefill), statistics.median(decode), len(tokens)

    return model._thread.submit(run).result()


def size_mb(*paths: Path | None) -> float:
    return sum(p.stat().st_size for p in paths if p is not None) / 1e6


async def pass1(model: LocalModel) -> tuple[int, int]:
    from shopbot.app import open_policy_index
    from shopbot.config import Settings
    from shopbot.eval.runner import ScenarioTrials
    from shopbot.eval.scenario import load_scenarios
    from shopbot.eval.simulator import RuleSimulator

    scenarios = load_scenarios(Path("fixtures/scenarios"))
    passed = 0
    async with ScenarioTrials(
        lambda s: model, RuleSimulator, policy_index=open_policy_index(Settings())
    ) as trials:
        for scenario in scenarios:
            result = await trials(scenario, 1)
            passed += result.passed and not result.violations
    return passed, len(scenarios)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, default=Path("data/distil/run"))
    parser.add_argument("--heldout", type=int, default=150)
    parser.add_argument("--scenarios", action="store_true")
    parser.add_argument("--no-replay", action="store_true", help="skip the replay suite's steps")
    parser.add_argument("--only", nargs="*", help="variants to run (adapter, F16, Q8_0, ...)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/quantization.json"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"student quantization levels — {machine()}; {load}", flush=True)
    steps = []
    if not args.no_replay:
        with tempfile.TemporaryDirectory() as tmp:
            steps = record(Path(tmp))
    rows = unseen(read(DATA))
    rows = sorted(rows, key=lambda r: (r["scenario"], r["step"]))[
        :: max(1, len(rows) // args.heldout)
    ]
    rows = rows[: args.heldout]
    prompt_row = max(rows, key=lambda r: len(r["prompt"]))
    variants: list[tuple[str, Path | None, Path | None]] = [
        ("Q4_1 + LoRA adapter", None, RETURNS_ADAPTER)
    ]
    variants += [
        (f"merged {level}", args.run / f"student-{level}.gguf", None)
        for level in LEVELS
        if (args.run / f"student-{level}.gguf").is_file()
    ]
    if args.only:
        variants = [v for v in variants if any(o in v[0] for o in args.only)]
    results: list[dict[str, Any]] = []
    schema = ActionSchema(TOOLS)
    for name, path, adapter in variants:
        loads: list[float] = []
        for _ in range(2):
            t0 = time.perf_counter()
            _model(path, adapter).close()
            loads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model = _model(path, adapter)
        loads.append(time.perf_counter() - t0)
        from shopbot.models.student import STUDENT_SYSTEM

        text = (
            f"<|im_start|>system\n{STUDENT_SYSTEM}<|im_end|>\n<|im_start|>user\n"
            f"{prompt_row['prompt']}<|im_end|>\n<|im_start|>assistant\n"
        )
        prefill, decode, n_prompt = raw_speed(model, text)
        replay: dict[str, Any] = {"correct": None, "scored": None, "parse_failures": None}
        if not args.no_replay:
            replay = asyncio.run(run_variant(name, steps, model, None)).summary()
        held = asyncio.run(score(model, rows, schema))
        entry: dict[str, Any] = {
            "variant": name,
            "size_mb": round(size_mb(path or packaged_model_path(), adapter), 1),
            "load_s": round(statistics.median(loads), 3),
            "prefill_tok_s": round(prefill, 1),
            "decode_tok_s": round(decode, 1),
            "prompt_tokens": n_prompt,
            "replay_right": replay["correct"],
            "replay_scored": replay["scored"],
            "replay_parse_failures": replay["parse_failures"],
            "replay_step_ms": replay.get("step_ms_median"),
            "heldout_right": sum(s.ok for s in held),
            "heldout_steps": len(held),
            "heldout_step_ms": round(statistics.median(s.ms for s in held), 1),
        }
        if args.scenarios:
            entry["pass1"], entry["scenarios"] = asyncio.run(pass1(model))
        print(json.dumps(entry), flush=True)
        results.append(entry)
        model.close()
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"machine": machine(), "load": load, "results": results}, indent=1)
    )


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| variant | size | load | prefill | decode | replay right | held-out right | held-out step median | pass^1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p1 = f"{r['pass1']}/{r['scenarios']}" if "pass1" in r else "-"
        rows.append(
            f"| {r['variant']} | {r['size_mb']} MB | {r['load_s']:.2f} s | "
            f"{r['prefill_tok_s']:.0f} tok/s | {r['decode_tok_s']:.0f} tok/s | "
            f"{r['replay_right']}/{r['replay_scored']} | {r['heldout_right']}/{r['heldout_steps']} | "
            f"{r['heldout_step_ms'] / 1000:.2f} s | {p1} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
