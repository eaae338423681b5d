"""The demo shop: loading `fixtures/shop/*.yaml` into the database, and clearing it again.

The fixture files say when things happened in whole days before the seed day
(`placed_days_ago: 12`); the loader turns them into datetimes (stored in UTC) at noon of that
day in the shop's time zone, so the same orders are inside a return window, which is counted
in the shop's calendar days, whenever and wherever the shop is seeded.

The functions take a synchronous `Session` and flush but never commit: the caller owns the
transaction. From async code: `await session.run_sync(load_demo_shop)`.

Order item positions are the 1-based line numbers customers and the fixtures use; the other
`position` columns are 0-based list indices.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.base import Base, utcnow
from db.conversations import Confirmation, ConfirmationStatus, Conversation, OutboxEmail
from db.shop import (
    Address,
    Cancellation,
    Customer,
    Exchange,
    ExchangeItem,
    Fulfillment,
    ItemStatus,
    Order,
    OrderItem,
    OrderStatus,
    PaymentKind,
    PaymentMethod,
    Product,
    Return,
    ReturnItem,
    ReturnStatus,
    ShippingLabel,
    Transaction,
    TransactionKind,
    Variant,
)

__all__ = [
    "FIXTURES",
    "SHOP_TABLES",
    "SeedSummary",
    "ShopNotEmptyError",
    "clear_shop",
    "is_seeded",
    "load_demo_shop",
]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shop"
SEED_TIME = time(12, 0)
"""Every seeded event happened at noon of its day, in the shop's time zone."""

SHOP_TABLES: tuple[type[Base], ...] = (
    ShippingLabel, ReturnItem, Return, ExchangeItem, Exchange, Cancellation, Transaction,
    Fulfillment, OrderItem, Order, PaymentMethod, Address, Customer, Variant, Product,
)  # fmt: skip
"""Every shop model, children before parents: the order in which deleting them is safe."""

Record = dict[str, Any]
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~10x faster


class ShopNotEmptyError(RuntimeError):
    """The shop tables already hold data; `clear_shop` them first."""


@dataclass(frozen=True)
class SeedSummary:
    """Rows written per shop table."""

    products: int = 0
    variants: int = 0
    customers: int = 0
    addresses: int = 0
    payment_methods: int = 0
    orders: int = 0
    order_items: int = 0
    fulfillments: int = 0
    transactions: int = 0
    cancellations: int = 0
    returns: int = 0
    return_items: int = 0
    exchanges: int = 0
    exchange_items: int = 0

    @property
    def total(self) -> int:
        return sum(vars(self).values())


def is_seeded(session: Session) -> bool:
    """Whether the shop tables hold anything (seeded or imported)."""
    return any(
        session.scalar(select(model.id).limit(1)) is not None
        for model in (Product, Customer, Order)
    )


def clear_shop(session: Session) -> None:
    """Delete every shop row (for `seed --reset`).

    ShopBot's own records (conversations, messages, audit log, outbox) stay, and every link
    into the shop goes with the shop, so nothing is left pointing at a row that is gone or,
    once ids restart, at another customer's row: a conversation that had proven a customer's
    identity is unproven as a whole (customer, how and with which order) and has to prove it
    again, and the confirmations still open in it expire (they name orders and returns of
    the old shop). The carrier's labels are the caller's to clear (`shopbot db seed --reset`
    clears the embedded sandbox's).
    """
    session.execute(
        update(OutboxEmail).where(OutboxEmail.return_id.is_not(None)).values(return_id=None)
    )
    proven = (
        Conversation.customer_id.is_not(None)
        | Conversation.proven_by.is_not(None)
        | Conversation.proven_order_id.is_not(None)
    )
    session.execute(
        update(Conversation)
        .where(proven)
        .values(customer_id=None, proven_by=None, proven_order_id=None)
    )
    open_statuses = (ConfirmationStatus.PENDING, ConfirmationStatus.APPROVED)
    session.execute(
        update(Confirmation)
        .where(Confirmation.status.in_(open_statuses))
        .values(status=ConfirmationStatus.EXPIRED, decided_at=utcnow())
    )
    for model in SHOP_TABLES:
        session.execute(delete(model))
    session.expire_all()  # objects loaded earlier stand for rows that are gone


def load_demo_shop(
    session: Session,
    *,
    today: date | None = None,
    fixtures: Path = FIXTURES,
    zone: tzinfo = UTC,
) -> SeedSummary:
    """Load the demo shop as it stands on `today` (default: today in `zone`, the shop's time
    zone; `shopbot db seed` passes `PolicyConfig.zone`); flushes only."""
    if is_seeded(session):
        raise ShopNotEmptyError("the shop already holds data: clear_shop() first")
    clock = _Clock(today or datetime.now(zone).date(), zone)
    products, customers, orders = (
        _read(fixtures / name) for name in ("products.yaml", "customers.yaml", "orders.yaml")
    )
    product_of = {v["id"]: p["id"] for p in products for v in p["variants"]}
    written: Counter[str] = Counter()
    # One flush per layer: order items point at variants without a relationship, so the
    # unit of work alone would not know to insert the variants first.
    for rows in (
        [_product(p) for p in products],
        [_customer(c, clock) for c in customers],
        _orders(orders, clock, product_of),
    ):
        session.add_all(rows)
        written.update(type(row).__tablename__ for row in session.new)  # cascaded children too
        session.flush()
    return SeedSummary(**written)


