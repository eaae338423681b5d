"""Right actions on recorded steps, teacher-forced: each step's request is put to a model
exactly as the loop made it (prompt, allowed set, schema, hints), so one wrong step does not
derail the next. Used on the generated held-out split here and on the replay suite by
`benchmarks/local_accuracy.py`.

An action is right when it names the teacher's tool with the same key arguments:
verify_identity order_id + email; lookup_order order_id; check_return_eligibility
order_id + lines (as a set); create_return order_id + lines, and every argument when it
executes a confirmed action (the guard holds it to the confirmed digest); send_return_label
return_id. Free text (replies, queries, reasons) is not compared.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from shopbot.actions import Action, ActionSchema
from shopbot.exemplars import TURN_SO_FAR
from shopbot.models.base import ChatModel, ModelRequest, read_step
from shopbot.state import known_args

KEY_ARGS: dict[str, tuple[str, ...]] = {
    "verify_identity": ("order_id", "email"),
    "lookup_order": ("order_id",),
    "check_return_eligibility": ("order_id", "lines"),
    "create_return": ("order_id", "lines"),
    "send_return_label": ("return_id",),
}


def _key(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def correct(expected: Action, got: Action, request_text: str) -> bool:
    """Same tool and the same key arguments (see the module docstring)."""
    if got.tool != expected.tool:
        return False
    if got.tool == "create_return" and "Confirmation approved" in request_text:
        return got.arguments == expected.arguments
    want, have = expected.arguments, got.arguments
    return all(_key(want.get(k)) == _key(have.get(k)) for k in KEY_ARGS.get(got.tool, ()))


@dataclass(frozen=True)
class Recorded:
    """A recorded step's state as the tools read it (`tools.base.StateView`): from its hints
    and the per-step prompt, whose steps of the turn show what each tool returned."""

    hints: dict[str, list[str]]
    per_step: str

    @property
    def proven(self) -> bool:
        return self.per_step.startswith("State: customer verified")

    @property
    def failed_verifications(self) -> int:
        found = re.search(r"\(failed attempts: (\d+)\)", self.per_step.split("\n", 1)[0])
        return int(found.group(1)) if found else 0

    @property
    def mentioned_order_ids(self) -> list[str]:
        return self.hints.get("order_id", [])

    @property
    def mentioned_emails(self) -> list[str]:
        return self.hints.get("email", [])

    def reports(self, tool: str) -> list[dict[str, Any]]:
        lines = self.per_step.splitlines()
        start = lines.index(TURN_SO_FAR) + 1 if TURN_SO_FAR in lines else len(lines)
        found: list[dict[str, Any]] = []
        for action, outcome in zip(lines[start:], lines[start + 1 :], strict=False):
            try:
                named = json.loads(action.split(". ", 1)[1])["tool"]
                data = json.loads(outcome.strip().removeprefix("->"))
            except (IndexError, ValueError, KeyError, TypeError):
                continue  # not a step's pair of lines, a denial, an error, or shortened
            if named == tool and isinstance(data, dict) and "error" not in data:
                found.append(data)  # pyright: ignore[reportUnknownArgumentType]
        return found


def request_of(row: dict[str, Any], schema: ActionSchema, system: str = "") -> ModelRequest:
    """The loop's request at a recorded step (the stable system part does not matter to the
    student, which reads only the per-step part)."""
    allowed = frozenset(row["allowed"])
    hints: dict[str, list[str]] = row.get("hints") or {}
    return ModelRequest(
        messages=[SystemMessage(system), HumanMessage(row["per_step"])],
        allowed=allowed,
        schema=schema.json_schema(allowed),
        hints=hints,
        known=known_args(schema.tools, allowed, Recorded(hints, row["per_step"])),
        conversation_id=row["scenario"],
    )


@dataclass(frozen=True)
class Scored:
    row: dict[str, Any]
    output: str
    ok: bool
    parsed: bool
    ms: float


async def score(
    model: ChatModel, rows: Iterable[dict[str, Any]], schema: ActionSchema
) -> list[Scored]:
    out: list[Scored] = []
    for row in rows:
        request = request_of(row, schema)
        started = time.perf_counter()
        step = await model.complete(request)
        ms = (time.perf_counter() - started) * 1000
        got = schema.parse(step)
        expected = schema.parse(read_step(row["target"]))
        assert isinstance(expected, Action), row["target"]
        ok = isinstance(got, Action) and correct(expected, got, row["per_step"])
        out.append(Scored(row, step.raw, ok, isinstance(got, Action), ms))
    return out


def by_tool(scored: list[Scored]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "right": 0})
    for s in scored:
        cell = table[s.row["tool"]]
        cell["n"] += 1
        cell["right"] += s.ok
    return dict(sorted(table.items()))


def summary(scored: list[Scored]) -> dict[str, Any]:
    times = sorted(s.ms for s in scored)
    return {
        "steps": len(scored),
        "right": sum(s.ok for s in scored),
        "parse_failures": sum(not s.parsed for s in scored),
        "step_ms_median": round(times[len(times) // 2], 1) if times else None,
        "by_tool": by_tool(scored),
        "wrong": [
            {
                "scenario": s.row["scenario"],
                "step": s.row["step"],
                "want": s.row["target"],
                "got": s.output,
            }
            for s in scored
            if not s.ok
        ][:40],
    }


def _said(row: dict[str, Any]) -> set[str]:
    return {
        " ".join(line.removeprefix("Customer: ").split()).casefold()
        for line in row["prompt"].splitlines()
        if line.startswith("Customer: ")
    }


def unseen(rows: list[dict[str, Any]], split: str = "test") -> list[dict[str, Any]]:
    """The rows of `split` none of whose customer lines (of four words or more: "Yes,
    please." is everyone's) occurs word for word in the training split: phrasings the
    student never saw, whatever family they were drawn from."""
    seen: set[str] = set()
    for row in rows:
        if row["split"] == "train":
            seen |= _said(row)
    return [
        r
        for r in rows
        if r["split"] == split and not any(len(x.split()) >= 4 and x in seen for x in _said(r))
    ]


__all__ = [
    "KEY_ARGS",
    "Scored",
    "by_tool",
    "correct",
    "request_of",
    "score",
    "summary",
    "unseen",
]
