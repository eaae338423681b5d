from __future__ import annotations

import json

import pytest

from shopbot.exemplars import Exemplar, ExemplarLibrary, situation, verified

PER_STEP = """State: customer NOT verified (failed attempts: 0).
Order numbers the customer wrote: 482913
Hint: call verify_identity with order_id "482913" and email "jane.doe@example.com" first.

Conversation:
Customer: hello
Assistant: Hello! How can I help?
Customer: I want to return the jeans from order 482913, jane.doe@example.com

This turn so far:
1. {"tool": "search_policy", "args": {"query": "returns"}}
   -> {"hits": []}

Allowed now: reply, verify_identity"""


def test_situation_keeps_state_hint_last_words_and_last_step() -> None:
    assert situation(PER_STEP) == (
        "State: customer NOT verified. "
        'Hint: call verify_identity with order_id "482913" and email "jane.doe@example.com" first. '
        "Customer: I want to return the jeans from order 482913, jane.doe@example.com "
        "Last step: search_policy -> hits []"
    )


def test_situation_keeps_an_approved_confirmation_and_a_short_observation() -> None:
    per_step = "\n".join(
        [
            "State: customer verified (Jane, by email).",
            "Confirmation approved: Return Jeans (line 1) = "
            + json.dumps({"tool": "create_return", "args": {"order_id": "482913", "lines": [1]}}),
            "Conversation:",
            "Customer: yes",
            "This turn so far:",
            '1. {"tool": "lookup_order", "args": {"order_id": "482913"}}',
            "   -> "
            + json.dumps(
                {"status": "delivered", "price": "9.90", "lines": [{"line": 1}, {"line": 2}]}
            ),
        ]
    )
    assert situation(per_step) == (
        "State: customer verified. "
        'Confirmation approved: {"tool": "create_return", "args": {"order_id": "482913", "lines": [1]}}. '
        "Customer: yes Last step: lookup_order -> status delivered, lines [line 1; line 2]"
    )


def test_a_turns_first_step_keeps_the_question_its_words_answer() -> None:
    asked = "Assistant: The Slim Fit Jeans (line 1) can be returned until 2026-12-12. Why?"
    per_step = "\n".join(
        [
            "State: customer verified (Jane, by email).",
            "Conversation:",
            asked,
            "Customer: Too small.",
        ]
    )
    assert situation(per_step) == f"State: customer verified. {asked} Customer: Too small."
    told = per_step.replace("Why?", "Anything else?").replace("?", ".")
    assert "Assistant" not in situation(told), "not a question: the words stand alone"
    later = per_step + '\nThis turn so far:\n1. {"tool": "reply", "args": {}}\n   -> {}'
    assert "Assistant" not in situation(later), "later steps follow this turn's last step"


def test_only_the_state_says_whether_the_customer_is_verified() -> None:
    assert verified("State: customer verified. Customer: am I NOT verified?") is True
    assert verified("State: customer NOT verified. Assistant: Once customer verified, ...") is False
    assert verified("Customer: thanks, that's all") is None


def test_a_step_is_this_turns_only_under_its_header() -> None:
    per_step = "\n".join(
        [
            "State: customer verified.",
            "Conversation:",
            "Assistant: Why?",
            "Customer: too small",
            "-> really",
        ]
    )
    assert "Assistant: Why?" in situation(per_step), "an arrow the customer typed is no step"
    cut = per_step + "\nThis turn so far:\n1. " + "x" * 200 + " ...(shortened)"
    assert "Assistant" not in situation(cut), "a step whose outcome was shortened away"


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
