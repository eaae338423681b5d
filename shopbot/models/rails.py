"""A desk's intents: the opening messages code answers before a model is asked.

"What's the weather like?", "thanks!", "can I talk to a person?" need no tool and no
judgement, yet they are where the embedded 135M student goes wrong most (it searches the
policies for small talk and picks the wrong stock refusal). The shop lists such intents in a
YAML file, each with example phrasings and its answer: a stock reply or an escalation
(`fixtures/intents/returns.yaml`). A turn's opening message is matched to the examples by
MiniLM sentence embedding, as NeMo Guardrails matches a user's message to canonical forms:
the nearest example must be close (`floor`) and closer than the nearest example of `none`,
the messages that look alike but need the model (`margin`). A message with an order number
or an email in it is never matched: it carries facts the model must act on.

`Rails` wraps any chat model: a matched opening gets the intent's action as the step (its
thought names the intent, the score and the example, for the audit), and it goes through
parse -> guard -> tool like any model's step. Every other step goes to the wrapped model.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from shopbot.errors import ConfigError
from shopbot.models.base import (
    ChatModel,
    ModelRequest,
    ModelStep,
    StepDelta,
    StreamingChatModel,
    ToolCall,
    at_once,
)

RETURNS_INTENTS = Path(__file__).resolve().parents[2] / "fixtures" / "intents" / "returns.yaml"
Embed = Callable[[list[str]], npt.NDArray[np.float32]]
"""L2-normalised sentence vectors for texts, one row each."""
FACTS = re.compile(r"\d{4,}|@")
"""A number of four digits or more (an order number, a zip, a phone) or an email address: a
message carrying one is the model's. Broader than the state's order-number pattern on
purpose: any such fact is something the model, not a stock phrase, should answer."""
FLOOR, MARGIN = 0.3, 0.1
"""Chosen on the generated conversations' opening messages (`benchmarks/intents.py`): 87% of
the stock openings matched, 0.2% of the others (BENCHMARKS.md, "Intents")."""
MAX_CHARS = 200
"""Longer messages say more than one thing: the model reads them."""


@dataclass(frozen=True)
class Intent:
    name: str
    tool: str
    """`reply` or `escalate`: the action a matched message gets."""
    args: dict[str, str]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    intent: Intent
    score: float
    """Cosine similarity to the nearest example."""
    example: str
    margin: float
    """How much nearer than the nearest `none` example."""


class IntentRouter:
    """Matches a message to the nearest intent's examples (cosine similarity, 1-NN)."""

    def __init__(
        self,
        intents: Sequence[Intent],
        none: Sequence[str],
        embed: Embed,
        *,
        floor: float = FLOOR,
        margin: float = MARGIN,
    ) -> None:
        self.intents, self.embed, self.floor, self.margin = list(intents), embed, floor, margin
        self._labels: list[Intent | None] = [i for i in self.intents for _ in i.examples]
        self._labels += [None] * len(none)
        self._texts = [e for i in self.intents for e in i.examples] + list(none)
        self._none = np.array([label is None for label in self._labels])
        self._vectors = embed(self._texts)

    @classmethod
    def load(cls, path: Path, embed: Embed) -> IntentRouter:
        """The intents of a YAML file (see `fixtures/intents/returns.yaml`)."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            intents: list[Intent] = []
            none: list[str] = []
            for name, spec in data["intents"].items():
                examples = [str(e) for e in spec["examples"]]
                if name == "none":
                    none = examples
                elif "escalate" in spec:
                    intents.append(
                        Intent(name, "escalate", {"reason": spec["escalate"]}, tuple(examples))
                    )
                else:
                    intents.append(
                        Intent(name, "reply", {"message": spec["reply"]}, tuple(examples))
                    )
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"SHOPBOT_INTENTS: cannot read intents from {path}: {exc}") from exc
        return cls(intents, none, embed)

    def match(self, text: str) -> Match | None:
        """The intent `text` expresses, or None when the model should read it."""
        text = " ".join(text.split())
        if not text or len(text) > MAX_CHARS or FACTS.search(text):
            return None
        scores = self._vectors @ self.embed([text])[0]
        best = int(np.argmax(scores))
        intent = self._labels[best]
        nearest_none = float(scores[self._none].max()) if self._none.any() else -1.0
        score = float(scores[best])
        if intent is None or score < self.floor or score - nearest_none < self.margin:
            return None
        return Match(intent, score, self._texts[best], score - nearest_none)


@dataclass
class Rails:
    """A chat model behind a desk's intents: a matched opening is answered by its intent."""

    inner: ChatModel
    router: IntentRouter

    @property
    def name(self) -> str:
        return self.inner.name

    def answer(self, request: ModelRequest) -> ToolCall | None:
        """The step when the turn's opening matches an intent it may act on."""
        if request.opening is None:
            return None
        found = self.router.match(request.opening)
        if found is None or found.intent.tool not in request.allowed:
            return None
        thought = f"intent {found.intent.name} ({found.score:.2f}, like {found.example!r})"
        action: dict[str, Any] = {"tool": found.intent.tool, "args": found.intent.args}
        raw = json.dumps({"thought": thought, "action": action}, ensure_ascii=False)
        return ToolCall(found.intent.tool, dict(found.intent.args), thought, raw)

    async def complete(self, request: ModelRequest) -> ModelStep:
        answered = self.answer(request)
        return answered if answered is not None else await self.inner.complete(request)

    def stream(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]:
        answered = self.answer(request)
        if answered is not None:
            return at_once(answered)
        if isinstance(self.inner, StreamingChatModel):
            return self.inner.stream(request)
        return self._completed(request)

    async def _completed(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]:
        async for item in at_once(await self.inner.complete(request)):
            yield item


__all__ = ["RETURNS_INTENTS", "Embed", "Intent", "IntentRouter", "Match", "Rails"]
