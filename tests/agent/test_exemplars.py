from __future__ import annotations

import pytest

from shopbot.exemplars import ExemplarLibrary, situation

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


def test_situation_keeps_state_last_words_and_last_step() -> None:
    assert situation(PER_STEP) == (
        "State: customer NOT verified. "
        "Customer: I want to return the jeans from order 482913, jane.doe@example.com "
        'Last step: {"hits": []}'
    )


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
