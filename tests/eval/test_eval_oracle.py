"""The oracle over every scenario: 100%, with no denial and no violation. A failure here means
a scenario, the simulator, the oracle and the scorer disagree."""

from __future__ import annotations

from typing import get_args

import pytest

from shopbot.eval.oracle import Oracle
from shopbot.eval.scenario import Category, Scenario
from shopbot.events import ActionProposed, CustomerMessage, ObservationMade
from shopbot.models.base import ModelRequest
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


def _guesses(emails: list[str], expect: dict[str, object]) -> Scenario:
    return Scenario.model_validate(
        {
            "id": "several_emails",
            "title": "Several emails in one message",
            "category": "identity_failure",
            "persona": {
                "name": "Jane Doe",
                "orders": ["482914"],
                "emails": emails,
                "opening": f"Where is order 482914? Try {', '.join(emails)}",
            },
            "goal": {"kind": "status", "order_id": "482914"},
            "expect": expect,
        }
    )


async def test_emails_in_one_message_are_tried_in_the_order_typed(run_eval: RunEval) -> None:
    guesses = ["jd1@example.com", "jd2@example.com", "jane.doe@example.com"]
    scenario = _guesses(guesses, {"verified_as": "cust_jane", "facts": ["PX482914001"]})
    [result] = await run_eval([scenario])
    assert result.passed, result.failures
    # One turn: two failed checks, the right one, the lookup, the answer.
    assert (result.turns, result.steps, result.denials) == (1, 5, 0)


async def test_guesses_past_the_limit_end_with_a_person(run_eval: RunEval) -> None:
    guesses = [f"jd{n}@example.com" for n in range(1, 7)]
    [result] = await run_eval([_guesses(guesses, {"escalated": True})])
    assert result.passed, result.failures
    # Five checks (the guard's limit), then the hand-over; the sixth guess is never sent.
    assert (result.turns, result.steps, result.denials) == (1, 6, 0)


def test_after_a_corrected_order_number_the_email_typed_with_it_is_tried_first() -> None:
    """The generator never corrects an order number, so this path is checked by hand: the
    email of the message that corrects the order goes first, not the one typed for the
    wrong order."""
    scenario = _guesses(["jane.doe@example.com"], {"verified_as": "cust_jane"})
    oracle = Oracle(scenario)
    for event in [
        CustomerMessage(text="Where is order 999999? old.jane@example.com"),
        ActionProposed(
            step=1,
            tool="verify_identity",
            args={"order_id": "999999", "email": "old.jane@example.com"},
        ),
        ObservationMade(step=1, tool="verify_identity", data={"verified": False}),
        CustomerMessage(text="Sorry, wrong number: it's 482914, jane.doe@example.com"),
    ]:
        oracle.observe(event)
    request = ModelRequest(
        messages=[],
        allowed=frozenset({"verify_identity", "reply"}),
        schema={},
        hints={
            "order_id": ["999999", "482914"],
            "email": ["old.jane@example.com", "jane.doe@example.com"],
        },
    )
    assert oracle.decide(request) == (
        "verify_identity",
        {"order_id": "482914", "email": "jane.doe@example.com"},
    )
