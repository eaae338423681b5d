"""Policy retrieval: query latency with embedding, index build times, recall before/after.

Builds the demo policy index from scratch in a temporary data directory, then re-syncs it
after one document changed (one section edited), then asks every question of
`fixtures/policy_qa.yaml` `--rounds` times, timing `PolicyIndex.search(question, k=3)`
(embedding + chromadb query + BM25 + fusion) and, apart, the query embedding alone.
Last, the retrieval evaluation for each step from dense-only to the full hybrid.

    python benchmarks/policy_retrieval.py [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel

from benchmarks.common import machine
from shopbot.policy import (
    DENSE,
    HYBRID,
    Fusion,
    IndexSummary,
    PolicyIndex,
    evaluate_retrieval,
    load_questions,
)
from shopbot.policy.evaluation import percentile

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "fixtures" / "policies"
QA = ROOT / "fixtures" / "policy_qa.yaml"
EDITED = "returns-and-refunds.md"
STEPS: list[tuple[str, Fusion]] = [
    ("dense (section vectors)", DENSE),
    ("+ passage vectors", Fusion(windows=True, heading_weight=0.0, lexical_weight=0.0)),
    (
        "+ heading vectors",
        Fusion(windows=True, heading_weight=HYBRID.heading_weight, lexical_weight=0.0),
    ),
    ("+ BM25 = hybrid", HYBRID),
]


class Build(BaseModel):
    chunks: int
    records: int
    scratch_s: float
    """Open a fresh data directory and sync every document."""
    incremental_s: float
    """Sync again after one section of one document changed."""
    incremental: IndexSummary


class Latency(BaseModel):
    queries: int
    search_median_ms: float
    search_p95_ms: float
    embed_median_ms: float


class Step(BaseModel):
    step: str
    recall_at_1: float
    recall_at_3: float
    recall_at_5: float
    mrr: float
    strict_recall_at_3: float


class Result(BaseModel):
    machine: str
    build: Build
    latency: Latency
    quality: list[Step]


def build(work: Path) -> tuple[Build, PolicyIndex]:
    documents = work / "policies"
    shutil.copytree(POLICIES, documents)
    started = time.perf_counter()
    index = PolicyIndex.open(work / "data")
    index.sync(documents)
    scratch = time.perf_counter() - started
    edited = documents / EDITED
    edited.write_text(
        edited.read_text().replace(
            "We email you as soon as your refund has been issued.",
            "We email you as soon as your refund has been issued, with the amount.",
        )
    )
    incremental = index.sync(documents)
    stats = Build(
        chunks=len(index),
        records=index.collection.count(),
        scratch_s=round(scratch, 2),
        incremental_s=round(incremental.seconds, 3),
        incremental=incremental,
    )
    return stats, index


def latency(index: PolicyIndex, rounds: int) -> Latency:
    questions = [item.question for item in load_questions(QA)]
    for question in questions[:10]:
        index.search(question)  # warm the session, the caches and chromadb
    search: list[float] = []
    embed: list[float] = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            index.search(question, k=3)
            search.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            index.embedding.embed_batch([question])
            embed.append((time.perf_counter() - started) * 1000)
    return Latency(
        queries=len(search),
        search_median_ms=round(statistics.median(search), 2),
        search_p95_ms=round(percentile(search, 95), 2),
        embed_median_ms=round(statistics.median(embed), 2),
    )


def quality(index: PolicyIndex) -> list[Step]:
    steps: list[Step] = []
    for name, fusion in STEPS:
        r = evaluate_retrieval(index, QA, fusion)
        steps.append(
            Step(
                step=name,
                recall_at_1=round(r.recall_at_1, 3),
                recall_at_3=round(r.recall_at_3, 3),
                recall_at_5=round(r.recall_at_5, 3),
                mrr=round(r.mrr, 3),
                strict_recall_at_3=round(r.strict.recall_at_3, 3),
            )
        )
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description="Policy retrieval latency, build time, recall.")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the question set")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stats, index = build(Path(tmp))
        result = Result(
            machine=machine(),
            build=stats,
            latency=latency(index, args.rounds),
            quality=quality(index),
        )
    if args.json:
        print(result.model_dump_json())
        return
    b, lat = result.build, result.latency
    changed = b.incremental
    print(f"machine: {result.machine}")
    print(f"index: {b.chunks} chunks, {b.records} records (sections, passages, headings)")
    print(f"build from scratch: {b.scratch_s:.2f} s")
    print(
        f"incremental after editing one section of {EDITED}: {b.incremental_s:.3f} s "
        f"(added {changed.added}, updated {changed.updated}, removed {changed.removed}, "
        f"unchanged {changed.unchanged})"
    )
    print(
        f"query with embedding, k=3, {lat.queries} queries: median {lat.search_median_ms:.2f} ms, "
        f"p95 {lat.search_p95_ms:.2f} ms (embedding alone: median {lat.embed_median_ms:.2f} ms)"
    )
    print(f"{'step':<26} recall@1 recall@3 recall@5   MRR  strict@3")
    for row in result.quality:
        print(
            f"{row.step:<26} {row.recall_at_1:>8.3f} {row.recall_at_3:>8.3f} "
            f"{row.recall_at_5:>8.3f} {row.mrr:>5.3f} {row.strict_recall_at_3:>9.3f}"
        )


if __name__ == "__main__":
    main()
