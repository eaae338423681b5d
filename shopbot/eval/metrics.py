"""From trial results to the numbers: pass^k the tau2 way, violations, steps, latency.

pass^k is the chance that k independent trials of a task all succeed, estimated without bias
from n >= k trials with c successes as C(c, k) / C(n, k), and averaged over tasks. pass^1 is
the plain success rate; pass^k falls as k grows unless the agent is reliably right.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from math import comb

from pydantic import BaseModel

from shopbot.eval.runner import TrialResult


def pass_hat_k(n: int, c: int, k: int) -> float:
    """C(c, k) / C(n, k): the chance that k of the n trials, drawn without replacement,
    all succeeded."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return comb(c, k) / comb(n, k)


def pass_curve(results: Sequence[TrialResult], k: int) -> dict[int, float]:
    """pass^1 .. pass^k averaged over tasks (each task needs at least k trials)."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by_task[r.task_id].append(r.passed)
    if not by_task:
        return {j: 0.0 for j in range(1, k + 1)}
    return {
        j: statistics.fmean(pass_hat_k(len(t), sum(t), j) for t in by_task.values())
        for j in range(1, k + 1)
    }


class CategoryScore(BaseModel):
    tasks: int
    trials: int
    pass_1: float
    pass_k: float


class Summary(BaseModel):
    model: str
    simulator: str
    k: int
    tasks: int
    trials: int
    pass_hat: dict[int, float]
    """pass^1 .. pass^k."""
    violations: int
    """Policy violations over all trials (must be 0)."""
    denials: int
    parse_failures: int
    errors: int
    avg_steps: float
    avg_model_calls: float
    avg_turns: float
    turn_ms_p50: float
    turn_ms_p95: float
    conversation_s_mean: float
    model_ms_share: float
    """Share of the conversation time spent in the model."""
    seconds: float
    """Wall time of the whole evaluation."""
    by_category: dict[str, CategoryScore]
    judge: dict[str, float] | None = None
    """Mean judge marks (relevance, coherence, conciseness) when a judge ran."""
    failed_tasks: list[str]

    def line(self) -> str:
        k = self.k
        curve = f"pass^1 {self.pass_hat[1]:.3f}" + (
            f", pass^{k} {self.pass_hat[k]:.3f}" if k > 1 else ""
        )
        return (
            f"{self.tasks} tasks x {k}: {curve}, violations {self.violations}, "
            f"denials {self.denials}, "
            f"{self.avg_steps:.1f} steps and {self.avg_model_calls:.1f} model calls a "
            f"conversation, turn p50 {self.turn_ms_p50:.0f} ms, {self.seconds:.1f} s"
        )


def summarize(
    results: Sequence[TrialResult], *, model: str, simulator: str, k: int, seconds: float
) -> Summary:
    by_category: dict[str, list[TrialResult]] = defaultdict(list)
    for r in results:
        by_category[r.category].append(r)
    turns = [ms for r in results for ms in r.turn_ms]
    total_s = sum(r.seconds for r in results)
    judged = [r.judge for r in results if r.judge is not None]
    judge = (
        {
            "relevance": statistics.fmean(j.relevance for j in judged),
            "coherence": statistics.fmean(j.coherence for j in judged),
            "conciseness": statistics.fmean(j.conciseness for j in judged),
        }
        if judged
        else None
    )
    curve = pass_curve(results, k)
    return Summary(
        model=model,
        simulator=simulator,
        k=k,
        tasks=len({r.task_id for r in results}),
        trials=len(results),
        pass_hat=curve,
        violations=sum(len(r.violations) for r in results),
        denials=sum(r.denials for r in results),
        parse_failures=sum(r.parse_failures for r in results),
        errors=sum(r.error is not None for r in results),
        avg_steps=_mean([r.steps for r in results]),
        avg_model_calls=_mean([r.model_calls for r in results]),
        avg_turns=_mean([r.turns for r in results]),
        turn_ms_p50=_quantile(turns, 0.5),
        turn_ms_p95=_quantile(turns, 0.95),
        conversation_s_mean=_mean([r.seconds for r in results]),
        model_ms_share=(sum(r.model_ms for r in results) / 1000 / total_s) if total_s else 0.0,
        seconds=round(seconds, 3),
        by_category={
            name: CategoryScore(
                tasks=len({r.task_id for r in rs}),
                trials=len(rs),
                pass_1=pass_curve(rs, k)[1],
                pass_k=pass_curve(rs, k)[k],
            )
            for name, rs in sorted(by_category.items())
        },
        judge=judge,
        failed_tasks=sorted({r.task_id for r in results if not r.passed}),
    )


def _mean(values: Sequence[float]) -> float:
    return round(statistics.fmean(values), 3) if values else 0.0


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


__all__ = ["CategoryScore", "Summary", "pass_curve", "pass_hat_k", "summarize"]
