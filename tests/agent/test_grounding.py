from __future__ import annotations

from shopbot.grounding import check_grounding, policy_claims
from shopbot.policy import PolicyHit


def hit(text: str) -> PolicyHit:
    return PolicyHit(
        document="returns-and-refunds",
        title="Returns and refunds",
        section="Return window",
        anchor="returns-and-refunds#return-window",
        text=text,
        score=1.0,
    )


WINDOW = hit("You have 30 days to return an item, counted from the day your order was delivered.")


def test_finds_amounts_and_policy_terms() -> None:
    claims = policy_claims(
        "Swimwear is final sale. Refunds take 7 business days; orders over $50 ship free."
    )

    assert [(c.text, c.numeric) for c in claims] == [
        ("final sale", False),
        ("Refunds", False),
        ("7 business days", True),
        ("$50", True),
    ]


def test_small_talk_states_no_policy() -> None:
    assert policy_claims("Hello! Which order would you like to talk about?") == []
    assert check_grounding("Thanks, have a lovely day.", []).ok


def test_a_policy_statement_without_sources_is_unsupported() -> None:
    grounding = check_grounding("You can return it within 30 days of delivery.", [])

    assert not grounding.ok
    assert [c.text for c in grounding.unsupported] == ["30 days"]


def test_numbers_must_match_a_source() -> None:
    assert check_grounding("You have 30 days to return it.", [WINDOW]).ok
    assert check_grounding("There's a 30-day return window.", [WINDOW]).ok

    wrong = check_grounding("You have 45 days to return it.", [WINDOW])
    assert [c.text for c in wrong.unsupported] == ["45 days"]


def test_ranges_and_money_are_compared_in_one_form() -> None:
    source = hit("Standard delivery takes 2 to 5 business days and costs $6.95.")

    assert check_grounding("It arrives in 2-5 business days and costs $6.95.", [source]).ok
    assert not check_grounding("It costs $7.", [source]).ok
