"""list_orders: the verified customer's orders, newest first."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from db import Order
from tools.base import Needs, Observation, ToolContext, tool
from tools.eligibility import shop_date


class OrderSummary(Observation):
    order_id: str
    status: str
    placed_on: date | None
    items: list[str]


class OrderList(Observation):
    orders: list[OrderSummary]


@tool(needs=Needs.PROVEN, doing="Looking up your orders…")
async def list_orders(ctx: ToolContext) -> OrderList:
    """List the verified customer's orders (number, status, date, item names), newest first."""
    orders = await ctx.session.scalars(
        select(Order)
        .where(Order.customer_id == ctx.customer_id)
        .order_by(Order.placed_at.desc(), Order.id)
        .options(selectinload(Order.items))
        .limit(20)
    )
    return OrderList(
        orders=[
            OrderSummary(
                order_id=o.id,
                status=o.status.value,
                placed_on=shop_date(o.placed_at, ctx.settings.policy) if o.placed_at else None,
                items=[item.name for item in o.items],
            )
            for o in orders
        ]
    )
