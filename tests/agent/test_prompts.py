"""The prompt: each desk's role and rules, a shop's own instructions, and the per-step
summary of what the state knows (the items named, what the eligibility check said)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shopbot.app import build_agent
from shopbot.config import Settings
from shopbot.models.scripted import ScriptedModel
from shopbot.state import ConversationState
from shopbot.tau2.data import missing_reason, tau2_dir
from tests.plugin import order_facts
from tools.instructions import ROLE
from tools.retail.instructions import ROLE as RETAIL_ROLE


def system_prompt(**overrides: object) -> str:
    settings = Settings(_env_file=None, **overrides)  # type: ignore[call-arg]
    agent = build_agent(settings, ScriptedModel(), None)  # type: ignore[arg-type]
    return str(agent.prompts.system.content)


def test_the_returns_desk_speaks_as_the_clothing_shop() -> None:
    prompt = system_prompt()
    assert prompt.startswith(ROLE)
    assert "verify_identity(" in prompt and "find_user_id_by_email" not in prompt


@pytest.mark.skipif(bool(missing_reason()), reason=str(missing_reason()))
def test_the_retail_desk_carries_its_policy_and_its_tools() -> None:
    prompt = system_prompt(desk="retail")
    assert prompt.startswith(RETAIL_ROLE)
    assert (tau2_dir() / "policy.md").read_text().strip() in prompt
    assert "find_user_id_by_name_zip(" in prompt and "verify_identity(" not in prompt


def test_a_shops_own_instructions_replace_the_role_and_rules(tmp_path: Path) -> None:
    own = tmp_path / "desk.md"
    own.write_text("You are the help desk of Acme Bikes. Be brief.\n")
    prompt = system_prompt(instructions_file=own)
    assert prompt.startswith("You are the help desk of Acme Bikes. Be brief.\n\nTools:")
    assert ROLE not in prompt


def per_step(state: ConversationState) -> str:
    agent = build_agent(Settings(_env_file=None), ScriptedModel(), None)  # type: ignore[call-arg, arg-type]
    return agent.prompts.per_step(state, [], frozenset({"reply"}))


JANE = order_facts("482913", "Slim Fit Jeans", "Linen Shirt", "Swim Shorts")


def jane(*said: str) -> ConversationState:
    state = ConversationState("c1", datetime(2026, 12, 6, tzinfo=UTC), customer_texts=list(said))
    state.customer_id, state.proven_by = "cust_jane", "email"
    state.own_orders = {"482913": JANE}
    return state


def test_the_summary_says_which_lines_the_verified_customers_words_name() -> None:
    prompt = per_step(jane("I want to return the jeans from order 482913", "jane.doe@example.com"))
    assert "Items the customer named in order 482913: line 1 (Slim Fit Jeans)" in prompt
    assert "Items the customer named" not in per_step(jane("I'd like to send something back"))


CHECK = "check_return_eligibility"


def test_the_eligibility_report_becomes_the_next_steps_hint() -> None:
    state = jane("the jeans and the swim shorts please")
    state.observed = [
        (CHECK, {"lines": [{"line": 1, "eligible": True}, {"line": 3, "eligible": False}]})
    ]
    assert (
        "Hint: line 3 cannot go back: tell the customer why, and ask whether to return line 1."
        in per_step(state)
    )
    state.observed = [(CHECK, {"lines": [{"line": 1, "eligible": True}]})]
    assert "Hint: line 1 can go back: call create_return" in per_step(state)
    state.observed = [(CHECK, {"lines": [{"line": 3, "eligible": False}]})]
    assert "Hint: nothing checked can go back: tell the customer why." in per_step(state)
