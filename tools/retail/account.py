"""The customer's account, and handing over to a human."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from db import Conversation, ConversationStatus
from tools.base import Needs, Observation, ToolContext, tool
from tools.retail.records import Line, UserDetails, UserId, customer_record, load_customer, refused

Summary = Annotated[str, Field(min_length=1, max_length=1000, description="The issue, briefly.")]


class Transferred(Observation):
    message: str


@tool(
    needs=Needs.OWN_USER,
    side_effect=True,
    confirm="Make {address1} {address2}, {city}, {state} {zip}, {country} the default address",
)
async def modify_user_address(
    ctx: ToolContext,
    user_id: UserId,
    address1: Line,
    address2: Line,
    city: Line,
    state: Line,
    country: Line,
    zip: Line,
) -> UserDetails:
    """Change the customer's default address (orders keep theirs). Needs the customer's
    explicit confirmation."""
    customer = await load_customer(ctx.session, user_id)
    address = next((a for a in customer.addresses if a.is_default), None)
    if address is None:
        raise refused("User has no default address")
    address.address1, address.address2, address.city = address1, address2, city
    address.state, address.country, address.zip = state, country, zip
    await ctx.session.flush()
    return UserDetails(user=await customer_record(ctx.session, customer))


@tool()
async def transfer_to_human_agents(ctx: ToolContext, summary: Summary) -> Transferred:
    """Hand the customer over to a human agent, with a summary of their issue: only when they
    ask for a human, or when the request cannot be handled with these tools and policy."""
    conversation = await ctx.session.get(Conversation, ctx.conversation_id)
    if conversation is not None:
        conversation.status = ConversationStatus.ESCALATED
    return Transferred(message="Transfer successful")
