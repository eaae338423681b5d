"""The prompt's stable part: each desk's role and rules, and a shop's own instructions."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopbot.app import RETAIL_ROLE, build_agent
from shopbot.config import Settings
from shopbot.models.scripted import ScriptedModel
from shopbot.prompts import ROLE
from shopbot.tau2.data import missing_reason, tau2_dir


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
