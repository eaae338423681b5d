"""In-context exemplars: the annotated (situation -> action) pairs nearest to the moment.

A small model copies its examples well, so it is shown the few whose situation is most like
the current step (cosine similarity of MiniLM embeddings), most similar last, as chat turns
between a short system prompt and the current situation. Situations are written in one
format, the one `situation()` writes where the conversation stands (`ModelRequest.situation`,
what the per-step prompt tells), so the model's question looks like its examples' questions:

    State: customer verified. Confirmation approved: {...}. Hint: ... Assistant: ...?
    Customer: ... Last step: <tool> -> status delivered, lines [line 1 Slim Fit Jeans; ...]

(`Assistant:` only at a turn's first step, when ShopBot's last message asked something.)
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from shopbot.models.base import Situation, StepShown

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "exemplars.yaml"
LAST_STEP_CHARS = 240
"""How much of the last observation a situation keeps."""
TURN_SO_FAR = "This turn so far:"
"""The per-step prompt's header of the steps taken in this turn (`shopbot.prompts`; the
student's view reads it, `shopbot.models.student`)."""
ASKED_CHARS = 200
"""How much of ShopBot's last question a situation keeps."""
SKIP_KEYS = frozenset({"options", "price", "placed_on", "score", "document", "title", "message"})
"""Observation fields that only lengthen a situation (a hit's text and anchor stay)."""


@dataclass(frozen=True)
class Exemplar:
    situation: str
    action: dict[str, Any]
    source: str | None = None
    """The replay conversation it was written from, if any: benchmarks scoring that
    conversation leave it out."""

    @property
    def output(self) -> str:
        return json.dumps({"action": self.action})

    @property
    def verified(self) -> bool | None:
        return verified(self.situation)


def verified(text: str) -> bool | None:
    """Whether a situation says the customer is verified (None: it does not say). Only its
    State counts: the words of ShopBot or the customer after it may say anything."""
    state = re.match(r"State: customer (NOT )?verified", text)
    return None if state is None else state.group(1) is None


def _words(text: str) -> str:
    # Embed everything but the identity state, which is matched exactly.
    return re.sub(r"^State: [^.]*\.\s*", "", text)


def compact(data: Any, skip: frozenset[str] = SKIP_KEYS) -> str:
    """An observation as short words: `status delivered, lines [line 1 Slim Fit Jeans; ...]`,
    without the fields in `skip`."""
    if isinstance(data, dict):
        return ", ".join(
            f"{k} {compact(v, skip)}" for k, v in data.items() if k not in skip and v is not None
        )
    if isinstance(data, list):
        return "[" + "; ".join(compact(v, skip) for v in data) + "]"
    if isinstance(data, bool):
        return "true" if data else "false"
    return " ".join(str(data).split())


def _last_step(step: StepShown, outcome: str) -> str:
    with contextlib.suppress(ValueError):  # DENIED: ..., ERROR: ... stay as they are
        outcome = compact(json.loads(outcome))
    return f"Last step: {step.tool or 'invalid output'} -> {outcome}"[:LAST_STEP_CHARS]


def _line(role: str, text: str) -> str:
    """A message's first line as the prompt writes it (`Customer: ...`): a situation is one
    line, and the exemplars were written from the prompt's lines."""
    return f"{role.capitalize()}: {text}".splitlines()[0]


def situation(now: Situation) -> str:
    """Where we are, in the exemplars' words: identity state, an approved confirmation, the
    hint, the customer's last words and the last step of this turn; at a turn's first step,
    the question ShopBot asked last, which those words may answer."""
    if now.verified:
        keep = ["State: customer verified."]
    else:  # a zero count would only make it look unlike its examples
        failed = f" (failed attempts: {now.failed_checks})" if now.failed_checks else ""
        keep = [f"State: customer NOT verified{failed}."]
    if now.approved is not None:
        keep.append(f"Confirmation approved: {now.approved}.")
    if now.hint is not None:
        keep.append(f"Hint: {now.hint}")
    said = [i for i, m in enumerate(now.conversation) if m.role == "customer"]
    if said:
        last = said[-1]
        if last > 0 and not now.steps and now.conversation[last - 1].role == "assistant":
            # "They're too small." means nothing without "Why are you sending it back?" (a
            # question of one line, as the prompt's line before the customer's shows it whole)
            asked = f"Assistant: {now.conversation[last - 1].text}"
            if "?" in asked and len(asked.splitlines()) == 1:
                keep.append(asked[:ASKED_CHARS])
        keep.append(_line("customer", now.conversation[last].text))
    # The last step the prompt shows an outcome of (the budget may have cut the last ones').
    shown = [(step, step.outcome) for step in now.steps if step.outcome is not None]
    if shown:
        keep.append(_last_step(*shown[-1]))
    return " ".join(keep)


class ExemplarLibrary:
    def __init__(self, exemplars: list[Exemplar]) -> None:
        from shopbot.policy.embeddings import MiniLMEmbedding

        self.exemplars = exemplars
        self._embed = MiniLMEmbedding()
        self._vectors = self._embed.embed_batch([_words(e.situation) for e in exemplars])

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> ExemplarLibrary:
        raw: list[dict[str, Any]] = yaml.safe_load(path.read_text())
        return cls([Exemplar(e["situation"], e["action"], e.get("source")) for e in raw])

    def without(self, source: str) -> ExemplarLibrary:
        """The library less the exemplars written from conversation `source` (held out)."""
        keep = [i for i, e in enumerate(self.exemplars) if e.source != source]
        held_out = copy.copy(self)
        held_out.exemplars = [self.exemplars[i] for i in keep]
        held_out._vectors = self._vectors[keep]
        return held_out

    def nearest(self, text: str, k: int = 3, tools: Iterable[str] | None = None) -> list[Exemplar]:
        """The `k` exemplars most like `text` (among those using `tools`), least similar first."""
        query: npt.NDArray[np.float32] = self._embed.embed_batch([_words(text)])[0]
        scores = self._vectors @ query
        state = verified(text)
        allowed = None if tools is None else frozenset(tools)
        # Exemplars for the other identity state would teach the wrong move, and an exemplar
        # of a tool not allowed now shows an action the grammar forbids.
        excluded = np.array(
            [
                (e.verified is not None and state is not None and e.verified != state)
                or (allowed is not None and e.action["tool"] not in allowed)
                for e in self.exemplars
            ],
            dtype=bool,
        )
        scores = np.where(excluded, -np.inf, scores)
        best = [int(i) for i in np.argsort(scores)[-k:] if np.isfinite(scores[int(i)])]
        return [self.exemplars[i] for i in best]
