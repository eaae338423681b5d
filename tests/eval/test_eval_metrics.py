"""pass^k the tau2 way, and the summary."""

from __future__ import annotations

import pytest

from shopbot.eval.metrics import pass_curve, pass_hat_k, summarize
from shopbot.eval.runner import TrialResult


def trial(task: str, passed: bool, category: str = "return", **fields: object) -> TrialResult:
    return TrialResult.model_validate(
        {"task_id": task, "title": task, "category": category, "trial": 1, "passed": passed}
        | fields
    )


def test_pass_hat_k_is_c_choose_k_over_n_choose_k() -> None:
    assert pass_hat_k(3, 3, 3) == 1.0
    assert pass_hat_k(3, 2, 1) == pytest.approx(2 / 3)
    assert pass_hat_k(3, 2, 2) == pytest.approx(1 / 3)  # C(2,2)/C(3,2)
    assert pass_hat_k(3, 2, 3) == 0.0
    assert pass_hat_k(4, 3, 2) == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="need"):
        pass_hat_k(2, 3, 1)


def test_pass_curve_averages_over_tasks() -> None:
    results = [
        trial("a", True),
        trial("a", True),
        trial("a", True),
        trial("b", True),
        trial("b", False),
        trial("b", False),
    ]
    curve = pass_curve(results, 3)
    assert curve[1] == pytest.approx((1 + 1 / 3) / 2)
    assert curve[2] == pytest.approx((1 + 0) / 2)
    assert curve[3] == pytest.approx(0.5)


def test_summary_counts_violations_denials_and_latency() -> None:
    results = [
        trial("a", True, steps=4, model_calls=4, turns=2, turn_ms=[10.0, 30.0], denials=1),
        trial("b", False, "policy", steps=2, model_calls=3, turns=1, turn_ms=[20.0],
              violations=["said 'x'"]),
    ]  # fmt: skip
    summary = summarize(results, model="oracle", simulator="rule", k=1, seconds=1.5)
    assert summary.pass_hat == {1: 0.5}
    assert (summary.violations, summary.denials) == (1, 1)
    assert (summary.avg_steps, summary.avg_model_calls, summary.avg_turns) == (3.0, 3.5, 1.5)
    assert summary.turn_ms_p50 == 20.0
    assert summary.by_category["policy"].pass_1 == 0.0
    assert summary.failed_tasks == ["b"]
    assert "pass^1 0.500" in summary.line()
