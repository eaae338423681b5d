"""verify_identity: the shop's own check, order number plus the email on that order.

The returns desk's identity check (`Proof`): only with an order number and an email the
customer wrote, which is also all a backend offers the model for them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from db import Conversation, Order
from tools.base import Observation, OrderId, Proof, StateView, ToolContext, Typed, tool

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
NOT_VERIFIED = (
    "The customer has not verified their identity. Ask for the order number and the email "
    "address used for that order, then call verify_identity."
)


def typed_details(state: StateView) -> dict[str, list[str]]:
    """The order numbers and emails the customer wrote: the only values the guard allows."""
    return {"order_id": state.mentioned_order_ids, "email": state.mentioned_emails}


def next_step(state: StateView) -> str | None:
    """Before the customer is verified: check what they wrote, or ask for what is missing."""
    if state.proven:
        return None
    orders, emails = state.mentioned_order_ids, state.mentioned_emails
    if orders and emails and state.failed_verifications == 0:
        return (
            f'call verify_identity with order_id "{orders[-1]}" and email "{emails[-1]}" '
            "before anything about the order."
        )
    if orders and not emails:
        return "ask for the email address used for the order before looking it up."
    return None


@tool(
    doing="Checking your details…",
    proves=Proof(
        typed={"order_id": Typed.ORDER_NUMBER, "email": Typed.EMAIL},
        ask=NOT_VERIFIED,
        succeeded="verified",
    ),
    known=typed_details,
    hint=next_step,
)
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
