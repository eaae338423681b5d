"""What the trained student model is shown at a step, and how its answer is written.

The student (SmolLM2-135M plus ShopBot's LoRA adapter, `shopbot/distil/`) needs no rules,
catalogue or exemplars: it learned them. It reads a compact view of the loop's per-step
prompt, ordered so that llama.cpp reuses as much evaluated prefix as possible: the
conversation first (it only grows between turns), then this turn's steps (they only grow
within a turn), and last what changes at every step (the state, the hint, the allowed
tools). Training data is written with these same functions, so the student sees in
production exactly what it was trained on.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shopbot.exemplars import TURN_SO_FAR, compact

STUDENT_SYSTEM = (
    "You are ShopBot, an online shop's customer-service assistant. Answer with one JSON action."
)
CONVERSATION_LINES = 8
"""The conversation lines a view keeps; older ones are dropped in blocks (see `_recent`)."""
LINE_CHARS = 320
"""A conversation line or an observation is cut to this many characters."""
DROP = frozenset({"options", "price", "placed_on", "score", "document", "message", "total"})
"""Observation fields a step view leaves out: they only lengthen it."""


def student_view(per_step: str) -> str:
    """The student's input for a per-step prompt (`shopbot.prompts.PromptBuilder`)."""
    sections = _sections(per_step)
    head = sections.get("", [])
    state = [line for line in head if not line.startswith(("Order numbers", "Emails"))]
    conversation = _recent(sections.get("Conversation:", []))
    steps = _steps(sections.get(TURN_SO_FAR, []))
    # The last one: a customer's message may contain anything, the prompt's tail comes last.
    lines = per_step.splitlines()
    allowed = next((line for line in reversed(lines) if line.startswith("Allowed now:")), "")
    parts = ["Conversation:\n" + "\n".join(conversation)]
    if steps:
        parts.append("This turn:\n" + "\n".join(steps))
    parts.append("\n".join([*state, allowed]))
    return "\n\n".join(parts)


def _sections(per_step: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"": []}
    current = ""
    for line in per_step.splitlines():
        if line in ("Conversation:", TURN_SO_FAR):
            current = line
            found[current] = []
        elif line.startswith(("Allowed now:", "Your next step")):
            current = "tail"
        elif line.strip():
            found.setdefault(current, []).append(line)
    return found


def _recent(lines: list[str]) -> list[str]:
    # Dropped in blocks of half the window, not one by one: the view's start then stays the
    # same for several turns, and so does the prefix llama.cpp can reuse.
    kept = [line for line in lines if line != "(earlier messages omitted)"]
    if len(kept) > CONVERSATION_LINES:
        half = CONVERSATION_LINES // 2
        start = ((len(kept) - CONVERSATION_LINES) // half + 1) * half
        kept = kept[start:]
    return [_cut(line) for line in kept]


def _steps(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        text = line.strip()
        if text.startswith("->"):
            out.append("   -> " + _outcome(text.removeprefix("->").strip()))
        else:
            number, _, action = text.partition(". ")
            out.append(f"{number}. {_cut(action)}")
    return out


def _outcome(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:  # DENIED: ..., ERROR: ... read as they are
        return _cut(text)
    if isinstance(data, dict) and isinstance(data.get("hits"), list):
        return _hits(data["hits"])  # pyright: ignore[reportUnknownArgumentType]
    return _cut(compact(data, DROP))


HIT_CHARS = (420, 140, 140)
"""How much of each policy hit's text a view shows, best first: an answer quotes the best."""


def untable(text: str) -> str:
    """A policy text with its Markdown tables as sentences ("Express: 1 to 2 business days;
    $14.95."): a row read out is a fact the student can quote, "| --- |" is not. The header
    row is left out: labels would push a long table's last rows out of the part of a hit the
    view shows."""
    lines = text.splitlines()
    out: list[str] = []

    def separator(line: str) -> bool:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        return "|" in line and all(re.fullmatch(r":?-+:?", c) for c in cells)

    for i, line in enumerate(lines):
        if separator(line):
            continue
        if not line.lstrip().startswith("|"):
            out.append(line)
            continue
        if i + 1 < len(lines) and separator(lines[i + 1]):
            continue  # the header row
        cells = [c.strip().removesuffix(".") for c in line.strip().strip("|").split("|")]
        first, rest = cells[0], [c for c in cells[1:] if c]
        out.append(f"{first}: {'; '.join(rest)}." if rest else f"{first}.")
    return "\n".join(out)


def _hits(hits: list[Any]) -> str:
    shown: list[str] = []
    for hit, chars in zip(hits, HIT_CHARS, strict=False):
        if isinstance(hit, dict):
            text = " ".join(untable(str(hit.get("text", ""))).split())  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
            cut = text if len(text) <= chars else text[: chars - 3] + "..."
            shown.append(f"[{hit.get('anchor')}] {hit.get('section')}: {cut}")  # pyright: ignore[reportUnknownMemberType]
    return "hits " + " | ".join(shown) if shown else "no hits"


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 3] + "..."


def action_text(tool: str, args: dict[str, Any], order: list[str]) -> str:
    """An action as the grammar lets the student write it: `{"action": {"tool", "args"}}`,
    arguments in the grammar's order (`order`: required first, then optional, each in the
    schema's order), empty optional lists left out."""
    ordered = {k: args[k] for k in order if k in args and args[k] not in (None, [])}
    return json.dumps({"action": {"tool": tool, "args": ordered}}, ensure_ascii=False)


def grammar_order(args_schema: dict[str, Any]) -> list[str]:
    """The order llama.cpp's json-schema-to-grammar writes an object's properties in."""
    props = list(args_schema.get("properties", {}))
    required = set(args_schema.get("required", []))
    return [p for p in props if p in required] + [p for p in props if p not in required]


__all__ = ["STUDENT_SYSTEM", "action_text", "grammar_order", "student_view"]
