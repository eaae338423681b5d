"""How orders look to the model: compact, typed, no more than a customer may see.

Dates are the shop's calendar dates (`PolicyConfig.timezone`), the ones the return window is
counted in: "delivered on" and "returnable until" never disagree by a time zone.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from db import Order, OrderItem
from shopbot.config import PolicyConfig
from tools.base import Observation
from tools.eligibility import shop_date


class LineView(Observation):
    line: int
    name: str
    options: dict[str, Any]
    price: Decimal
    status: str
    final_sale: bool


class OrderView(Observation):
    order_id: str
    status: str
    placed_on: date | None
    delivered_on: date | None
    lines: list[LineView]
    tracking: list[str]
    total: Decimal


def line_view(item: OrderItem) -> LineView:
    return LineView(
        line=item.position,
        name=item.name,
        options=item.options,
        price=item.price,
        status=item.status.value,
        final_sale=item.final_sale,
    )


def order_view(order: Order, policy: PolicyConfig) -> OrderView:
    return OrderView(
        order_id=order.id,
        status=order.status.value,
        placed_on=shop_date(order.placed_at, policy) if order.placed_at else None,
        delivered_on=shop_date(order.delivered_at, policy) if order.delivered_at else None,
        lines=[line_view(item) for item in order.items],
        tracking=[t for f in order.fulfillments for t in f.tracking_ids],
        total=sum((item.price for item in order.items), Decimal("0")),
    )
