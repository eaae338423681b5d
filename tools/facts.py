"""Order facts: the few fields the guard decides on, loaded in one query per step."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from db import ItemStatus, Order, OrderStatus, Return, ShippingLabel


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


_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ALL = re.compile(
    r"\b(both|all of them|all of it|everything|all the item|all item|the whole order)\b"
)


def _words(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    # "boots" names the Leather Boots and "boot" does too: compare words without a plural s.
    return [w.removesuffix("s") if len(w) > 3 else w for w in _WORD.findall(plain)]


def named_lines(texts: Iterable[str], order: OrderFacts) -> list[int]:
    """The lines of `order` that the customer's latest message naming any of them names.

    A line is named by its last word ("the jeans"); where lines share it ("Linen Shirt",
    "Oxford Shirt") by the words that tell them apart ("the linen shirt"), and by all of them
    when nothing does. "Both" or "everything" names every line. A misspelt name is not
    matched: the model still reads the customer's words."""
    for text in reversed(list(texts)):
        said = _words(text)
        heard = set(said)
        by_head: dict[str, dict[int, int]] = {}
        for line in order.lines.values():
            name = _words(line.name)
            if name and name[-1] in heard:
                by_head.setdefault(name[-1], {})[line.line] = sum(w in heard for w in name)
        if by_head:
            return sorted(
                n
                for scores in by_head.values()
                for n, score in scores.items()
                if score == max(scores.values())
            )
        if _ALL.search(" ".join(said)):
            return sorted(order.lines)
    return []


async def load_order_facts(
    session: AsyncSession, order_ids: Iterable[str]
) -> dict[str, OrderFacts]:
    """Facts for the orders that exist among `order_ids`; unknown ids are simply absent."""
    return {order.id: OrderFacts.of(order) for order in await load_orders(session, order_ids)}


async def load_orders(session: AsyncSession, order_ids: Iterable[str]) -> list[Order]:
    """The orders among `order_ids` with their lines and customer. While the caller holds
    them they stay in the session, so a tool asking for the same order reads no rows again."""
    wanted = set(order_ids)
    if not wanted:
        return []
    # One round trip: this runs at every step that names an order. Rows the session already
    # holds are refreshed: the guard decides on what the database says now.
    rows = await session.scalars(
        select(Order)
        .where(Order.id.in_(wanted))
        .options(joinedload(Order.items), joinedload(Order.customer))
        .execution_options(populate_existing=True)
    )
    return list(rows.unique())


@dataclass(frozen=True)
class ReturnFacts:
    return_id: int
    customer_id: str
    conversation_id: str | None
    has_label: bool


async def load_return_facts(
    session: AsyncSession, return_ids: Iterable[int]
) -> dict[int, ReturnFacts]:
    wanted = set(return_ids)
    if not wanted:
        return {}
    label_id = ShippingLabel.id.label("label_id")
    rows = await session.execute(
        select(Return.id, Order.customer_id, Return.conversation_id, label_id)
        .join(Order, Order.id == Return.order_id)
        .outerjoin(ShippingLabel, ShippingLabel.return_id == Return.id)
        .where(Return.id.in_(wanted))
    )
    return {
        row.id: ReturnFacts(row.id, row.customer_id, row.conversation_id, row.label_id is not None)
        for row in rows
    }
