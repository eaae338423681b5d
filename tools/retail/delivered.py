"""After delivery: return items (refund to the original method or a gift card) or exchange
them for other variants of the same products.

A return is a `Return` row like any other, created in this conversation, so ShopBot's own
flow continues on it: `send_return_label` buys the label and emails it.
"""

from __future__ import annotations

from sqlalchemy import select

from db import (
    Exchange,
    ExchangeItem,
    ItemStatus,
    Order,
    OrderItem,
    OrderStatus,
    Return,
    ReturnItem,
    Variant,
)
from db.tau2 import order_record
from tools.base import Needs, ToolContext, tool
from tools.retail.facts import RetailOrderFacts, VariantFacts, load_retail_facts
from tools.retail.pending import method_facts
from tools.retail.records import (
    ItemIds,
    OrderDetails,
    OrderId,
    PaymentMethodId,
    load_order,
    refused,
)
from tools.retail.rules import (
    EXCHANGE_RULE,
    RETURN_RULE,
    exchange_refusal,
    price_difference,
    return_refusal,
)


class ReturnRequested(OrderDetails):
    return_id: int
    """For `send_return_label`, which emails the prepaid label."""


def lines_for(order: Order, item_ids: list[str]) -> list[OrderItem]:
    """One distinct order line per mention of an item id, first lines first."""
    taken: list[OrderItem] = []
    for item_id in item_ids:
        taken.append(next(i for i in order.items if i.variant_id == item_id and i not in taken))
    return taken


@tool(
    needs=Needs.OWN_ORDER,
    rule=RETURN_RULE,
    facts=load_retail_facts,
    side_effect=True,
    confirm=(
        "Return items {item_ids} of order {order_id}, refunded to {payment_method_id}; "
        "return instructions follow by email"
    ),
)
async def return_delivered_order_items(
    ctx: ToolContext, order_id: OrderId, item_ids: ItemIds, payment_method_id: PaymentMethodId
) -> ReturnRequested:
    """Return items of a delivered order (once per order). The refund goes to the original
    payment method or to one of the customer's gift cards. The order becomes 'return
    requested'; then send_return_label emails the label. Needs the customer's explicit
    confirmation."""
    order = await load_order(ctx.session, order_id)
    why = return_refusal(
        RetailOrderFacts.of(order), item_ids, payment_method_id, method_facts(order)
    )
    if why:
        raise refused(why)
    lines = lines_for(order, sorted(item_ids))  # tau2 keeps return_items sorted
    ret = Return(
        refund_payment_method_id=payment_method_id,
        conversation_id=ctx.conversation_id,
        items=[ReturnItem(position=i, order_item=line) for i, line in enumerate(lines)],
    )
    order.returns.append(ret)
    for line in lines:
        line.status = ItemStatus.RETURN_REQUESTED
    order.status = OrderStatus.RETURN_REQUESTED
    await ctx.session.flush()
    return ReturnRequested(order=order_record(order), return_id=ret.id)


@tool(
    needs=Needs.OWN_ORDER,
    rule=EXCHANGE_RULE,
    facts=load_retail_facts,
    side_effect=True,
    confirm=(
        "Exchange items {item_ids} of order {order_id} for {new_item_ids}, the price "
        "difference paid or refunded with {payment_method_id}"
    ),
)
async def exchange_delivered_order_items(
    ctx: ToolContext,
    order_id: OrderId,
    item_ids: ItemIds,
    new_item_ids: ItemIds,
    payment_method_id: PaymentMethodId,
) -> OrderDetails:
    """Exchange items of a delivered order for available variants of the same products, all
    in one call (once per order). new_item_ids[i] replaces item_ids[i]; the price difference
    is paid or refunded with payment_method_id (a gift card must cover it). Needs the
    customer's explicit confirmation, after they confirmed the list is complete."""
    order = await load_order(ctx.session, order_id)
    rows = await ctx.session.scalars(select(Variant).where(Variant.id.in_(new_item_ids)))
    variants = {v.id: VariantFacts.of(v) for v in rows}
    facts = RetailOrderFacts.of(order)
    why = exchange_refusal(
        facts, item_ids, new_item_ids, payment_method_id, method_facts(order), variants
    )
    if why:
        raise refused(why)
    difference = price_difference(facts, item_ids, new_item_ids, variants)
    lines = lines_for(order, item_ids)
    order.exchanges.append(
        Exchange(
            payment_method_id=payment_method_id,
            price_difference=difference,
            items=[
                ExchangeItem(position=i, order_item=line, new_variant_id=new)
                for i, (line, new) in enumerate(zip(lines, new_item_ids, strict=True))
            ],
        )
    )
    for line in lines:
        line.status = ItemStatus.EXCHANGE_REQUESTED
    order.status = OrderStatus.EXCHANGE_REQUESTED
    await ctx.session.flush()
    return OrderDetails(order=order_record(order))
