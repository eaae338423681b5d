"""What the retail tools share: argument types, loading whole records, the observations.

The arguments keep τ²-bench's names and formats (order ids carry their '#'), so the
benchmark's ground-truth actions are ShopBot actions as they stand. Observations are the
records as τ²'s tools return them (`db.tau2` shapes: amounts in dollars, lists in order).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db import Customer, Order
from db.tau2 import ORDER_RECORD_LOADS, user_record
from shopbot.errors import ToolRetry
from tools.base import Observation

OrderId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="The order id, such as '#W0000000' (with the '#' at the beginning).",
    ),
]
UserId = Annotated[
    str, Field(min_length=1, max_length=64, description="The user id, such as 'sara_doe_496'.")
]
ItemId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="An item id, such as '1008292230' (not a product id).",
    ),
]
ItemIds = Annotated[
    list[ItemId],
    Field(
        min_length=1,
        max_length=50,
        description="Item ids, each such as '1008292230'; an id may repeat.",
    ),
]
PaymentMethodId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="A payment method id of the user, such as 'gift_card_0000000'.",
    ),
]
Line = Annotated[str, Field(max_length=200)]


class OrderDetails(Observation):
    order: dict[str, Any]


class UserDetails(Observation):
    user: dict[str, Any]


def not_found(what: str) -> ToolRetry:
    return ToolRetry(f"{what} not found", code="not_found")


def refused(why: str) -> ToolRetry:
    return ToolRetry(why, code="refused")


async def load_order(session: AsyncSession, order_id: str) -> Order:
    """The whole order, as `db.tau2.order_record` reads it; `ToolRetry` when unknown."""
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(
            *ORDER_RECORD_LOADS,
            selectinload(Order.customer).selectinload(Customer.payment_methods),
        )
    )
    if order is None:
        raise not_found("Order")
    return order


async def load_customer(session: AsyncSession, user_id: str) -> Customer:
    customer = await session.scalar(
        select(Customer)
        .where(Customer.id == user_id)
        .options(selectinload(Customer.addresses), selectinload(Customer.payment_methods))
    )
    if customer is None:
        raise not_found("User")
    return customer


async def customer_record(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    order_ids = await session.scalars(
        select(Order.id).where(Order.customer_id == customer.id).order_by(Order.position, Order.id)
    )
    return user_record(customer, list(order_ids))
