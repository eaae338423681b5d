"""The retail desk's guard, rule by rule: what policy.md forbids is denied before any tool
runs, what it allows is allowed (writes only after the customer's confirmation).

States are built by hand, as the loader would build them for the action in hand: no database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from db import OrderStatus, PaymentKind, TransactionKind
from shopbot.actions import Action, ActionSchema
from shopbot.config import PolicyConfig
from shopbot.guard import Guard, Verdict
from shopbot.models.base import ToolCall
from shopbot.state import ConversationState
from tools.facts import OrderFacts
from tools.retail import RETAIL_REGISTRY, RETAIL_TOOLS
from tools.retail.facts import (
    ItemFacts,
    MethodFacts,
    PaymentFacts,
    RetailFacts,
    RetailOrderFacts,
    VariantFacts,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
schema = ActionSchema(RETAIL_TOOLS)
guard = Guard(RETAIL_REGISTRY, PolicyConfig())

# The proven customer u1's payment methods; a gift card of 40 and one of 1000.
METHODS = {
    m.id: m
    for m in (
        MethodFacts("credit_card_1", PaymentKind.CREDIT_CARD, None),
        MethodFacts("paypal_1", PaymentKind.PAYPAL, None),
        MethodFacts("gift_card_1", PaymentKind.GIFT_CARD, Decimal("40")),
        MethodFacts("gift_card_rich", PaymentKind.GIFT_CARD, Decimal("1000")),
    )
}
# Item A of product P1 at 100, B of P2 at 30, C of P3 at 20.
A, B, C = (
    ItemFacts("A", "P1", Decimal(100)),
    ItemFacts("B", "P2", Decimal(30)),
    ItemFacts("C", "P3", Decimal(20)),
)
VARIANTS = {
    v.id: v
    for v in (
        VariantFacts("A2", "P1", True, Decimal(150)),  # same product, available, +50
        VariantFacts("A3", "P1", False, Decimal(90)),  # same product, unavailable
        VariantFacts("D", "P9", True, Decimal(100)),  # another product
        VariantFacts("B2", "P2", True, Decimal(35)),
    )
}


def _order(order_id: str, status: OrderStatus, owner: str = "u1") -> RetailOrderFacts:
    delivered = status is not OrderStatus.PLACED and status is not OrderStatus.ITEMS_MODIFIED
    items, paid, method = (
        ((A, C), Decimal(120), "paypal_1") if delivered else ((A, B), Decimal(130), "credit_card_1")
    )
    return RetailOrderFacts(
        order_id, owner, status, items, (PaymentFacts(TransactionKind.PAYMENT, paid, method),)
    )


ORDERS = {
    o.order_id: o
    for o in (
        _order("#W1", OrderStatus.PLACED),
        _order("#W2", OrderStatus.DELIVERED),
        _order("#W3", OrderStatus.ITEMS_MODIFIED),
        _order("#W4", OrderStatus.SHIPPED),
        _order("#W5", OrderStatus.EXCHANGE_REQUESTED),
        _order("#W9", OrderStatus.PLACED, owner="u2"),
    )
}
ADDRESS = {
    "address1": "1 Main St",
    "address2": "",
    "city": "Austin",
    "state": "TX",
    "country": "USA",
    "zip": "78701",
}


def action(tool: str, **args: Any) -> Action:
    parsed = schema.parse(ToolCall(tool, args))
    assert isinstance(parsed, Action), parsed
    return parsed


def state_for(act: Action, customer: str | None = "u1", said: str = "") -> ConversationState:
    """The state as `load_step_facts` leaves it: the named order, u1's methods, the variants."""
    order_id = getattr(act.args, "order_id", None)
    named = {order_id: ORDERS[order_id]} if order_id in ORDERS else {}
    return ConversationState(
        conversation_id="c",
        now=NOW,
        customer_id=customer,
        customer_texts=[said] if said else [],
        orders={
            k: OrderFacts(k, o.user_id, "u@example.com", o.status, None, {})
            for k, o in named.items()
        },
        rule_facts=RetailFacts(named, METHODS if customer else {}, VARIANTS),
    )


