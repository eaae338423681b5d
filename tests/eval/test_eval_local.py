"""The embedded local model on a small subset: the report is produced (not gated on passing;
its numbers go in BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopbot.app import build_model
from shopbot.eval.metrics import summarize
from shopbot.eval.report import write_report
from shopbot.eval.scenario import Scenario
from shopbot.models.base import ChatModel
from tests.eval.conftest import RunEval, all_scenarios, eval_settings

SUBSET = ("status_shipped", "off_topic_weather")


@pytest.mark.slow
async def test_local_model_subset_produces_a_report(run_eval: RunEval, tmp_path: Path) -> None:
    model = build_model(eval_settings(model="local"))

    def model_for(scenario: Scenario) -> ChatModel:
        return model  # one model, loaded once, for every conversation

    scenarios = [s for s in all_scenarios() if s.id in SUBSET]
    results = await run_eval(scenarios, model_for=model_for, max_turns=4)
    summary = summarize(results, model="local", simulator="rule", k=1, seconds=0.0)
    write_report(summary, results, html=tmp_path / "local.html")
    assert summary.trials == len(SUBSET)
    assert summary.avg_model_calls >= 1
    assert "<svg" in (tmp_path / "local.html").read_text()
    print(f"local model, {', '.join(SUBSET)}: {summary.line()}")  # reported, not gated
