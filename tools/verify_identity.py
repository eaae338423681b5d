"""verify_identity: the shop's own check, order number plus the email on that order."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from db import Conversation, Order
from tools.base import Observation, OrderId, ToolContext, tool

Email = Annotated[
    str,
    Field(
        max_length=320,
        pattern=r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$",
        description="The email address exactly as the customer wrote it.",
    ),
]


def emails_match(on_record: str, given: str) -> bool:
    """Equal but for case and surrounding whitespace; never a substring match."""
    return on_record.strip().casefold() == given.strip().casefold()


class IdentityResult(Observation):
    verified: bool
    message: str


MISMATCH = "The order number and email address do not match our records."


@tool(doing="Checking your details…")
async def verify_identity(ctx: ToolContext, order_id: OrderId, email: Email) -> IdentityResult:
    """Verify the customer: the order number and the email address used for that order, both as
    the customer wrote them. On success the customer may see and act on their own orders."""
    order = await ctx.session.get(Order, order_id)
    if order is not None:
        await order.awaitable_attrs.customer  # no query when the guard's facts brought it
    # Unknown order and wrong email read the same, so nobody can probe which orders exist.
    if order is None or not emails_match(order.contact_email, email):
        return IdentityResult(verified=False, message=MISMATCH)
    conversation = await ctx.session.get_one(Conversation, ctx.conversation_id)
    conversation.customer_id = order.customer_id
    conversation.proven_by = "email"
    conversation.proven_order_id = order.id
    return IdentityResult(
        verified=True,
        message=f"Verified: {order.customer.first_name}, owner of order {order.id}.",
    )
