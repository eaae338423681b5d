"""create_return: record a return of some lines of a delivered order (a side effect)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy.orm import selectinload

from db import ItemStatus, Order, OrderStatus, Return, ReturnItem
from shopbot.errors import ToolRetry
from tools.base import Lines, Needs, Observation, OrderId, ToolContext, tool, typed_order_numbers

Reason = Annotated[
    str, Field(min_length=1, max_length=500, description="Why, in the customer's words.")
]


class ReturnCreated(Observation):
    return_id: int
    order_id: str
    lines: list[int]
    items: list[str]


@tool(
    needs=Needs.OWN_ORDER | Needs.RETURNABLE_LINES,
    side_effect=True,
    staff=True,
    confirm=(
        "Return {items} from order {order_id} (reason: {reason}); a prepaid Parcelo "
        "label will be emailed to the address on the order"
    ),
    doing="Registering your return…",
    known=typed_order_numbers,
)
async def create_return(
    ctx: ToolContext, order_id: OrderId, lines: Lines, reason: Reason
) -> ReturnCreated:
    """Create a return for lines of the customer's delivered order. Needs the customer's
    confirmation of exactly these lines; check eligibility first. Then call
    send_return_label with the return id."""
    order = await ctx.session.get(Order, order_id, options=[selectinload(Order.items)])
    if order is None or order.customer_id != ctx.customer_id:
        raise ToolRetry(f"No order {order_id} on this customer's account.", code="unknown_order")
    by_line = {item.position: item for item in order.items}
    items = [by_line[n] for n in sorted(set(lines))]
    ret = Return(order_id=order.id, reason=reason, conversation_id=ctx.conversation_id)
    ctx.session.add(ret)
    for position, item in enumerate(items):
        # The guard checked eligibility; the status flip here is what stops a second return.
        item.status = ItemStatus.RETURN_REQUESTED
        ret.items.append(ReturnItem(position=position, order_item_id=item.id))
    order.status = OrderStatus.RETURN_REQUESTED
    await ctx.session.flush()
    return ReturnCreated(
        return_id=ret.id,
        order_id=order.id,
        lines=[item.position for item in items],
        items=[item.name for item in items],
    )
