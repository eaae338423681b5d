"""lookup_order: one of the verified customer's orders, in full."""

from __future__ import annotations

from db import Order
from shopbot.errors import ToolRetry
from tools.base import Needs, OrderId, ToolContext, tool, typed_order_numbers
from tools.views import OrderView, order_view


@tool(needs=Needs.OWN_ORDER, doing="Checking your order…", known=typed_order_numbers)
async def lookup_order(ctx: ToolContext, order_id: OrderId) -> OrderView:
    """Show one of the verified customer's orders: status, dates, lines, tracking numbers."""
    order = await ctx.session.get(Order, order_id)
    if order is None or order.customer_id != ctx.customer_id:
        raise ToolRetry(f"No order {order_id} on this customer's account.", code="unknown_order")
    # Loads what the session does not hold yet; the guard's facts query brought the lines.
    await order.awaitable_attrs.items
    await order.awaitable_attrs.fulfillments
    return order_view(order, ctx.settings.policy)
