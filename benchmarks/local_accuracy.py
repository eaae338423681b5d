"""The local model on the replay suite's steps: parse failures and the share of right actions.

Teacher forcing: every step of every scripted conversation (`fixtures/conversations/`) is put
to the local model with exactly the request the scripted model got (same prompt, allowed set,
schema and hints), so one wrong step does not derail the steps after it.

- Parse failures: outputs that fail `ActionSchema.parse`, over all steps.
- Correct: over the steps whose scripted action is one to copy (it parses, was allowed and
  the guard did not deny it; scripts that play a wrong or manipulated model on purpose are
  left out), the local action names the same tool and the same key arguments:
  verify_identity order_id + email; lookup_order order_id; check_return_eligibility order_id
  + lines (as a set); create_return order_id + lines, and every argument when it executes a
  confirmed action (the guard holds it to the confirmed digest); send_return_label
  return_id. Free text (reply messages, search queries, reasons, escalation reasons) is not
  compared.
- Right, or the eligibility check first: also counts, where a script goes straight to
  `create_return` for lines this conversation has not checked, a `check_return_eligibility`
  of the same order and lines. `create_return`'s own description says "check eligibility
  first", and the student's teacher does; the fault scripts (38-42) skip the check to reach
  the carrier sooner. Reported beside the strict count, never instead of it.

Variants, each a fresh model: `none` (the bare base on the loop's full prompt), `exemplars`
(the bare base with the nearest few from fixtures/exemplars.yaml, leaving out any exemplar
whose `source` is the conversation being scored), `student` (the base with the shipped
adapter merged in, as the app runs it, on the student's view), `student-lora` (the same
adapter applied by llama.cpp at run time) and `gguf:PATH` (a merged student GGUF, e.g. one
quantization level written by `shopbot distil export --levels`).

    python benchmarks/local_accuracy.py [--variants exemplars,student] [--shots 3]
        [--threads 1] [--only 30_reference_return ...] [--json local_accuracy.json]
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
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from benchmarks.replay_steps import RecordedStep, record
from shopbot.actions import Action, ActionSchema
from shopbot.config import Settings
from shopbot.distil.heldout import correct
from shopbot.exemplars import ExemplarLibrary
from shopbot.models.local import RETURNS_ADAPTER, LocalModel
from tools import TOOLS


@dataclass
class Outcome:
    step: RecordedStep
    raw: str
    ms: float
    parsed: Action | None
    error: str | None = None

    @property
    def scored(self) -> bool:
        return self.step.expected is not None

    @property
    def tool_ok(self) -> bool:
        expected = self.step.expected
        return (
            expected is not None and self.parsed is not None and self.parsed.tool == expected.tool
        )

    @property
    def checks_first(self) -> bool:
        """The eligibility check of the lines the script would return at once."""
        expected, parsed = self.step.expected, self.parsed
        return (
            expected is not None
            and parsed is not None
            and expected.tool == "create_return"
            and parsed.tool == "check_return_eligibility"
            and str(parsed.arguments.get("order_id")) == str(expected.arguments.get("order_id"))
            and set(parsed.arguments.get("lines") or [])
            == set(expected.arguments.get("lines") or [])
        )

    @property
    def ok(self) -> bool:
        expected = self.step.expected
        return (
            expected is not None
            and self.parsed is not None
            and correct(expected, self.parsed, str(self.step.request.messages[-1].content))
        )


@dataclass
class VariantResult:
    name: str
    outcomes: list[Outcome] = field(default_factory=list[Outcome])

    def summary(self) -> dict[str, Any]:
        scored = [o for o in self.outcomes if o.scored]
        by_tool: dict[str, list[Outcome]] = defaultdict(list)
        for o in scored:
            assert o.step.expected is not None
            by_tool[o.step.expected.tool].append(o)
        return {
            "variant": self.name,
            "steps": len(self.outcomes),
            "parse_failures": sum(o.parsed is None for o in self.outcomes),
            "outside_allowed": sum(
                o.parsed is not None and o.parsed.tool not in o.step.request.allowed
                for o in self.outcomes
            ),
            "scored": len(scored),
            "tool_correct": sum(o.tool_ok for o in scored),
            "correct": sum(o.ok for o in scored),
            "correct_or_checks_first": sum(
                o.ok or (o.checks_first and o.step.conversation not in checked_before(o, self))
                for o in scored
            ),
            "first_step_correct": _share([o for o in scored if o.step.index == 0]),
            "step_ms_median": round(statistics.median(o.ms for o in self.outcomes), 1),
            "by_tool": {
                tool: {
                    "n": len(os),
                    "tool": sum(o.tool_ok for o in os),
                    "correct": sum(o.ok for o in os),
                }
                for tool, os in sorted(by_tool.items())
            },
        }


def checked_before(outcome: Outcome, result: VariantResult) -> set[str]:
    """The conversations whose script checked eligibility before `outcome`'s step."""
    found: set[str] = set()
    for o in result.outcomes:
        if o is outcome:
            break
        if '"check_return_eligibility"' in o.step.output:
            found.add(o.step.conversation)
    return found


