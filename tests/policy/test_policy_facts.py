"""The policy documents and `PolicyConfig` must state the same numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

from shopbot.config import PolicyConfig
from shopbot.policy import check_policy_numbers, untagged_numbers
from shopbot.policy.facts import stated_numbers

# Numbers in the documents that are not PolicyConfig's: shipping prices and times, other
# deadlines, loyalty amounts. Reviewed by hand; a number added to a document without a
# `<!-- policy:... -->` tag fails here until it is either tagged (it comes from the config)
# or listed (it does not). Some equal a config value by coincidence and mean something else:
# privacy "30 days" (data requests), loyalty "30 days" (birthday notice, rule changes),
# promotions "30 days" (welcome code), contact "1 business day" (email replies),
# payment-methods "7 days" (saved basket).
NOT_FROM_CONFIG = {
    "accounts": ["30 minutes", "60 minutes", "90 days"],
    "contact-and-customer-care": ["1 business day", "5 business days"],
    "damaged-or-wrong-items": ["14 days", "14 days"],
    "delivery-problems": [
        "10 business days",
        "10 business days",
        "10 days",
        "14 days",
        "2 to 3 business days",
        "5 business days",
    ],
    "gift-cards": ["$25", "$500"],
    "gift-returns": ["$5"],
    "loyalty-program": [
        "$10",
        "$10",
        "$300",
        "$750",
        "14 days",
        "30 days",
        "30 days",
        "90 days",
        "90 days",
        "90-day",
    ],
    "order-changes-and-cancellations": ["60 minutes"],
    "packaging-and-sustainability": ["$5", "3 business days"],
    "payment-methods": ["3 to 5 business days", "7 days"],
    "price-adjustments": [
        "$190",
        "$235",
        "$45",
        "14 days",
        "14 days",
        "14 days",
        "14 days",
        "14 days",
    ],
    "privacy-and-data-requests": ["30 days", "30 days"],
    "promotions-and-discount-codes": ["$40", "30 days"],
    "returns-and-refunds": ["3 business days"],
    "shipping-domestic": [
        "$14.95",
        "$4.95",
        "$500",
        "$6.95",
        "1 to 2 business days",
        "10 days",
        "2 business days",
        "2 to 4 business days",
        "2 to 5 business days",
        "2 to 5 business days",
    ],
    "shipping-international": [
        "$14.95",
        "$150",
        "$24.95",
        "$29.95",
        "10 business days",
        "4 to 8 business days",
        "6 to 10 business days",
        "7 to 12 business days",
        "7 to 15 business days",
    ],
    "store-and-click-and-collect": ["14 days", "2 to 4 business days"],
    "warranty": ["2 business days"],
}


def test_documents_state_the_configured_numbers(policies_dir: Path) -> None:
    assert check_policy_numbers(policies_dir, PolicyConfig()) == []


def test_the_return_window_ends_at_midnight_in_the_configured_time_zone(
    policies_dir: Path,
) -> None:
    # Not a number, so no tag: the documents name the zone in words, for the default one.
    assert PolicyConfig().timezone == "America/New_York"
    for document in ("returns-and-refunds.md", "exchanges.md"):
        assert "ends at midnight Eastern time" in (policies_dir / document).read_text()


def test_every_other_number_is_a_reviewed_one(policies_dir: Path) -> None:
    found = {doc: sorted(amounts) for doc, amounts in untagged_numbers(policies_dir).items()}

    assert found == NOT_FROM_CONFIG


def test_a_changed_config_number_is_caught(policies_dir: Path) -> None:
    policy = PolicyConfig(return_window_days=45, return_shipping_fee=4.95)

    problems = check_policy_numbers(policies_dir, policy)

    assert any("says 30, config return_window_days = 45" in p for p in problems)
    assert any("says 0, config return_shipping_fee = 4.95" in p for p in problems)
    assert not any("refund_days" in p for p in problems)


def test_a_document_edited_alone_is_caught(policies_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "policies"
    shutil.copytree(policies_dir, copy)
    exchanges = copy / "exchanges.md"
    exchanges.write_text(
        exchanges.read_text().replace("30 days<!-- policy:exchange_window_days -->", "14 days", 1)
        + "\nWithin 45 days<!-- policy:exchange_window_days --> of delivery.\n"
    )

    problems = check_policy_numbers(copy, PolicyConfig())

    assert len(problems) == 1
    assert problems[0].startswith("exchanges.md:")
    assert problems[0].endswith(
        "'45 days<!-- policy:exchange_window_days -->': says 45, config exchange_window_days = 30"
    )
    assert "14 days" in untagged_numbers(copy)["exchanges"]


def test_wrong_units_unknown_fields_and_missing_fields_are_caught(tmp_path: Path) -> None:
    (tmp_path / "refunds.md").write_text(
        "# Refunds\n\nWithin 7 days<!-- policy:refund_days_original_method -->, "
        "or 2 weeks<!-- policy:refund_days_gift_card -->, "
        "and 30 days<!-- policy:return_days -->.\n"
    )

    problems = check_policy_numbers(tmp_path, PolicyConfig())

    assert "refunds.md: 1 policy tag(s) not right after a number" in problems
    assert any("refund_days_original_method must be written in" in p for p in problems)
    assert any("no config field 'return_days'" in p for p in problems)
    assert "no document states free_shipping_threshold" in problems


def test_tags_read_money_free_and_plain_numbers() -> None:
    markdown = (
        "Free from $50<!-- policy:free_shipping_threshold -->, labels are "
        "free<!-- policy:return_shipping_fee -->, after 5<!-- policy:max_verification_attempts --> "
        "tries, a 30-day<!-- policy:return_window_days --> window."
    )

    found = [(n.field, n.value, n.unit) for n in stated_numbers(markdown)]

    assert found == [
        ("free_shipping_threshold", 50.0, "$"),
        ("return_shipping_fee", 0.0, "$"),
        ("max_verification_attempts", 5.0, ""),
        ("return_window_days", 30.0, "day"),
    ]
