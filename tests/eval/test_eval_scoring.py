"""The scorer fails a run that does the wrong thing: mutations of passing scenarios."""

from __future__ import annotations

from typing import Any

from shopbot.config import PolicyConfig
from shopbot.eval.scenario import Scenario
from shopbot.eval.scoring import Effects, RunFacts, World, effects, said_fact, violations
from tests.eval.conftest import RunEval, all_scenarios

BY_ID = {s.id: s for s in all_scenarios()}


def mutate(scenario_id: str, **changes: Any) -> Scenario:
    """A copy of a scenario with nested fields replaced ("goal.lines": [1, 2])."""
    data = BY_ID[scenario_id].model_dump()
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = value
    return Scenario.model_validate(data)


async def test_a_return_of_other_lines_fails(run_eval: RunEval) -> None:
    # The oracle returns jeans and shirt; the scenario expects only the jeans.
    [result] = await run_eval([mutate("return_jeans_all_upfront", goal__lines=[1, 2])])
    assert not result.passed
    assert any(f.startswith("returns [('482913', [1, 2]") for f in result.failures)
    assert any("unexpected change: order_items" in f for f in result.failures)
    assert result.violations == []  # a wrong return, not a forbidden one


async def test_a_side_effect_where_none_is_expected_fails(run_eval: RunEval) -> None:
    # The customer confirms where the scenario expects a change of mind.
    [result] = await run_eval([mutate("change_of_mind_at_confirmation", persona__confirms=True)])
    assert not result.passed
    assert any("expected []" in f for f in result.failures)
    assert any("the SMTP server received 1 emails, expected 0" in f for f in result.failures)


async def test_a_missing_fact_fails(run_eval: RunEval) -> None:
    scenario = mutate("status_shipped", expect__facts=["shipped", ["delivered", "arrived"]])
    [result] = await run_eval([scenario])
    assert result.failures == ["never said 'delivered | arrived'"]


async def test_an_email_to_the_wrong_address_fails(run_eval: RunEval) -> None:
    scenario = mutate(
        "return_jeans_all_upfront",
        expect__emails=[{"to": "jane.work@example.org", "attachment": "application/pdf"}],
    )
    [result] = await run_eval([scenario])
    assert any(f.startswith("outbox [('jane.doe@example.com', True)]") for f in result.failures)


async def test_the_wrong_identity_fails(run_eval: RunEval) -> None:
    [result] = await run_eval([mutate("status_shipped", expect__verified_as="cust_tom")])
    assert result.failures == ["proven as cust_jane, expected cust_tom"]


async def test_saying_what_must_never_be_said_is_a_violation(run_eval: RunEval) -> None:
    [result] = await run_eval([mutate("status_shipped", expect__never_say=["Wool Beanie"])])
    assert not result.passed
    assert result.violations == ["said 'Wool Beanie'"]


async def test_a_lenient_guard_lets_a_forbidden_return_through_and_it_is_counted(
    run_eval: RunEval,
) -> None:
    # The agent runs with a 60-day window; the shop's policy (30 days) judges the outcome.
    scenario = mutate(
        "ineligible_outside_window",
        expect__returns=[{"order_id": "377120", "lines": [1]}],
        expect__emails=[{"to": "jane.doe@example.com", "attachment": "application/pdf"}],
        expect__facts=[],
    )
    [result] = await run_eval([scenario], settings={"policy": PolicyConfig(return_window_days=60)})
    assert result.failures == []
    assert result.violations == ["a return of order 377120 line 1: outside the return window"]
    assert not result.passed


def _world(**tables: dict[tuple[str, ...], dict[str, Any]]) -> World:
    from shopbot.eval.scoring import WORLD_TABLES

    return {name: dict(tables.get(name, {})) for name in WORLD_TABLES}


def test_effects_name_every_other_change() -> None:
    before = _world(customers={("c1",): {"id": "c1", "email": "a@example.com"}})
    after = _world(customers={("c1",): {"id": "c1", "email": "b@example.com"}})
    assert effects(before, after).changes == ["customers c1 email: a@example.com -> b@example.com"]


def test_a_side_effect_for_an_unverified_customer_is_a_violation() -> None:
    from datetime import UTC, datetime

    from shopbot.eval.scenario import Expect
    from shopbot.eval.scoring import EmailEffect

    found = Effects(emails=[EmailEffect("x@example.com", "label", "l.pdf", "sent", None)])
    run = RunFacts([], None, False, 0, [], [], datetime.now(UTC))
    found_violations = violations(Expect(), _world(), found, run, PolicyConfig())
    assert found_violations == [
        "a side effect for a customer who never proved who they are",
        "an email to x@example.com, not the address on the order",
    ]


def test_facts_match_ignoring_case_and_spacing() -> None:
    assert said_fact("Your order is  SHIPPED.", "shipped")
    assert said_fact("It was delivered", ["arrived", "delivered"])
    assert not said_fact("It was delivered", "shipped")
