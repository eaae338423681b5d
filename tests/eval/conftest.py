from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from db.testing import SqliteTemplate
from shopbot.config import Settings
from shopbot.eval.oracle import Oracle
from shopbot.eval.runner import ScenarioTrials, TrialResult, run_suite
from shopbot.eval.scenario import Scenario, load_scenarios
from shopbot.eval.simulator import RuleSimulator
from tests.plugin import policy_index_dir, template
from tools.mailer.loopback import LoopbackInbox

SCENARIOS = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"
RunEval = Callable[..., Any]


def all_scenarios() -> list[Scenario]:
    return load_scenarios(SCENARIOS)


def eval_settings(**overrides: Any) -> Settings:
    """Settings that ignore a developer's `.env`."""
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def eval_policy(request: pytest.FixtureRequest) -> Any:
    from shopbot.policy import PolicyIndex

    return PolicyIndex.open(policy_index_dir(request.config))


@pytest.fixture(scope="session")
def eval_template(request: pytest.FixtureRequest) -> SqliteTemplate:
    found = template(request.config, "sqlite")
    assert isinstance(found, SqliteTemplate)
    return found


@pytest.fixture(scope="session")
def eval_inbox() -> Iterator[LoopbackInbox]:
    inbox = LoopbackInbox()
    inbox.start()
    yield inbox
    inbox.stop()


@pytest.fixture
def run_eval(eval_policy: Any, eval_template: SqliteTemplate, eval_inbox: LoopbackInbox) -> RunEval:
    """Run scenarios (k trials each) with the oracle, or another model, on SQLite."""

    async def run(
        scenarios: list[Scenario],
        *,
        k: int = 1,
        model_for: Callable[[Scenario], Any] = Oracle,
        **options: Any,
    ) -> list[TrialResult]:
        async with ScenarioTrials(
            model_for=model_for,
            simulator_for=RuleSimulator,
            policy_index=eval_policy,
            template=eval_template,
            inbox=eval_inbox,
            make_settings=eval_settings,
            **options,
        ) as trials:
            return await run_suite(scenarios, trials, k=k)

    return run
