"""The embedded local model as both the agent and the τ² customer, on one task for two turns:
the benchmark runs end to end and the report is produced (not gated on passing; the numbers
go in BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db.testing import Template
from shopbot.app import build_model
from shopbot.eval.metrics import summarize
from shopbot.eval.report import write_report
from shopbot.eval.runner import run_suite
from shopbot.eval.simulator import Simulator, local_chat
from shopbot.models.base import ChatModel
from shopbot.tau2.bench import BenchTask, Tau2Trials, load_bench_tasks
from shopbot.tau2.customer import Tau2Customer
from shopbot.tau2.data import Data, tau2_dir
from tests.tau2.conftest import tau2_template
from tests.tau2.test_bench import bench_settings


@pytest.fixture
def template(request: pytest.FixtureRequest, tau2_db: Data) -> Template:
    return tau2_template(request.config, "sqlite", tau2_db)


@pytest.mark.slow
async def test_local_model_as_agent_and_customer_produces_a_report(
    template: Template, tmp_path: Path
) -> None:
    settings = bench_settings(model="local", desk="retail")
    agent = build_model(settings)
    chat = local_chat(settings)

    def customer_for(task: BenchTask, model: ChatModel) -> Simulator:
        return Tau2Customer(task.user_scenario, chat)

    tasks = load_bench_tasks(tau2_dir() / "tasks_train.json", ["0"])
    trials = Tau2Trials(
        lambda task: agent,
        customer_for,
        tau2_dir(),
        make_settings=bench_settings,
        settings={"model": "local"},
        max_turns=2,
        template=template,
    )
    async with trials:
        results = await run_suite(tasks, trials, k=1)
    summary = summarize(results, model=agent.name, simulator="llm (local)", k=1, seconds=0.0)
    report = tmp_path / "tau2.html"
    write_report(summary, results, html=report, json_path=report.with_suffix(".json"))
    assert results[0].error is None, results[0].failures
    assert 1 <= results[0].turns <= 2 and results[0].model_calls >= 1
    assert "<svg" in report.read_text()
    assert json.loads(report.with_suffix(".json").read_text())["summary"]["trials"] == 1
    print(f"local model on τ² task 0: {summary.line()}")  # reported, not gated
