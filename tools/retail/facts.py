"""Retail facts: what the retail rules decide on, for the guard (per step) and the tools.

The guard loads them for the action in hand (`load_retail_facts`); a tool builds the same
facts from the rows it has locked in its own transaction, so both judge by one rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db import Order, OrderStatus, PaymentKind, PaymentMethod, TransactionKind, Variant


@dataclass(frozen=True)
class ItemFacts:
    variant_id: str
    product_id: str
    price: Decimal


@dataclass(frozen=True)
class PaymentFacts:
    kind: TransactionKind
    amount: Decimal
    payment_method_id: str


@dataclass(frozen=True)
class RetailOrderFacts:
    order_id: str
    user_id: str
    status: OrderStatus
    items: tuple[ItemFacts, ...]
    payments: tuple[PaymentFacts, ...]

    @classmethod
    def of(cls, order: Order) -> RetailOrderFacts:
        """From an order whose items and transactions are loaded."""
        return cls(
            order_id=order.id,
            user_id=order.customer_id,
            status=order.status,
            items=tuple(ItemFacts(i.variant_id, i.product_id, i.price) for i in order.items),
            payments=tuple(
                PaymentFacts(t.kind, t.amount, t.payment_method_id) for t in order.transactions
            ),
        )


@dataclass(frozen=True)
class MethodFacts:
    id: str
    kind: PaymentKind
    balance: Decimal | None

    @classmethod
    def of(cls, method: PaymentMethod) -> MethodFacts:
        return cls(method.id, method.kind, method.balance)


@dataclass(frozen=True)
class VariantFacts:
    id: str
    product_id: str
    available: bool
    price: Decimal

    @classmethod
    def of(cls, variant: Variant) -> VariantFacts:
        return cls(variant.id, variant.product_id, variant.available, variant.price)


@dataclass(frozen=True)
class RetailFacts:
    """The orders an action names, the customer's payment methods, the variants it names."""

    orders: dict[str, RetailOrderFacts] = field(default_factory=dict[str, RetailOrderFacts])
    methods: dict[str, MethodFacts] = field(default_factory=dict[str, MethodFacts])
    variants: dict[str, VariantFacts] = field(default_factory=dict[str, VariantFacts])


async def load_retail_facts(
    session: AsyncSession, customer_id: str | None, args: BaseModel
) -> RetailFacts:
    """Facts for one action: at most three small queries, none when it names nothing."""
    order_id = getattr(args, "order_id", None)
    new_ids: list[str] = list(getattr(args, "new_item_ids", None) or [])
    orders = await load_retail_orders(session, [order_id] if isinstance(order_id, str) else [])
    methods = await load_methods(session, customer_id) if customer_id is not None else {}
    return RetailFacts(
        orders={o.id: RetailOrderFacts.of(o) for o in orders},
        methods=methods,
        variants=await load_variants(session, new_ids),
    )


async def load_retail_orders(session: AsyncSession, order_ids: Iterable[str]) -> list[Order]:
    wanted = set(order_ids)
    if not wanted:
        return []
    rows = await session.scalars(
        select(Order)
        .where(Order.id.in_(wanted))
        .options(selectinload(Order.items), selectinload(Order.transactions))
    )
    return list(rows)


async def load_methods(session: AsyncSession, customer_id: str) -> dict[str, MethodFacts]:
    rows = await session.scalars(
        select(PaymentMethod).where(PaymentMethod.customer_id == customer_id)
    )
    return {m.id: MethodFacts.of(m) for m in rows}


async def load_variants(
    session: AsyncSession, variant_ids: Iterable[str]
) -> dict[str, VariantFacts]:
    wanted = set(variant_ids)
    if not wanted:
        return {}
    rows = await session.scalars(select(Variant).where(Variant.id.in_(wanted)))
    return {v.id: VariantFacts.of(v) for v in rows}
