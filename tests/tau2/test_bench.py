"""The τ²-bench runner's scorer, proven both ways through the real loop: the oracle (the
ground-truth actions, each confirmation approved by the customer) passes, an agent that
does nothing fails every task whose database must change, and one that does everything but
keeps a required fact to itself fails too. Then the pieces: facts as τ² matches them, the
confirmation answers of the LLM customer, categories, and `shopbot eval tau2`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from typer.testing import CliRunner

from db.testing import Template
from shopbot.cli import app
from shopbot.config import Settings
from shopbot.eval.metrics import summarize
from shopbot.eval.runner import TrialResult, run_suite
from shopbot.eval.simulator import AgentTurn, Simulator
from shopbot.loop import CustomerText, Incoming
from shopbot.models.base import ChatModel, ModelRequest, ModelStep, ToolCall
from shopbot.tau2.bench import (
    BenchTask,
    Tau2Trials,
    database_differences,
    facts_missing,
    load_bench_tasks,
)
from shopbot.tau2.customer import GREETING, Tau2Customer, confirmation_answer, scenario_text
from shopbot.tau2.data import Data, expected_outcome, tau2_dir
from shopbot.tau2.data import missing_reason as data_missing
from shopbot.tau2.oracle import GroundTruthAgent, OracleCustomer
from tests.tau2.conftest import tau2_template

TASKS = (
    {t.id: t for t in load_bench_tasks(tau2_dir() / "tasks_train.json")}
    if data_missing() is None
    else {}
)


def sample() -> list[str]:
    """A handful of tasks: the first of each category, the first with a ground-truth action
    that must fail, and the first with a write and a fact to tell."""
    chosen: dict[str, str] = {}
    for task_id, task in sorted(TASKS.items(), key=lambda item: int(item[0])):
        chosen.setdefault(task.category, task_id)
        if expected_outcome(task_id).errors:
            chosen.setdefault("error", task_id)
        if task.task.communicate_info and task.category != "none":
            chosen.setdefault("facts", task_id)
    kinds = ("exchange", "return", "cancel", "modify", "transfer", "none", "error", "facts")
    return sorted({chosen[k] for k in kinds if k in chosen}, key=int)


SAMPLE = sample()
MUST_CHANGE = [i for i in SAMPLE if any(expected_outcome(i).changed.values())]


def bench_settings(**overrides: Any) -> Settings:
    """Settings that ignore a developer's `.env`."""
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def template(request: pytest.FixtureRequest, tau2_db: Data) -> Template:
    return tau2_template(request.config, "sqlite", tau2_db)


async def run(
    template: Template,
    task_ids: list[str],
    agent_for: Callable[[BenchTask], ChatModel],
    customer_for: Callable[[BenchTask, ChatModel], Simulator],
    *,
    k: int = 1,
    max_turns: int = 20,
) -> list[TrialResult]:
    trials = Tau2Trials(
        agent_for,
        customer_for,
        tau2_dir(),
        make_settings=bench_settings,
        settings={"model": "scripted"},
        max_turns=max_turns,
        template=template,
    )
    async with trials:
        return await run_suite([TASKS[i] for i in task_ids], trials, k=k)


def oracle(task: BenchTask) -> ChatModel:
    return GroundTruthAgent(task.task)


def oracle_customer(task: BenchTask, agent: ChatModel) -> Simulator:
    assert isinstance(agent, GroundTruthAgent)
    return OracleCustomer(task.task, agent)


def test_the_sample_covers_the_kinds_of_task() -> None:
    if why := data_missing():
        pytest.skip(why)
    categories = {TASKS[i].category for i in SAMPLE}
    assert {"exchange", "return", "cancel", "modify", "none"} <= categories
    assert any(expected_outcome(i).errors for i in SAMPLE)
    assert any(TASKS[i].task.communicate_info for i in MUST_CHANGE)


async def test_the_oracle_passes_through_the_real_loop(template: Template) -> None:
    results = await run(template, SAMPLE, oracle, oracle_customer)
    assert [(r.task_id, r.failures, r.error) for r in results if not r.passed] == []
    # Its writes went through the guard's confirmation and the customer's approval.
    confirmed = [r for r in results if ("customer", "[confirms]") in r.transcript]
    assert {r.task_id for r in confirmed} == set(MUST_CHANGE)
    summary = summarize(results, model="oracle", simulator="oracle", k=1, seconds=1.0)
    assert summary.pass_hat == {1: 1.0}


class DoesNothing:
    """An agent that only ever replies."""

    name = "does-nothing"

    async def complete(self, request: ModelRequest) -> ModelStep:
        return ToolCall("reply", {"message": "I'm afraid I can't help."})


class OneLine:
    """A customer who says why they call, once."""

    def __init__(self, task: BenchTask) -> None:
        self.task = task
        self.said = False

    async def next(self, turn: AgentTurn | None) -> Incoming | None:
        if self.said:
            return None
        self.said = True
        return CustomerText(str(self.task.task.instructions.get("reason_for_call", "Hi")))


