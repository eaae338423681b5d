"""Order facts: the few fields the guard decides on, loaded in one query per step."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from db import ItemStatus, Order, OrderStatus


@dataclass(frozen=True)
class LineFacts:
    line: int
    name: str
    status: ItemStatus
    final_sale: bool


@dataclass(frozen=True)
class OrderFacts:
    order_id: str
    customer_id: str
    email: str
    status: OrderStatus
    delivered_at: datetime | None
    lines: dict[int, LineFacts]

    @classmethod
    def of(cls, order: Order) -> OrderFacts:
        return cls(
            order_id=order.id,
            customer_id=order.customer_id,
            email=order.contact_email,
            status=order.status,
            delivered_at=order.delivered_at,
            lines={
                item.position: LineFacts(
                    line=item.position,
                    name=item.name,
                    status=item.status,
                    final_sale=item.final_sale,
                )
                for item in order.items
            },
        )


async def load_order_facts(
    session: AsyncSession, order_ids: Iterable[str]
) -> dict[str, OrderFacts]:
    """Facts for the orders that exist among `order_ids`; unknown ids are simply absent."""
    wanted = set(order_ids)
    if not wanted:
        return {}
    # One round trip: this runs at every step that names an order.
    rows = await session.scalars(
        select(Order)
        .where(Order.id.in_(wanted))
        .options(joinedload(Order.items), joinedload(Order.customer))
    )
    return {order.id: OrderFacts.of(order) for order in rows.unique()}