def _read(path: Path) -> list[Record]:
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)


@dataclass(frozen=True)
class _Clock:
    """Day offsets in the fixtures -> aware UTC datetimes, counted back from `today`."""

    today: date
    zone: tzinfo = UTC

    def at(self, days_ago: int) -> datetime:
        day = self.today - timedelta(days=days_ago)
        return datetime.combine(day, SEED_TIME, tzinfo=self.zone).astimezone(UTC)

    def maybe(self, days_ago: int | None) -> datetime | None:
        return None if days_ago is None else self.at(days_ago)


def _money(value: float) -> Decimal:
    # YAML reads 59.90 as the float 59.9, whose shortest repr is the decimal that was written.
    amount = Decimal(str(value))
    cents = amount.quantize(Decimal("0.01"))
    if amount != cents:
        raise ValueError(f"not a whole number of cents: {value!r}")
    return cents


def _product(p: Record) -> Product:
    return Product(
        id=p["id"],
        name=p["name"],
        category=p["category"],
        final_sale=p["final_sale"],
        variants=[
            Variant(
                id=v["id"],
                position=i,
                options=v["options"],
                price=_money(v["price"]),
                available=v["available"],
            )
            for i, v in enumerate(p["variants"])
        ],
    )


def _customer(c: Record, clock: _Clock) -> Customer:
    return Customer(
        id=c["id"],
        first_name=c["first_name"],
        last_name=c["last_name"],
        email=c["email"],
        created_at=clock.at(c["created_days_ago"]),
        addresses=[Address(is_default=a["default"], **_address(a)) for a in c["addresses"]],
        payment_methods=[
            PaymentMethod(
                id=m["id"],
                position=i,
                kind=PaymentKind(m["kind"]),
                brand=m.get("brand"),
                last_four=m.get("last_four"),
                balance=None if m.get("balance") is None else _money(m["balance"]),
            )
            for i, m in enumerate(c["payment_methods"])
        ],
    )


def _address(a: Record) -> Record:
    keys = ("address1", "address2", "city", "state", "zip", "country")
    return {k: a[k] for k in keys}


def _orders(records: list[Record], clock: _Clock, product_of: dict[str, str]) -> list[Order]:
    # The file lists orders oldest first, which is also each customer's order list.
    positions: Counter[str] = Counter()
    orders: list[Order] = []
    for o in records:
        orders.append(_order(o, clock, product_of, position=positions[o["customer"]]))
        positions[o["customer"]] += 1
    return orders


def _order(o: Record, clock: _Clock, product_of: dict[str, str], *, position: int) -> Order:
    items = [
        OrderItem(
            position=n,
            variant_id=line["variant"],
            product_id=product_of[line["variant"]],
            name=line["name"],
            options=line["options"],
            price=_money(line["price"]),
            final_sale=line.get("final_sale", False),
            status=ItemStatus(line.get("status", "active")),
        )
        for n, line in enumerate(o["items"], 1)
    ]
    order = Order(
        id=o["id"],
        customer_id=o["customer"],
        position=position,
        status=OrderStatus(o["status"]),
        placed_at=clock.at(o["placed_days_ago"]),
        delivered_at=clock.maybe(o["delivered_days_ago"]),
        items=items,
        **{f"ship_{k}": v for k, v in _address(o["ship_to"]).items()},
    )
    order.fulfillments = [
        Fulfillment(
            position=i,
            carrier=f["carrier"],
            tracking_ids=f["tracking_ids"],
            variant_ids=[items[n - 1].variant_id for n in f["lines"]],
            shipped_at=clock.at(f["shipped_days_ago"]),
            delivered_at=clock.maybe(f["delivered_days_ago"]),
        )
        for i, f in enumerate(o.get("fulfillments", []))
    ]
    order.transactions = [
        Transaction(
            position=i,
            kind=TransactionKind(t["kind"]),
            amount=_money(t["amount"]),
            payment_method_id=t["payment_method"],
            created_at=clock.at(t["days_ago"]),
        )
        for i, t in enumerate(o["transactions"])
    ]
    if (c := o.get("cancellation")) is not None:
        order.cancellation = Cancellation(reason=c["reason"], created_at=clock.at(c["days_ago"]))
    order.returns = [
        Return(
            status=ReturnStatus(r["status"]),
            reason=r["reason"],
            refund_payment_method_id=r["refund_payment_method"],
            created_at=clock.at(r["days_ago"]),
            items=[
                ReturnItem(position=i, order_item=items[n - 1]) for i, n in enumerate(r["lines"])
            ],
        )
        for r in o.get("returns", [])
    ]
    order.exchanges = [
        Exchange(
            payment_method_id=e["payment_method"],
            price_difference=_money(e["price_difference"]),
            created_at=clock.at(e["days_ago"]),
            items=[
                ExchangeItem(
                    position=i, order_item=items[x["line"] - 1], new_variant_id=x["new_variant"]
                )
                for i, x in enumerate(e["items"])
            ],
        )
        for e in o.get("exchanges", [])
    ]
    return order
