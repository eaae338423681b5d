"""The teacher: the eval oracle with a student's manners, and the recorder of its steps.

The oracle (`shopbot.eval.oracle`) already decides every step from what a model is shown:
the request (allowed tools, the order numbers and emails the customer typed), the
observations and what the customer said. Its scenario plan (which lines, which reason) is
drawn by `shopbot.distil.scenarios` from the words the customer writes, so a gold action
never depends on something the conversation has not revealed. The teacher changes one
manner: a policy answer is the best hit's sentence that matches the question (and those after
it that fit), not the whole section, so the student learns short, cited answers that hold the
fact asked for.

`Recorder` wraps any model and keeps every step as (the student's input at that step, the
teacher's action written as the student must write it: `action_text`, the same bytes
whichever way the model handed its step over).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shopbot.actions import ActionSchema
from shopbot.eval.oracle import Oracle, Step, Transcript
from shopbot.events import Event
from shopbot.models.base import ModelRequest, ToolCall
from shopbot.models.local import MAX_REPLY
from shopbot.models.student import (
    HIT_CHARS,
    STUDENT_SYSTEM,
    action_text,
    grammar_order,
    student_view,
    untable,
)

ANSWER_CHARS = 240
"""A policy answer keeps the hit's sentences up to about this length, and never more than
the grammar's bound on a reply (`shopbot.models.local.MAX_REPLY`)."""
QUERY_CHARS = 200
"""A search query is the customer's words, up to the grammar's bound on other strings."""


NOT_FOUND = "I couldn't find that in our policies; a colleague can help by email."


def first_sentences(text: str, limit: int = ANSWER_CHARS) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    out = sentences[0]
    for sentence in sentences[1:]:
        if len(out) + 1 + len(sentence) > limit:
            break
        out += " " + sentence
    return out if len(out) <= MAX_REPLY else out[:limit].rsplit(" ", 1)[0] + "."


# fmt: off
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "can", "could", "did", "do", "does", "for",
    "from", "have", "how", "i", "if", "in", "is", "it", "its", "long", "many", "me", "much",
    "my", "of", "on", "or", "our", "so", "that", "the", "this", "to", "was", "what", "when",
    "where", "which", "who", "why", "will", "with", "would", "you", "your",
})
# fmt: on


def _stems(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.casefold())
    return {w[:4] for w in words if w not in STOPWORDS and len(w) > 2}


ASKS_TIME = re.compile(r"\b(how long|how many (days|weeks|hours)|how quickly|how soon|how fast)\b")
A_TIME = re.compile(r"\b\d+\s+(business |calendar |working )?(day|week|hour|month)s?\b")
ASKS_AMOUNT = re.compile(r"\b(how much|costs?|prices?|fees?|amount|minimum|spend)\b")
AN_AMOUNT = re.compile(r"[$€£]\s?\d")


def _score(sentence: str, asked: set[str], query: str) -> int:
    """Words shared with the question, and one more when the sentence holds the kind of
    fact asked for: a time for "how long", an amount for "how much"."""
    score = len(asked & _stems(sentence))
    if ASKS_TIME.search(query) and A_TIME.search(sentence):
        score += 1
    if ASKS_AMOUNT.search(query) and AN_AMOUNT.search(sentence):
        score += 1
    return score


def answer_from(text: str, query: str, shown: int = HIT_CHARS[0]) -> str:
    """A policy answer: from the part of the hit the student is shown, the sentence that
    shares most words with the question (the first on a tie) and those after it that fit.
    A table is read out as sentences (`untable`); a sentence the view cuts off is never
    quoted."""
    text = " ".join(untable(text).split())  # as the view shows it
    cut = len(text) > shown
    visible = text[: shown - 3] if cut else text  # the view ends a cut text with "..."
    sentences = re.split(r"(?<=[.!?])\s+", visible)
    if cut:
        sentences = sentences[:-1]
    sentences = [s for s in sentences if s and "|" not in s]
    if not sentences:
        return first_sentences(visible) if visible.strip() else NOT_FOUND
    asked = _stems(query)
    query = query.casefold()
    scores = [_score(s, asked, query) for s in sentences]
    best = scores.index(max(scores))
    return first_sentences(" ".join(sentences[best:]).removeprefix("- "))


class Teacher(Oracle):
    named: list[str] | None = None
    """The order lines the prompt says the customer named, as "order:line" (`hints["lines"]`)."""

    def decide(self, request: ModelRequest) -> Step:
        self.named = request.hints.get("lines", [])
        return super().decide(request)

    def knows_lines(self) -> bool:
        # When the prompt names exactly the goal's lines, the student goes straight to the
        # eligibility check: a lookup would only tell it what it has been told.
        goal = self.scenario.goal
        wanted = sorted(f"{goal.order_id}:{n}" for n in goal.lines)
        return self.scenario.persona.items is None and sorted(self.named or []) == wanted

    def _answer_policy(self, t: Transcript) -> Step:
        found = t.observed("search_policy", this_turn=True)
        if not found:
            return "search_policy", {"query": (t.customer_text or "return policy")[:QUERY_CHARS]}
        hits = found[-1].get("hits", [])
        if not hits:
            return "reply", {"message": NOT_FOUND}
        best = hits[0]
        message = answer_from(best["text"], t.customer_text or "")
        return "reply", {"message": message, "citations": [best["anchor"]]}


@dataclass
class Recorder:
    """A model that records each of its steps for training; forwards events to the model."""

    model: Any
    schema: ActionSchema
    scenario: str
    rows: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])

    @property
    def name(self) -> str:
        return f"recorded:{self.model.name}"

    def observe(self, event: Event) -> None:
        self.model.observe(event)

    async def complete(self, request: ModelRequest) -> ToolCall:
        step = await self.model.complete(request)
        if not isinstance(step, ToolCall) or isinstance(step.args, str):
            raise TypeError(f"the teacher answers with calls, not {step!r}")
        tool, args = step.tool, step.args
        args_schema = self.schema.args_models[tool].model_json_schema()
        per_step = str(request.messages[-1].content)
        self.rows.append(
            {
                "scenario": self.scenario,
                "step": len(self.rows),
                "system": STUDENT_SYSTEM,
                "prompt": student_view(per_step),
                "target": action_text(tool, args, grammar_order(args_schema)),
                "tool": tool,
                "per_step": per_step,
                "allowed": sorted(request.allowed),
                "hints": request.hints,
            }
        )
        return step


__all__ = ["Recorder", "Teacher", "answer_from", "first_sentences"]
