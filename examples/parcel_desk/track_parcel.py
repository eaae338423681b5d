"""track_parcel: where the parcels of one of the verified customer's orders are.

It reads the shop's own records (the order's status and its fulfillments: carrier, tracking
numbers, shipped and delivered dates); the carrier's API makes return labels only, so the
shop's records are the tracking there is.
"""

from __future__ import annotations

from datetime import date

from db import Order
from shopbot.errors import ToolRetry
from tools.base import Needs, Observation, OrderId, ToolContext, tool, typed_order_numbers
from tools.eligibility import shop_date


class Parcel(Observation):
    carrier: str | None
    tracking: list[str]
    items: list[str]
    """The names of the order lines in it."""
    shipped_on: date | None
    delivered_on: date | None


class ParcelTracking(Observation):
    order_id: str
    status: str
    """The order's status: placed, shipped, delivered, cancelled..."""
    parcels: list[Parcel]
    """Nothing shipped yet: none."""


@tool(needs=Needs.OWN_ORDER, doing="Tracking your parcel…", known=typed_order_numbers)
async def track_parcel(ctx: ToolContext, order_id: OrderId) -> ParcelTracking:
    """Where the parcels of one of the verified customer's orders are: carrier, tracking
    numbers, when each shipped and arrived."""
    order = await ctx.session.get(Order, order_id)
    if order is None or order.customer_id != ctx.customer_id:
        raise ToolRetry(f"No order {order_id} on this customer's account.", code="unknown_order")
    items = await order.awaitable_attrs.items
    names = {item.variant_id: item.name for item in items}
    policy = ctx.settings.policy
    parcels = [
        Parcel(
            carrier=sent.carrier,
            tracking=list(sent.tracking_ids),
            items=list(dict.fromkeys(names[v] for v in sent.variant_ids if v in names)),
            shipped_on=shop_date(sent.shipped_at, policy) if sent.shipped_at else None,
            delivered_on=shop_date(sent.delivered_at, policy) if sent.delivered_at else None,
        )
        for sent in await order.awaitable_attrs.fulfillments
    ]
    return ParcelTracking(order_id=order.id, status=order.status.value, parcels=parcels)