def _share(outcomes: list[Outcome]) -> str:
    return f"{sum(o.ok for o in outcomes)}/{len(outcomes)}"


async def run_variant(
    name: str,
    steps: list[RecordedStep],
    model: LocalModel,
    library: ExemplarLibrary | None,
    log: Path | None = None,
) -> VariantResult:
    schema = ActionSchema(TOOLS)
    result = VariantResult(name)
    for step in steps:
        if library is not None:
            without = getattr(library, "without", None)
            model.exemplars = without(step.conversation) if without else library
        request = replace(step.request, conversation_id=f"{name}:{step.conversation}")
        t0 = time.perf_counter()
        answer = await model.complete(request)
        ms = (time.perf_counter() - t0) * 1000
        raw, parsed = answer.raw, schema.parse(answer)
        outcome = Outcome(step, raw, ms, parsed if isinstance(parsed, Action) else None)
        if not isinstance(parsed, Action):
            outcome.error = parsed.error
        result.outcomes.append(outcome)
        mark = (
            "!!" if outcome.error else "-" if not outcome.scored else "ok" if outcome.ok else "xx"
        )
        if log is not None:  # step by step, so an interrupted run still counts
            with log.open("a") as f:
                f.write(json.dumps(_row(name, outcome)) + "\n")
        shown = f"{raw[:110]}" + (f"\n     {outcome.error[:200]}" if outcome.error else "")
        print(f"  {mark:2s} {step.conversation}#{step.index} {ms:7.0f} ms  {shown}", flush=True)
    return result


def _row(variant: str, o: Outcome) -> dict[str, Any]:
    expected = o.step.expected
    return {
        "variant": variant,
        "step": f"{o.step.conversation}#{o.step.index}",
        "expected": expected.arguments | {"tool": expected.tool} if expected else None,
        "output": o.raw,
        "ok": o.ok if o.scored else None,
        "tool_ok": o.tool_ok if o.scored else None,
        "parse_error": o.error,
        "ms": round(o.ms, 1),
    }


def table(results: list[VariantResult]) -> str:
    rows = [
        "| variant | steps | parse failures | scored | right tool | right action | right, or the eligibility check first | first step of a conversation | step median |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.summary()
        rows.append(
            f"| {s['variant']} | {s['steps']} | {s['parse_failures']} | {s['scored']} | "
            f"{s['tool_correct']} ({s['tool_correct'] / s['scored']:.0%}) | "
            f"{s['correct']} ({s['correct'] / s['scored']:.0%}) | "
            f"{s['correct_or_checks_first']} ({s['correct_or_checks_first'] / s['scored']:.0%}) | "
            f"{s['first_step_correct']} | "
            f"{s['step_ms_median'] / 1000:.1f} s |"
        )
    tools = sorted({t for r in results for t in r.summary()["by_tool"]})
    rows += ["", "| expected tool | n | " + " | ".join(r.name for r in results) + " |"]
    rows.append("|---|---|" + "---|" * len(results))
    for tool in tools:
        cells = [r.summary()["by_tool"].get(tool, {"n": 0, "correct": 0}) for r in results]
        rows.append(
            f"| {tool} | {cells[0]['n']} | " + " | ".join(str(c["correct"]) for c in cells) + " |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="exemplars,student")
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--only", nargs="*", help="conversation stems to run (default: all)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/local_accuracy.json"))
    parser.add_argument("--log", type=Path, help="append each step's outcome here (JSON lines)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the suite's carrier and SMTP faults log on purpose
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"local model on the replay suite — {machine()}; {load}")
    with tempfile.TemporaryDirectory() as tmp:
        steps = record(Path(tmp), args.only)
    print(f"{len(steps)} steps, {sum(s.expected is not None for s in steps)} scored")
    library = ExemplarLibrary.load()
    results: list[VariantResult] = []
    for name in args.variants.split(","):
        print(f"variant {name}:")
        if name == "student":  # as the app runs it: merged (shopbot.models.merge)
            merge_dir = Settings().merged_models_dir
            model = LocalModel(n_threads=args.threads, adapter=RETURNS_ADAPTER, merge_dir=merge_dir)
        elif name == "student-lora":
            model = LocalModel(n_threads=args.threads, adapter=RETURNS_ADAPTER)
        elif name.startswith("gguf:"):
            model = LocalModel(Path(name[5:]), n_threads=args.threads, student=True)
        else:
            model = LocalModel(n_threads=args.threads, shots=args.shots)
        results.append(
            asyncio.run(
                run_variant(name, steps, model, library if name == "exemplars" else None, args.log)
            )
        )
        del model
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": machine(),
                "load": load,
                "shots": args.shots,
                "threads": args.threads,
                "results": [r.summary() for r in results],
                "steps": [_row(r.name, o) for r in results for o in r.outcomes],
            },
            indent=1,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
