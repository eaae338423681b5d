"""Changing a pending order: cancel it, or modify its address, payment method or items.

τ²-bench's semantics: a cancellation refunds every payment to its method (gift cards at
once); a new payment method pays the whole amount and refunds the old one; modified items
each take their own new variant's price and options, the difference is paid or refunded
with the method the customer names, and the order becomes "pending (item modified)".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field
from sqlalchemy import select

from db import (
    Cancellation,
    ItemStatus,
    Order,
    OrderStatus,
    PaymentKind,
    PaymentMethod,
    Transaction,
    TransactionKind,
    Variant,
)
from db.tau2 import order_record
from tools.base import Needs, ToolContext, tool
from tools.retail.facts import MethodFacts, RetailOrderFacts, VariantFacts, load_retail_facts
from tools.retail.records import (
    ItemIds,
    Line,
    OrderDetails,
    OrderId,
    PaymentMethodId,
    load_order,
    refused,
)
from tools.retail.rules import (
    ADDRESS_RULE,
    CANCEL_RULE,
    ITEMS_RULE,
    PAYMENT_RULE,
    address_refusal,
    cancel_refusal,
    items_refusal,
    payment_refusal,
    price_difference,
)

Reason = Annotated[
    str, Field(max_length=100, description="'no longer needed' or 'ordered by mistake'.")
]


def methods_of(order: Order) -> dict[str, PaymentMethod]:
    return {m.id: m for m in order.customer.payment_methods}


def method_facts(order: Order) -> dict[str, MethodFacts]:
    return {m.id: MethodFacts.of(m) for m in order.customer.payment_methods}


def record_transaction(
    order: Order, kind: TransactionKind, amount: Decimal, method: PaymentMethod
) -> None:
    """Append to the payment history; a gift card's balance moves at once."""
    order.transactions.append(
        Transaction(
            position=len(order.transactions), kind=kind, amount=amount, payment_method_id=method.id
        )
    )
    if method.kind is PaymentKind.GIFT_CARD and method.balance is not None:
        method.balance += amount if kind is TransactionKind.REFUND else -amount


@tool(
    needs=Needs.OWN_ORDER,
    rule=CANCEL_RULE,
    facts=load_retail_facts,
    side_effect=True,
    confirm="Cancel order {order_id} (reason: {reason}); every payment is refunded",
)
async def cancel_pending_order(ctx: ToolContext, order_id: OrderId, reason: Reason) -> OrderDetails:
    """Cancel a pending order, for 'no longer needed' or 'ordered by mistake' only. Every
    payment is refunded: to a gift card at once, otherwise in 5-7 business days. Needs the
    customer's explicit confirmation."""
    order = await load_order(ctx.session, order_id)
    if why := cancel_refusal(RetailOrderFacts.of(order), reason, method_facts(order)):
        raise refused(why)
    methods = methods_of(order)
    for payment in list(order.transactions):
        # tau2 refunds every line of the history as it stands, the same amount to the same method.
        method = methods[payment.payment_method_id]
        record_transaction(order, TransactionKind.REFUND, payment.amount, method)
    order.status = OrderStatus.CANCELLED
    for item in order.items:
        item.status = ItemStatus.CANCELLED
    order.cancellation = Cancellation(reason=reason)
    await ctx.session.flush()
    return OrderDetails(order=order_record(order))


@tool(
    needs=Needs.OWN_ORDER,
    rule=ADDRESS_RULE,
    facts=load_retail_facts,
    side_effect=True,
    confirm=("Ship order {order_id} to {address1} {address2}, {city}, {state} {zip}, {country}"),
)
async def modify_pending_order_address(
    ctx: ToolContext,
    order_id: OrderId,
    address1: Line,
    address2: Line,
    city: Line,
    state: Line,
    country: Line,
    zip: Line,
) -> OrderDetails:
    """Change the shipping address of a pending order. Needs the customer's explicit
    confirmation."""
    order = await load_order(ctx.session, order_id)
    if why := address_refusal(RetailOrderFacts.of(order)):
        raise refused(why)
    order.ship_address1, order.ship_address2, order.ship_city = address1, address2, city
    order.ship_state, order.ship_country, order.ship_zip = state, country, zip
    await ctx.session.flush()
    return OrderDetails(order=order_record(order))


@tool(
    needs=Needs.OWN_ORDER,
    rule=PAYMENT_RULE,
    facts=load_retail_facts,
    side_effect=True,
    confirm="Pay order {order_id} with {payment_method_id} instead; the old payment is refunded",
)
async def modify_pending_order_payment(
    ctx: ToolContext, order_id: OrderId, payment_method_id: PaymentMethodId
) -> OrderDetails:
    """Pay a pending order with another of the customer's payment methods (one method; a
    gift card must cover the total). The original payment is refunded: to a gift card at
    once, otherwise in 5-7 business days. Needs the customer's explicit confirmation."""
    order = await load_order(ctx.session, order_id)
    facts = RetailOrderFacts.of(order)
    if why := payment_refusal(facts, payment_method_id, method_facts(order)):
        raise refused(why)
    methods = methods_of(order)
    old = order.transactions[0]
    record_transaction(order, TransactionKind.PAYMENT, old.amount, methods[payment_method_id])
    record_transaction(order, TransactionKind.REFUND, old.amount, methods[old.payment_method_id])
    await ctx.session.flush()
    return OrderDetails(order=order_record(order))


@tool(
    needs=Needs.OWN_ORDER,
    rule=ITEMS_RULE,
    facts=load_retail_facts,
    side_effect=True,
    confirm=(
        "Change items {item_ids} of order {order_id} to {new_item_ids}, the price difference "
        "paid or refunded with {payment_method_id}; the order's items cannot be changed again"
    ),
)
async def modify_pending_order_items(
    ctx: ToolContext,
    order_id: OrderId,
    item_ids: ItemIds,
    new_item_ids: ItemIds,
    payment_method_id: PaymentMethodId,
) -> OrderDetails:
    """Change items of a pending order to other available variants of the same products,
    all in one call (it can be done once per order). new_item_ids[i] replaces item_ids[i];
    the price difference is paid or refunded with payment_method_id (a gift card must cover
    it). Needs the customer's explicit confirmation, after they confirmed the list is
    complete."""
    order = await load_order(ctx.session, order_id)
    variants = {
        v.id: v
        for v in await ctx.session.scalars(select(Variant).where(Variant.id.in_(new_item_ids)))
    }
    facts = RetailOrderFacts.of(order)
    variant_facts = {k: VariantFacts.of(v) for k, v in variants.items()}
    why = items_refusal(
        facts, item_ids, new_item_ids, payment_method_id, method_facts(order), variant_facts
    )
    if why:
        raise refused(why)
    difference = price_difference(facts, item_ids, new_item_ids, variant_facts)
    kind = TransactionKind.PAYMENT if difference > 0 else TransactionKind.REFUND
    record_transaction(order, kind, abs(difference), methods_of(order)[payment_method_id])
    for old, new in zip(item_ids, new_item_ids, strict=True):
        # As tau2 does: the first line still holding `old` takes the new variant, each its own.
        item = next(i for i in order.items if i.variant_id == old)
        item.variant_id, item.price = new, variants[new].price
        item.options = dict(variants[new].options)
    order.status = OrderStatus.ITEMS_MODIFIED
    await ctx.session.flush()
    return OrderDetails(order=order_record(order))
