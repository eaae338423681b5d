"""Who the customer is: by email, or by name and zip code (τ²-bench's two lookups).

A lookup that finds the user proves the conversation's customer (policy.md: "authenticate
the user identity by locating their user id via email, or via name + zip code"), one that
errors counts a failed check (`Proof`); the guard allows it only before anyone is proven,
and only with what the customer wrote themselves.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import func, select

from db import Address, Conversation, Customer
from tools.base import Observation, Proof, ToolContext, Typed, fold, tool
from tools.retail.records import not_found

Email = Annotated[
    str, Field(min_length=3, max_length=320, description="The email, such as 'a@example.com'.")
]
Name = Annotated[str, Field(min_length=1, max_length=100, description="As the customer said it.")]
Zip = Annotated[str, Field(min_length=1, max_length=20, description="The zip code, '12345'.")]


class UserFound(Observation):
    user_id: str


NOT_LOOKED_UP = (
    "The customer has not been authenticated. Ask for their email (or their name and zip "
    "code), then call find_user_id_by_email (or find_user_id_by_name_zip)."
)


async def _prove(ctx: ToolContext, user_id: str, how: str) -> UserFound:
    conversation = await ctx.session.get(Conversation, ctx.conversation_id)
    if conversation is not None and conversation.customer_id is None:
        conversation.customer_id, conversation.proven_by = user_id, how
    return UserFound(user_id=user_id)


@tool(proves=Proof(typed={"email": Typed.EMAIL}, ask=NOT_LOOKED_UP))
async def find_user_id_by_email(ctx: ToolContext, email: Email) -> UserFound:
    """Find the user id by email, as the customer gave it. This authenticates the customer
    for the conversation. Errors with 'User not found' when no user has that email."""
    wanted = fold(email)
    # lower() narrows in SQL; the fold decides (it also ignores accents, which lower() keeps).
    rows = await ctx.session.execute(
        select(Customer.id, Customer.email)
        .where(func.lower(Customer.email) == email.strip().lower())
        .order_by(Customer.id)
    )
    found = next((cid for cid, mail in rows if fold(mail) == wanted), None)
    if found is None:
        raise not_found("User")
    return await _prove(ctx, found, "email")


@tool(
    proves=Proof(
        typed=dict.fromkeys(("first_name", "last_name", "zip"), Typed.WORDS),
        ask=NOT_LOOKED_UP,
        unwritten="The customer has not written this name and zip code: ask them.",
    )
)
async def find_user_id_by_name_zip(
    ctx: ToolContext, first_name: Name, last_name: Name, zip: Zip
) -> UserFound:
    """Find the user id by first name, last name and zip code, when the customer cannot
    give their email. This authenticates the customer for the conversation. The zip must
    match exactly; names ignore case and accents. Errors with 'User not found'."""
    rows = await ctx.session.execute(
        select(Customer.id, Customer.first_name, Customer.last_name)
        .join(Address, Address.customer_id == Customer.id)
        .where(Address.is_default, Address.zip == zip)
        .order_by(Customer.id)
    )
    wanted = (fold(first_name), fold(last_name))
    found = next((cid for cid, first, last in rows if (fold(first), fold(last)) == wanted), None)
    if found is None:
        raise not_found("User")
    return await _prove(ctx, found, "name_zip")
