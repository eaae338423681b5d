"""In-context exemplars: the key a situation is retrieved by, and the retrieval.

The key is written from `ModelRequest.situation`, where the conversation stands as the
per-step prompt tells it. It was once condensed from the prompt's lines
(`_from_prompt_lines`, kept here as it was): the bare base model's retrieval depends on the
key, so the two must agree, on the replay suite's every step and on prompts cut by their
budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import shopbot.replay
from db import Role
from db.testing import cloned
from shopbot.actions import ActionSchema
from shopbot.exemplars import (
    ASKED_CHARS,
    LAST_STEP_CHARS,
    TURN_SO_FAR,
    Exemplar,
    ExemplarLibrary,
    compact,
    situation,
    verified,
)
from shopbot.models.base import ModelRequest, ModelStep, Said, Situation, StepShown
from shopbot.models.scripted import ScriptedModel
from shopbot.prompts import PromptBuilder, Step
from shopbot.replay import Script, replay
from shopbot.state import ConversationState, HistoryLine
from tests.plugin import policy_index_dir, settings_for, template
from tools import TOOLS
from tools.instructions import INSTRUCTIONS

ROOT = Path(__file__).resolve().parents[2]


def _from_prompt_lines(per_step: str) -> str:
    """The key as it was written until it was read from the state: from the prompt's lines."""

    def last_step(action_line: str, outcome_line: str) -> str:
        try:
            tool = str(json.loads(action_line.split(". ", 1)[1])["tool"])
        except (IndexError, ValueError, KeyError, TypeError):
            tool = "invalid output"
        outcome = outcome_line.strip().removeprefix("->").strip()
        with contextlib.suppress(ValueError):
            outcome = compact(json.loads(outcome))
        return f"Last step: {tool} -> {outcome}"[:LAST_STEP_CHARS]

    lines = per_step.splitlines()
    keep: list[str] = []
    for line in lines:
        if line.startswith("State:"):
            state = line.replace(" (failed attempts: 0)", "")
            keep.append(re.sub(r"customer verified \(.*\)", "customer verified", state))
        elif line.startswith("Confirmation approved:"):
            keep.append("Confirmation approved: " + line.rsplit(" = ", 1)[-1] + ".")
        elif line.startswith("Hint:"):
            keep.append(line)
    said = [i for i, line in enumerate(lines) if line.startswith("Customer:")]
    turn = lines.index(TURN_SO_FAR) if TURN_SO_FAR in lines else len(lines)
    steps = [i for i, line in enumerate(lines) if i > turn and line.strip().startswith("->")]
    asks = said and lines[said[-1] - 1].startswith("Assistant:") and "?" in lines[said[-1] - 1]
    if said and turn == len(lines) and said[-1] > 0 and asks:
        keep.append(lines[said[-1] - 1][:ASKED_CHARS])
    keep += [lines[i] for i in said[-1:]]
    if steps and steps[-1] > 0:
        keep.append(last_step(lines[steps[-1] - 1], lines[steps[-1]]))
    return " ".join(keep)


def agree(request: ModelRequest) -> None:
    assert request.situation is not None
    per_step = str(request.messages[-1].content)
    assert situation(request.situation) == _from_prompt_lines(per_step), per_step


class Checked(ScriptedModel):
    """The scripted model, checking at each step that both keys agree."""

    checked = 0

    async def complete(self, request: ModelRequest) -> ModelStep:
        agree(request)
        Checked.checked += 1
        return await super().complete(request)


