"""Retrieval evaluation: recall@1/3/5 and MRR of the policy index on a question set.

The question set (`fixtures/policy_qa.yaml`) is a YAML list of
`{question, document, section, also?}`: the slug of the document and the heading of the
section that answers the question best, plus the anchors of other sections that state the
whole answer too (policies repeat their key facts). A retrieved chunk is relevant when it
is the expected section (its heading path ends with that heading) or one of `also`. The
rank of the first relevant chunk in the top 5 is what counts. "Strict" scores count the
expected section alone.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import BaseModel, TypeAdapter

from shopbot.policy.index import PolicyHit
from shopbot.policy.retrieval import HYBRID, Fusion

DEPTH = 5
"""Ranks looked at: recall@5 is the deepest figure reported."""


class QAItem(BaseModel):
    """One customer question and the sections that answer it."""

    question: str
    document: str
    section: str
    also: list[str] = []
    """Anchors of other sections that answer the question on their own."""

    def is_expected(self, hit: PolicyHit) -> bool:
        return hit.document == self.document and (
            hit.section == self.section or hit.section.endswith(f" > {self.section}")
        )

    def is_relevant(self, hit: PolicyHit) -> bool:
        return self.is_expected(hit) or hit.anchor in self.also


class RankScores(BaseModel):
    recall_at_1: float
    recall_at_3: float
    recall_at_5: float
    mrr: float
    """Mean reciprocal rank of the first relevant chunk (0 when not in the top 5)."""

    @classmethod
    def of(cls, ranks: list[int | None]) -> RankScores:
        def recall(k: int) -> float:
            return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)

        mrr = sum(1 / r for r in ranks if r is not None) / len(ranks)
        return cls(recall_at_1=recall(1), recall_at_3=recall(3), recall_at_5=recall(5), mrr=mrr)


class Miss(BaseModel):
    """A question whose first relevant chunk was not ranked first: what came back instead."""

    question: str
    expected: str
    rank: int | None
    """1-based rank of the first relevant chunk; None when it is not in the top 5."""
    retrieved: list[str]


class RetrievalReport(RankScores):
    """Recall at 1, 3 and 5 and MRR (any relevant section), strict scores, latency, misses."""

    questions: int
    strict: RankScores
    latency_median_ms: float
    latency_p95_ms: float
    misses: list[Miss]

    def summary(self) -> str:
        return (
            f"{self.questions} questions: recall@1 {self.recall_at_1:.3f}  "
            f"recall@3 {self.recall_at_3:.3f}  recall@5 {self.recall_at_5:.3f}  "
            f"MRR {self.mrr:.3f}  (strict recall@3 {self.strict.recall_at_3:.3f})  "
            f"latency median {self.latency_median_ms:.1f} ms, p95 {self.latency_p95_ms:.1f} ms"
        )


class Searcher(Protocol):
    def search_with(self, query: str, k: int, fusion: Fusion) -> list[PolicyHit]: ...


def load_questions(path: Path) -> list[QAItem]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return TypeAdapter(list[QAItem]).validate_python(data)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (`q` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def evaluate_retrieval(index: Searcher, qa_path: Path, fusion: Fusion = HYBRID) -> RetrievalReport:
    """Ask every question of `index` and score where its answer ranks."""
    items = load_questions(qa_path)
    if not items:
        raise ValueError(f"{qa_path} holds no questions")
    ranks: list[int | None] = []
    strict: list[int | None] = []
    latencies: list[float] = []
    misses: list[Miss] = []
    for item in items:
        started = time.perf_counter()
        hits = index.search_with(item.question, DEPTH, fusion)
        latencies.append((time.perf_counter() - started) * 1000)
        rank = next((i for i, hit in enumerate(hits, 1) if item.is_relevant(hit)), None)
        ranks.append(rank)
        strict.append(next((i for i, hit in enumerate(hits, 1) if item.is_expected(hit)), None))
        if rank != 1:
            retrieved = [hit.anchor for hit in hits]
            expected = f"{item.document}#{item.section}"
            misses.append(
                Miss(question=item.question, expected=expected, rank=rank, retrieved=retrieved)
            )
    return RetrievalReport(
        **RankScores.of(ranks).model_dump(),
        questions=len(items),
        strict=RankScores.of(strict),
        latency_median_ms=statistics.median(latencies),
        latency_p95_ms=percentile(latencies, 95),
        misses=misses,
    )
