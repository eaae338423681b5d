"""Which order lines a customer's words name: the prompt's "Items the customer named"."""

from __future__ import annotations

from tests.plugin import order_facts
from tools.facts import OrderFacts, named_lines


def order(*names: str) -> OrderFacts:
    return order_facts("482913", *names)


JANE = order("Slim Fit Jeans", "Linen Shirt", "Swim Shorts")


def test_an_item_is_named_by_its_last_word_or_its_full_name() -> None:
    assert named_lines(["I want to return the jeans from order 482913"], JANE) == [1]
    assert named_lines(["return LINEN SHIRT please"], JANE) == [2]
    assert named_lines(["the jeans and the swim shorts"], JANE) == [1, 3]


def test_a_plural_or_singular_still_names_the_item() -> None:
    boots = order("Leather Boots", "Wool Scarf")
    assert named_lines(["the boot is too small"], boots) == [1]
    assert named_lines(["both scarves"], boots) == [1, 2]  # "both" names every line


def test_lines_sharing_a_word_are_told_apart_by_the_others() -> None:
    shirts = order("Linen Shirt", "Oxford Shirt", "Slim Fit Jeans")
    assert named_lines(["the oxford shirt"], shirts) == [2]
    assert named_lines(["the shirt"], shirts) == [1, 2]  # nothing tells them apart
    assert named_lines(["jeans and the linen shirt"], shirts) == [1, 3]


def test_the_latest_message_naming_an_item_counts() -> None:
    said = ["I want to return the jeans", "482913, jane.doe@example.com", "actually the shirt"]
    assert named_lines(said, JANE) == [2]
    assert named_lines(said[:2], JANE) == [1]


def test_nothing_named_is_nothing() -> None:
    assert named_lines(["I'd like to send something back"], JANE) == []
    assert named_lines(["the jens"], JANE) == []  # a misspelt name is left to the model
    assert named_lines([], JANE) == []