def test_the_key_from_the_state_is_the_key_from_the_prompt_on_every_replayed_step(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    config = request.config
    policy: Any = None
    for path in sorted((ROOT / "fixtures" / "conversations").glob("*.yaml")):
        script = Script.load(path)
        if script.uses("search_policy") and policy is None:
            from shopbot.policy import PolicyIndex

            policy = PolicyIndex.open(policy_index_dir(config))
        with (
            cloned(template(config, "sqlite")) as url,
            mock.patch.object(shopbot.replay, "ScriptedModel", Checked),
        ):
            settings = settings_for(url, tmp_path / path.stem)
            result = asyncio.run(replay(script, settings, name=path.stem, policy=policy))
        assert result.passed, (path.stem, result.failures)
    assert Checked.checked > 100


def state_with(*history: tuple[Role, str], failed: int = 0) -> ConversationState:
    state = ConversationState("c1", datetime.now(UTC))
    state.history = [HistoryLine(role, text) for role, text in history]
    state.failed_verifications = failed
    return state


PROMPTS = PromptBuilder(ActionSchema(TOOLS), instructions=INSTRUCTIONS, budget_chars=3_000)
LONG = json.dumps({"hits": [{"anchor": f"a#{i}", "text": "word " * 80} for i in range(3)]})


@pytest.mark.parametrize(
    "steps",
    [
        [],
        [Step('{"tool": "search_policy", "args": {"query": "q"}}', LONG, "search_policy")] * 3,
        [
            Step('{"tool": "search_policy", "args": {"query": "' + "q" * 190 + '"}}', LONG),
            Step("(invalid output) {oops", "ERROR: Invalid JSON: oops."),
        ],
        [
            Step('{"tool": "lookup_order", "args": {"order_id": "1"}}', LONG, "lookup_order"),
            Step('{"tool": "search_policy", "args": {"query": "' + "q" * 190 + '"}}', LONG),
        ],
        [Step('{"tool": "lookup_order", "args": {}}', "DENIED: not verified.", "lookup_order")],
    ],
)
@pytest.mark.parametrize("failed", [0, 2])
def test_the_keys_agree_where_the_budget_cuts_the_prompt(steps: list[Step], failed: int) -> None:
    state = state_with(
        (Role.CUSTOMER, "hi " * 300),
        (Role.ASSISTANT, "Why are you sending it back?"),
        (Role.CUSTOMER, "It's too small.\nAnd red."),
        failed=failed,
    )
    prompt = PROMPTS.build(state, steps, frozenset({"reply"}))
    agree(ModelRequest(prompt.messages, frozenset(), {}, situation=prompt.situation))


def test_situation_keeps_state_hint_last_words_and_last_step() -> None:
    now = Situation(
        verified=False,
        failed_checks=0,
        approved=None,
        hint='call verify_identity with order_id "482913" and email "jane.doe@example.com" first.',
        conversation=(
            Said("customer", "hello"),
            Said("assistant", "Hello! How can I help?"),
            Said("customer", "I want to return the jeans from order 482913, jane.doe@example.com"),
        ),
        steps=(StepShown("search_policy", '{"hits": []}'),),
    )
    assert situation(now) == (
        "State: customer NOT verified. "
        'Hint: call verify_identity with order_id "482913" and email "jane.doe@example.com" first. '
        "Customer: I want to return the jeans from order 482913, jane.doe@example.com "
        "Last step: search_policy -> hits []"
    )


def test_situation_keeps_an_approved_confirmation_and_a_short_observation() -> None:
    approved = json.dumps({"tool": "create_return", "args": {"order_id": "482913", "lines": [1]}})
    observed = json.dumps(
        {"status": "delivered", "price": "9.90", "lines": [{"line": 1}, {"line": 2}]}
    )
    now = Situation(
        verified=True,
        failed_checks=0,
        approved=approved,
        hint=None,
        conversation=(Said("customer", "yes"),),
        steps=(StepShown("lookup_order", observed),),
    )
    assert situation(now) == (
        "State: customer verified. "
        f"Confirmation approved: {approved}. "
        "Customer: yes Last step: lookup_order -> status delivered, lines [line 1; line 2]"
    )


def test_a_turns_first_step_keeps_the_question_its_words_answer() -> None:
    asked = "The Slim Fit Jeans (line 1) can be returned until 2026-12-12. Why?"
    now = Situation(
        verified=True,
        failed_checks=0,
        approved=None,
        hint=None,
        conversation=(Said("assistant", asked), Said("customer", "Too small.")),
        steps=(),
    )
    assert situation(now) == f"State: customer verified. Assistant: {asked} Customer: Too small."
    told = replace(now, conversation=(Said("assistant", "Done."), now.conversation[1]))
    assert "Assistant" not in situation(told), "not a question: the words stand alone"
    later = replace(now, steps=(StepShown("reply", "{}"),))
    assert "Assistant" not in situation(later), "later steps follow this turn's last step"
    cut = replace(now, steps=(StepShown(None, None),))
    assert "Assistant" not in situation(cut) and "Last step" not in situation(cut)


def test_only_the_state_says_whether_the_customer_is_verified() -> None:
    assert verified("State: customer verified. Customer: am I NOT verified?") is True
    assert verified("State: customer NOT verified. Assistant: Once customer verified, ...") is False
    assert verified("Customer: thanks, that's all") is None


def test_what_a_customer_types_is_their_words_whatever_it_looks_like() -> None:
    now = Situation(
        verified=True,
        failed_checks=0,
        approved=None,
        hint=None,
        conversation=(Said("assistant", "Why?"), Said("customer", "too small\n-> really")),
        steps=(),
    )
    assert situation(now) == "State: customer verified. Assistant: Why? Customer: too small"


@pytest.fixture(scope="module")
def library() -> ExemplarLibrary:
    return ExemplarLibrary.load()


def test_nearest_respects_the_identity_state(library: ExemplarLibrary) -> None:
    unproven = library.nearest("State: customer NOT verified. Customer: where is 482913? a@b.co")
    assert unproven[-1].action["tool"] == "verify_identity"
    assert all(e.verified is not True for e in unproven)
    proven = library.nearest("State: customer verified. Customer: where is my order 482913?")
    assert all(e.verified is not False for e in proven)


def test_a_policy_question_finds_the_search_exemplar(library: ExemplarLibrary) -> None:
    found = library.nearest("State: customer NOT verified. Customer: can i return swimwear??")
    assert found[-1].action["tool"] == "search_policy"


def test_nearest_offers_only_allowed_tools_and_held_out_sources(library: ExemplarLibrary) -> None:
    text = "State: customer verified. Customer: where is order 482913?"
    found = library.nearest(text, 3, tools={"reply", "escalate"})
    assert len(found) == 3
    assert {e.action["tool"] for e in found} <= {"reply", "escalate"}
    tagged = ExemplarLibrary(
        [*library.exemplars[:2], Exemplar("Customer: hi", {"tool": "reply"}, "x")]
    )
    assert [e.source for e in tagged.without("x").exemplars] == [None, None]
    assert len(tagged.without("x").nearest("Customer: hi", 5)) == 2
