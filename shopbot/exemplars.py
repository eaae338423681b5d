"""In-context exemplars: the annotated (situation -> action) pairs nearest to the moment.

A small model copies its examples well, so it is shown the few whose situation is most like
the current step (cosine similarity of MiniLM embeddings), most similar last, as chat turns
between the stable system prompt and the per-step message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "exemplars.yaml"


@dataclass(frozen=True)
class Exemplar:
    situation: str
    action: dict[str, Any]

    @property
    def output(self) -> str:
        return json.dumps({"action": self.action})

    @property
    def verified(self) -> bool | None:
        return verified(self.situation)


def verified(text: str) -> bool | None:
    """Whether a situation says the customer is verified (None: it does not say)."""
    if "NOT verified" in text:
        return False
    return True if "customer verified" in text else None


def _words(text: str) -> str:
    # Embed what the customer said and what just happened; the state is matched exactly.
    return " ".join(p for p in text.split("Customer:", 1)[-1:]) if "Customer:" in text else text


def situation(per_step: str) -> str:
    """The part of a per-step prompt that says where we are: state, the customer's last words
    and the last step's outcome."""
    lines = per_step.splitlines()
    # In the exemplars' own words: the hint and a zero count would only make it look unlike.
    keep = [
        line.replace(" (failed attempts: 0)", "").removesuffix(".") + "."
        for line in lines
        if line.startswith("State:")
    ]
    said = [line for line in lines if line.startswith("Customer:")]
    steps = [line.strip() for line in lines if line.strip().startswith("->")]
    keep += said[-1:]
    if steps:
        keep.append("Last step: " + steps[-1].removeprefix("->").strip()[:200])
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
        return cls([Exemplar(e["situation"], e["action"]) for e in raw])

    def nearest(self, text: str, k: int = 3) -> list[Exemplar]:
        """The `k` exemplars most like `text`, least similar first."""
        query: npt.NDArray[np.float32] = self._embed.embed_batch([_words(text)])[0]
        scores = self._vectors @ query
        state = verified(text)
        # Exemplars for the other identity state would teach the wrong move.
        mismatched = np.array(
            [
                e.verified is not None and state is not None and e.verified != state
                for e in self.exemplars
            ]
        )
        scores = np.where(mismatched, -np.inf, scores)
        best = [int(i) for i in np.argsort(scores)[-k:] if np.isfinite(scores[int(i)])]
        return [self.exemplars[i] for i in best]