def check(act: Action, st: ConversationState) -> Verdict:
    verdict = guard.check(act, st)
    # Whatever the guard would let through, it also offers: backends may offer only those.
    assert verdict.decision == "deny" or act.tool in guard.allowed(st)
    return verdict


def cancel(order: str = "#W1", reason: str = "no longer needed") -> Action:
    return action("cancel_pending_order", order_id=order, reason=reason)


def pay(order: str = "#W1", method: str = "paypal_1") -> Action:
    return action("modify_pending_order_payment", order_id=order, payment_method_id=method)


def items(
    order: str = "#W1",
    old: tuple[str, ...] = ("A",),
    new: tuple[str, ...] = ("A2",),
    method: str = "credit_card_1",
) -> Action:
    return action(
        "modify_pending_order_items",
        order_id=order,
        item_ids=list(old),
        new_item_ids=list(new),
        payment_method_id=method,
    )


def ret(order: str = "#W2", old: tuple[str, ...] = ("A",), method: str = "paypal_1") -> Action:
    return action(
        "return_delivered_order_items", order_id=order, item_ids=list(old), payment_method_id=method
    )


def exchange(
    order: str = "#W2",
    old: tuple[str, ...] = ("A",),
    new: tuple[str, ...] = ("A2",),
    method: str = "paypal_1",
) -> Action:
    return action(
        "exchange_delivered_order_items",
        order_id=order,
        item_ids=list(old),
        new_item_ids=list(new),
        payment_method_id=method,
    )


ALLOWED = [
    ("read an own order", action("get_order_details", order_id="#W1"), "allow"),
    ("read the own profile", action("get_user_details", user_id="u1"), "allow"),
    ("cancel, no longer needed", cancel(), "confirm"),
    ("cancel, ordered by mistake", cancel(reason="ordered by mistake"), "confirm"),
    (
        "new address for a pending order",
        action("modify_pending_order_address", order_id="#W1", **ADDRESS),
        "confirm",
    ),
    ("pay with another method", pay(), "confirm"),
    ("pay with a gift card that covers it", pay(method="gift_card_rich"), "confirm"),
    ("modify an item to an available variant", items(), "confirm"),
    ("return, refund to the original method", ret(), "confirm"),
    ("return, refund to a gift card", ret(method="gift_card_1"), "confirm"),
    ("exchange for an available variant", exchange(), "confirm"),
    (
        "change the own default address",
        action("modify_user_address", user_id="u1", **ADDRESS),
        "confirm",
    ),
]

