"""The retail desk's rules (τ²-bench retail `policy.md`) as pure functions over facts.

Each `*_refusal` returns None when the operation may go ahead, else why not, in the words
τ²-bench's own tools use ("Non-pending order cannot be cancelled"), checked in their order.
The tools call them on the rows they are about to change (the benchmark's semantics); the
guard calls them, through each tool's `*_RULE` (`ToolSpec.rule`), on the facts loaded for the
proposed action, and adds what policy.md asks beyond the benchmark's tools (`strict`): once an
order's items were modified, nothing else about it may be modified.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from db import OrderStatus, PaymentKind, TransactionKind
from tools.retail.facts import MethodFacts, RetailFacts, RetailOrderFacts, VariantFacts

CANCEL_REASONS = frozenset({"no longer needed", "ordered by mistake"})
PENDING = frozenset({OrderStatus.PLACED, OrderStatus.ITEMS_MODIFIED})
"""τ²'s loose "pending" (`"pending" in status`), which its address and payment tools accept."""

Methods = Mapping[str, MethodFacts]
Variants = Mapping[str, VariantFacts]


def cancel_refusal(order: RetailOrderFacts, reason: str, methods: Methods) -> str | None:
    if order.status is not OrderStatus.PLACED:
        return "Non-pending order cannot be cancelled"
    if reason not in CANCEL_REASONS:
        return "Invalid reason"
    if any(p.payment_method_id not in methods for p in order.payments):
        return "Payment method not found"
    return None


def address_refusal(order: RetailOrderFacts, *, strict: bool = False) -> str | None:
    if order.status not in PENDING or (strict and order.status is not OrderStatus.PLACED):
        return "Non-pending order cannot be modified"
    return None


def payment_refusal(
    order: RetailOrderFacts, payment_method_id: str, methods: Methods, *, strict: bool = False
) -> str | None:
    if refused := address_refusal(order, strict=strict):
        return refused
    method = methods.get(payment_method_id)
    if method is None:
        return "Payment method not found"
    if len(order.payments) != 1 or order.payments[0].kind is not TransactionKind.PAYMENT:
        return "There should be exactly one payment for a pending order"
    if order.payments[0].payment_method_id == payment_method_id:
        return "The new payment method should be different from the current one"
    if _short(method, order.payments[0].amount):
        return "Insufficient gift card balance to pay for the order"
    if order.payments[0].payment_method_id not in methods:
        return "Payment method not found"
    return None


def items_refusal(
    order: RetailOrderFacts,
    item_ids: Sequence[str],
    new_item_ids: Sequence[str],
    payment_method_id: str,
    methods: Methods,
    variants: Variants,
) -> str | None:
    if order.status is not OrderStatus.PLACED:
        return "Non-pending order cannot be modified"
    if missing := _missing(order, item_ids):
        return f"{missing} not found"
    if len(item_ids) != len(new_item_ids):
        return "The number of items to be exchanged should match"
    for old, new in zip(item_ids, new_item_ids, strict=True):
        if old == new:
            return "The new item id should be different from the old item id"
        if refused := _variant_refusal(order, old, new, variants):
            return refused
    method = methods.get(payment_method_id)
    if method is None:
        return "Payment method not found"
    if _short(method, price_difference(order, item_ids, new_item_ids, variants)):
        return "Insufficient gift card balance to pay for the new item"
    return None


def return_refusal(
    order: RetailOrderFacts, item_ids: Sequence[str], payment_method_id: str, methods: Methods
) -> str | None:
    if order.status is not OrderStatus.DELIVERED:
        return "Non-delivered order cannot be returned"
    method = methods.get(payment_method_id)
    if method is None:
        return "Payment method not found"
    original = order.payments[0].payment_method_id if order.payments else None
    if method.kind is not PaymentKind.GIFT_CARD and payment_method_id != original:
        return "Payment method should be the original payment method"
    if _missing(order, item_ids):
        return "Some item not found"
    return None


def exchange_refusal(
    order: RetailOrderFacts,
    item_ids: Sequence[str],
    new_item_ids: Sequence[str],
    payment_method_id: str,
    methods: Methods,
    variants: Variants,
) -> str | None:
    if order.status is not OrderStatus.DELIVERED:
        return "Non-delivered order cannot be exchanged"
    if missing := _missing(order, item_ids):
        return f"Number of {missing} not found."
    if len(item_ids) != len(new_item_ids):
        return "The number of items to be exchanged should match."
    for old, new in zip(item_ids, new_item_ids, strict=True):
        if refused := _variant_refusal(order, old, new, variants):
            return refused
    method = methods.get(payment_method_id)
    if method is None:
        return "Payment method not found"
    if _short(method, price_difference(order, item_ids, new_item_ids, variants)):
        return "Insufficient gift card balance to pay for the price difference"
    return None


def price_difference(
    order: RetailOrderFacts,
    item_ids: Sequence[str],
    new_item_ids: Sequence[str],
    variants: Variants,
) -> Decimal:
    """New prices minus old, pair by pair (positive: the customer pays)."""
    total = Decimal(0)
    for old, new in zip(item_ids, new_item_ids, strict=True):
        item = next(i for i in order.items if i.variant_id == old)
        total += variants[new].price - item.price
    return total


OrderCheck = Callable[[RetailOrderFacts, dict[str, Any], RetailFacts], str | None]


def order_rule(check: OrderCheck) -> Callable[[BaseModel, RetailFacts], str | None]:
    """A tool's rule for the guard (`ToolSpec.rule`): `check` of the order its arguments
    name, with the arguments as data and the step's facts; an order not loaded is refused."""

    def rule(args: BaseModel, facts: RetailFacts) -> str | None:
        order = facts.orders.get(str(getattr(args, "order_id", "")))
        if order is None:
            return "Order not found"
        return check(order, args.model_dump(), facts)

    return rule


CANCEL_RULE = order_rule(lambda order, a, f: cancel_refusal(order, a["reason"], f.methods))
ADDRESS_RULE = order_rule(lambda order, _a, _f: address_refusal(order, strict=True))
PAYMENT_RULE = order_rule(
    lambda order, a, f: payment_refusal(order, a["payment_method_id"], f.methods, strict=True)
)
ITEMS_RULE = order_rule(
    lambda order, a, f: items_refusal(
        order, a["item_ids"], a["new_item_ids"], a["payment_method_id"], f.methods, f.variants
    )
)
RETURN_RULE = order_rule(
    lambda order, a, f: return_refusal(order, a["item_ids"], a["payment_method_id"], f.methods)
)
EXCHANGE_RULE = order_rule(
    lambda order, a, f: exchange_refusal(
        order, a["item_ids"], a["new_item_ids"], a["payment_method_id"], f.methods, f.variants
    )
)


def _missing(order: RetailOrderFacts, item_ids: Sequence[str]) -> str | None:
    """An item id named more often than the order holds it, if any."""
    held = Counter(i.variant_id for i in order.items)
    return next((i for i, n in Counter(item_ids).items() if n > held[i]), None)


def _variant_refusal(order: RetailOrderFacts, old: str, new: str, variants: Variants) -> str | None:
    item = next((i for i in order.items if i.variant_id == old), None)
    if item is None:
        return f"Item {old} not found"
    variant = variants.get(new)
    if variant is None or variant.product_id != item.product_id:
        return "Variant not found"
    if not variant.available:
        return f"New item {new} not found or available"
    return None


def _short(method: MethodFacts, amount: Decimal) -> bool:
    """A gift card whose balance does not cover `amount`."""
    return method.kind is PaymentKind.GIFT_CARD and (method.balance or Decimal(0)) < amount
