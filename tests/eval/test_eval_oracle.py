"""The oracle over every scenario: 100%, with no denial and no violation. A failure here means
a scenario, the simulator, the oracle and the scorer disagree."""

from __future__ import annotations

from typing import get_args

import pytest

from shopbot.eval.scenario import Category, Scenario
from tests.eval.conftest import RunEval, all_scenarios

SCENARIOS = all_scenarios()


def test_the_suite_is_big_enough_and_covers_every_category() -> None:
    assert len(SCENARIOS) >= 40
    assert {s.category for s in SCENARIOS} == set(get_args(Category))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
async def test_oracle_passes(scenario: Scenario, run_eval: RunEval) -> None:
    [result] = await run_eval([scenario])
    assert result.passed, "\n".join([*result.failures, *result.violations])
    assert result.violations == []
    assert result.denials == 0
    assert result.parse_failures == 0
    assert result.steps == result.model_calls