async def test_doing_nothing_fails_where_the_database_must_change(template: Template) -> None:
    results = await run(template, SAMPLE, lambda t: DoesNothing(), lambda t, m: OneLine(t))
    failed = {r.task_id for r in results if not r.passed}
    assert failed >= set(MUST_CHANGE) and MUST_CHANGE
    for r in results:
        if r.task_id in MUST_CHANGE:
            assert "differ from the ground truth" in r.failures[0], r.failures
    # A task with nothing to change and nothing to tell is passed by doing nothing, as in τ².
    quiet = [i for i in SAMPLE if i not in MUST_CHANGE and not TASKS[i].task.communicate_info]
    assert {r.task_id for r in results if r.passed} == set(quiet)


class KeepsQuiet(GroundTruthAgent):
    """The oracle, but it never tells the customer the facts."""

    def closing(self) -> str:
        return "All done."


async def test_a_fact_not_said_fails_the_trial(template: Template) -> None:
    told = [i for i in MUST_CHANGE if TASKS[i].task.communicate_info][:1]
    results = await run(template, told, lambda t: KeepsQuiet(t.task), oracle_customer)
    assert [f for f in results[0].failures if "differ" in f] == []  # the database is right
    facts = TASKS[told[0]].task.communicate_info
    assert results[0].failures == [f"not said: {fact!r}" for fact in facts]


async def test_the_llm_customer_confirms_through_the_interface(template: Template) -> None:
    """The customer's chat model reads the scenario, answers the agent's confirmation with a
    yes (which becomes the interface's approval), and stops with the stop token."""
    task_id = MUST_CHANGE[0]
    opening = OracleCustomer(TASKS[task_id].task, GroundTruthAgent(TASKS[task_id].task))
    first = await opening.next(None)
    assert isinstance(first, CustomerText)
    seen: list[list[BaseMessage]] = []

    async def chat(messages: list[BaseMessage]) -> str:
        seen.append(list(messages))
        last = str(messages[-1].content)
        if last == GREETING:
            return first.text
        if last.startswith("Please confirm"):
            return "Yes, please go ahead."
        return "###STOP###" if last.startswith("All done") else "Please go on."

    def customer(task: BenchTask, agent: ChatModel) -> Simulator:
        return Tau2Customer(task.user_scenario, chat)

    results = await run(template, [task_id], oracle, customer)
    assert results[0].passed, results[0].failures
    assert ("customer", "[confirms]") in results[0].transcript
    reason = str(TASKS[task_id].task.instructions["reason_for_call"])
    assert reason in str(seen[0][0].content)  # the scenario is the system prompt


def test_facts_are_matched_as_tau2_matches_them() -> None:
    replies = ["Your refund is $8,276.23.", "The Polyester one"]
    assert facts_missing(["8276.23", "polyester", "cotton"], replies) == ["cotton"]
    assert facts_missing([], []) == []


def test_database_differences_name_the_records() -> None:
    expected = {"orders": {"#W1": {"status": "pending"}, "#W2": {"amount": 1.0}}, "users": {}}
    final = {"orders": {"#W1": {"status": "cancelled"}, "#W2": {"amount": 1.0000001}}, "users": {}}
    assert database_differences(expected, final) == ["orders differ from the ground truth: #W1"]
    assert database_differences(expected, json.loads(json.dumps(expected))) == []


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Yes, please.", True),
        ("yeah go ahead", True),
        ("Ok.", True),
        ("No, wait.", False),
        ("Nope", False),
        ("Actually, what about the other order?", None),
        ("Nothing else.", None),
    ],
)
def test_confirmation_answers(text: str, answer: bool | None) -> None:
    assert confirmation_answer(text) == answer


def test_the_scenario_reads_like_tau2s() -> None:
    text = scenario_text(
        {
            "persona": "Patient.",
            "instructions": {
                "reason_for_call": "Return the lamp.",
                "known_info": "You are Ann in 12345.",
                "unknown_info": "You forgot your email.",
                "task_instructions": "Be brief.",
                "domain": "retail",
            },
        }
    )
    assert text.startswith("Persona:\nPatient.")
    assert "Reason for call:\nReturn the lamp." in text and "retail" not in text


def test_categories_come_from_the_ground_truth_writes() -> None:
    if why := data_missing():
        pytest.skip(why)
    assert TASKS["0"].category == "exchange"
    assert {t.category for t in TASKS.values()} >= {"return", "cancel", "modify", "none"}
    assert all(t.title for t in TASKS.values())


runner = CliRunner()


def test_eval_tau2_runs_the_oracle_and_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if why := data_missing():
        pytest.skip(why)
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SHOPBOT_DATABASE_URL", raising=False)
    report = tmp_path / "out" / "tau2.html"
    args = ["eval", "tau2", "--model", "scripted-oracle", "--only", MUST_CHANGE[0], "-k", "2"]
    result = runner.invoke(app, [*args, "--report", str(report), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tasks"] == 1 and summary["trials"] == 2
    assert summary["pass_hat"] == {"1": 1.0, "2": 1.0}
    assert "<svg" in report.read_text()
    assert len(json.loads(report.with_suffix(".json").read_text())["trials"]) == 2


def test_eval_tau2_says_when_no_task_matches(tmp_path: Path) -> None:
    if why := data_missing():
        pytest.skip(why)
    result = runner.invoke(app, ["eval", "tau2", "--only", "no-such-task"])
    assert result.exit_code == 2
    assert "no tasks match" in result.output
