"""How a query's signals are fused into one ranking of policy sections.

Each section (chunk) is stored as up to three kinds of vectors: the whole section under its
heading path, its passages ("windows", for long sections whose answer is one buried
sentence), and its heading path alone (customers' questions often paraphrase a heading:
"do my points run out" ~ "Points expiry"). A BM25 score over the section's words adds the
exact terms a small embedding model blurs ("tankini", "PIN", "Hamilton").

    score = (section + best window) / 2 + heading_weight * heading + lexical_weight * bm25 / max bm25

Dense similarities are cosine similarities of normalised MiniLM vectors. Reciprocal rank
fusion was tried first and lost to the dense ranking alone on `fixtures/policy_qa.yaml`
(BM25 alone is much weaker there, and RRF gives its ranks equal say); a small weight on
the max-normalised BM25 score keeps its help without its noise. The weights sit in a broad
plateau of the evaluation (BENCHMARKS.md), not on a spike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["section", "window", "heading"]


@dataclass(frozen=True)
class Fusion:
    """Which signals rank the sections, and their weights."""

    windows: bool = True
    """Average the section's similarity with its best passage's."""
    heading_weight: float = 0.3
    lexical_weight: float = 0.05

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The vector kinds the dense query must return."""
        if not self.windows and not self.heading_weight:
            return ("section",)
        return ("section", "window", "heading")


DENSE = Fusion(windows=False, heading_weight=0.0, lexical_weight=0.0)
"""Dense retrieval alone: one vector per section, the baseline."""
HYBRID = Fusion()
"""Everything: section, passage and heading vectors plus BM25."""


def fuse(
    dense: Iterable[tuple[str, Kind, float]],
    lexical: Sequence[tuple[str, float]],
    with_windows: set[str],
    fusion: Fusion,
) -> list[tuple[str, float]]:
    """Rank section ids, best first, from dense `(section_id, kind, similarity)` results.

    The dense results are the nearest vectors of a query, so a section's missing kind is at
    most as similar as the least similar result of that kind: that floor stands in for it.
    `with_windows` names the sections stored with passage vectors; for the others the
    section vector is the passage.
    """
    signals: dict[str, dict[Kind, float]] = {}
    floors: dict[Kind, float] = {}
    for section_id, kind, cosine in dense:
        found = signals.setdefault(section_id, {})
        found[kind] = max(cosine, found.get(kind, -1.0))
        floors[kind] = min(cosine, floors.get(kind, 1.0))
    top_lexical = max((score for _, score in lexical), default=0.0)
    lexical_scores = {sid: score / top_lexical for sid, score in lexical} if top_lexical else {}
    if fusion.lexical_weight:
        for section_id in lexical_scores:
            signals.setdefault(section_id, {})

    def similarity(found: dict[Kind, float], kind: Kind) -> float:
        return found.get(kind, floors.get(kind, 0.0))

    ranked: list[tuple[str, float]] = []
    for section_id, found in signals.items():
        section = similarity(found, "section")
        score = section
        if fusion.windows:
            window = similarity(found, "window") if section_id in with_windows else section
            score = (section + window) / 2
        score += fusion.heading_weight * similarity(found, "heading")
        score += fusion.lexical_weight * lexical_scores.get(section_id, 0.0)
        ranked.append((section_id, score))
    ranked.sort(key=lambda pair: (-pair[1], pair[0]))
    return ranked