DENIED = [
    # one customer per conversation, their records only
    (
        "another user's order",
        action("get_order_details", order_id="#W9"),
        "not on this customer's account",
    ),
    (
        "an unknown order reads the same",
        action("get_order_details", order_id="#W404"),
        "not on this customer's account",
    ),
    (
        "another user's profile",
        action("get_user_details", user_id="u2"),
        "not the customer proven",
    ),
    (
        "another user's address",
        action("modify_user_address", user_id="u2", **ADDRESS),
        "not the customer proven",
    ),
    ("cancel another user's order", cancel("#W9"), "not on this customer's account"),
    # cancel: pending only, two reasons only
    ("cancel a delivered order", cancel("#W2"), "Non-pending order cannot be cancelled"),
    ("cancel a processed order", cancel("#W4"), "Non-pending order cannot be cancelled"),
    ("cancel after items were modified", cancel("#W3"), "Non-pending order cannot be cancelled"),
    ("cancel for another reason", cancel(reason="found it cheaper"), "Invalid reason"),
    # modify: pending only; nothing more once items were modified
    (
        "new address for a delivered order",
        action("modify_pending_order_address", order_id="#W2", **ADDRESS),
        "Non-pending order cannot be modified",
    ),
    (
        "new address after items were modified",
        action("modify_pending_order_address", order_id="#W3", **ADDRESS),
        "Non-pending order cannot be modified",
    ),
    ("pay after items were modified", pay("#W3"), "Non-pending order cannot be modified"),
    ("pay with the same method", pay(method="credit_card_1"), "different from the current one"),
    (
        "pay with a method not on the account",
        pay(method="credit_card_of_u2"),
        "Payment method not found",
    ),
    (
        "pay with a gift card that does not cover it",
        pay(method="gift_card_1"),
        "Insufficient gift card balance",
    ),
    ("modify items twice", items("#W3"), "Non-pending order cannot be modified"),
    ("modify to another product", items(new=("D",)), "Variant not found"),
    ("modify to an unavailable variant", items(new=("A3",)), "not found or available"),
    ("modify to the same item", items(new=("A",)), "should be different"),
    (
        "modify an item more often than ordered",
        items(old=("A", "A"), new=("A2", "A2")),
        "A not found",
    ),
    ("modify with unmatched lists", items(new=("A2", "B2")), "should match"),
    (
        "modify, gift card short of the difference",
        items(method="gift_card_1"),
        "Insufficient gift card balance",
    ),
    (
        "modify, method not on the account",
        items(method="paypal_of_u2"),
        "Payment method not found",
    ),
    # return: delivered only, refund to the original method or a gift card
    ("return a pending order", ret("#W1"), "Non-delivered order cannot be returned"),
    ("return twice (once exchanged)", ret("#W5"), "Non-delivered order cannot be returned"),
    ("refund to another card", ret(method="credit_card_1"), "original payment method"),
    ("return an item not in the order", ret(old=("B",)), "Some item not found"),
    # exchange: delivered only, same product, available, once
    ("exchange a pending order", exchange("#W1"), "Non-delivered order cannot be exchanged"),
    ("exchange twice", exchange("#W5"), "Non-delivered order cannot be exchanged"),
    ("exchange for another product", exchange(new=("D",)), "Variant not found"),
    ("exchange for an unavailable variant", exchange(new=("A3",)), "not found or available"),
    (
        "exchange, gift card short of the difference",
        exchange(method="gift_card_1"),
        "Insufficient gift card balance",
    ),
    (
        "exchange an item not in the order",
        exchange(old=("B",), new=("B2",)),
        "Number of B not found",
    ),
]


@pytest.mark.parametrize(("act", "decision"), [pytest.param(a, d, id=n) for n, a, d in ALLOWED])
def test_policy_allows(act: Action, decision: str) -> None:
    verdict = check(act, state_for(act))
    assert verdict.decision == decision, verdict.reason


@pytest.mark.parametrize(("act", "reason"), [pytest.param(a, r, id=n) for n, a, r in DENIED])
def test_policy_denies(act: Action, reason: str) -> None:
    verdict = check(act, state_for(act))
    assert verdict.decision == "deny"
    assert reason in verdict.reason


def test_nothing_about_orders_or_profiles_before_identity() -> None:
    for act in (action("get_order_details", order_id="#W1"), cancel(), ret(), exchange()):
        verdict = check(act, state_for(act, customer=None))
        assert verdict.decision == "deny"
        assert "find_user_id_by_email" in verdict.reason
    assert "get_order_details" not in guard.allowed(state_for(cancel(), customer=None))


def test_identity_only_with_what_the_customer_wrote_and_only_once() -> None:
    by_email = action("find_user_id_by_email", email="yusuf@example.com")
    by_name = action("find_user_id_by_name_zip", first_name="Yusuf", last_name="Rossi", zip="19122")
    wrote = "I am Yusuf Rossí, zip 19122, yusuf@example.com"
    assert check(by_email, state_for(by_email, None, said=wrote)).decision == "allow"
    assert check(by_name, state_for(by_name, None, said=wrote)).decision == "allow"
    assert check(by_email, state_for(by_email, None, said="it's yusuf")).decision == "deny"
    wrong_zip = "I am Yusuf Rossi, zip 191220"
    assert check(by_name, state_for(by_name, None, said=wrong_zip)).decision == "deny"
    # One customer per conversation: once proven, no more lookups.
    assert check(by_email, state_for(by_email, "u1", said=wrote)).decision == "deny"
    assert "find_user_id_by_email" not in guard.allowed(state_for(by_email, "u1"))


def test_retail_rules_without_their_facts_are_denied() -> None:
    act = cancel()
    st = state_for(act)
    st.rule_facts = None
    assert check(act, st).decision == "deny"
