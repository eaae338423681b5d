"""The shop's own records: catalogue, customers, orders and what happens to them after the sale.

The shape covers what a real service desk touches and what the public tau2-bench retail data
holds (see `db.tau2`), so that data set imports without loss. Lists whose order matters in
that data (order items, fulfilments, payments, return and exchange items) keep a `position`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, utcnow


def _values(cls: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in cls]


def enum_column(cls: type[enum.StrEnum], **kw: Any) -> Any:
    """A portable string column for a StrEnum (no native PostgreSQL enum to migrate)."""
    return mapped_column(Enum(cls, native_enum=False, length=32, values_callable=_values), **kw)


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    ITEMS_MODIFIED = "items_modified"  # still placed, items changed once by the customer
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"
    EXCHANGE_REQUESTED = "exchange_requested"
    CANCELLED = "cancelled"


class ItemStatus(enum.StrEnum):
    ACTIVE = "active"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"
    EXCHANGE_REQUESTED = "exchange_requested"
    CANCELLED = "cancelled"


class PaymentKind(enum.StrEnum):
    CREDIT_CARD = "credit_card"
    PAYPAL = "paypal"
    GIFT_CARD = "gift_card"


class TransactionKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    final_sale: Mapped[bool] = mapped_column(default=False)
    """Sold as final sale: never returnable (swimwear, clearance)."""

    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", order_by="Variant.position"
    )


class Variant(Base):
    """A purchasable version of a product (tau2's `item_id`)."""

    __tablename__ = "variants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    options: Mapped[dict[str, Any]]
    price: Mapped[Decimal]
    available: Mapped[bool] = mapped_column(default=True)

    product: Mapped[Product] = relationship(back_populates="variants")


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list[Address]] = relationship(
        back_populates="customer", order_by="Address.id"
    )
    payment_methods: Mapped[list[PaymentMethod]] = relationship(
        back_populates="customer", order_by="PaymentMethod.position"
    )
    orders: Mapped[list[Order]] = relationship(back_populates="customer", order_by="Order.position")

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    is_default: Mapped[bool] = mapped_column(default=True)
    address1: Mapped[str] = mapped_column(String(200))
    address2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(100))
    zip: Mapped[str] = mapped_column(String(20), index=True)
    country: Mapped[str] = mapped_column(String(100))

    customer: Mapped[Customer] = relationship(back_populates="addresses")


class PaymentMethod(Base):
    __tablename__ = "payment_methods"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[PaymentKind] = enum_column(PaymentKind)
    brand: Mapped[str | None] = mapped_column(String(40))
    last_four: Mapped[str | None] = mapped_column(String(4))
    balance: Mapped[Decimal | None]
    """Gift cards only: what is left to spend."""

    customer: Mapped[Customer] = relationship(back_populates="payment_methods")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_placed", "customer_id", "placed_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """The order number the customer sees ("482913", or "#W2611340" in tau2 data)."""
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    position: Mapped[int] = mapped_column(default=0)
    """Order within the customer's order list (tau2 keeps one)."""
    status: Mapped[OrderStatus] = enum_column(OrderStatus)
    placed_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    """When the last parcel arrived: the return window counts from here."""
    email: Mapped[str | None] = mapped_column(String(320))
    """The email the order was placed with; None means the customer's email."""
    # The shipping address is a snapshot taken at checkout, not a link to the address book.
    ship_address1: Mapped[str] = mapped_column(String(200))
    ship_address2: Mapped[str] = mapped_column(String(200), default="")
    ship_city: Mapped[str] = mapped_column(String(100))
    ship_state: Mapped[str] = mapped_column(String(100))
    ship_zip: Mapped[str] = mapped_column(String(20))
    ship_country: Mapped[str] = mapped_column(String(100))

    customer: Mapped[Customer] = relationship(back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.position"
    )
    fulfillments: Mapped[list[Fulfillment]] = relationship(order_by="Fulfillment.position")
    transactions: Mapped[list[Transaction]] = relationship(order_by="Transaction.position")
    returns: Mapped[list[Return]] = relationship(back_populates="order", order_by="Return.id")
    exchanges: Mapped[list[Exchange]] = relationship(order_by="Exchange.id")
    cancellation: Mapped[Cancellation | None] = relationship()

    @property
    def contact_email(self) -> str:
        return self.email or self.customer.email


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (UniqueConstraint("order_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int]
    """The line number on the order, from 1 (the only 1-based `position`)."""
    variant_id: Mapped[str] = mapped_column(ForeignKey("variants.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    name: Mapped[str] = mapped_column(String(200))
    options: Mapped[dict[str, Any]]
    price: Mapped[Decimal]
    final_sale: Mapped[bool] = mapped_column(default=False)
    status: Mapped[ItemStatus] = enum_column(ItemStatus, default=ItemStatus.ACTIVE)

    order: Mapped[Order] = relationship(back_populates="items")


class Fulfillment(Base):
    __tablename__ = "fulfillments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    carrier: Mapped[str | None] = mapped_column(String(60))
    tracking_ids: Mapped[list[str]]
    variant_ids: Mapped[list[str]]
    """The variants in the parcel, as tau2 lists them (duplicates kept)."""
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]


class Transaction(Base):
    """One line of an order's payment history: a payment or a refund."""

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[TransactionKind] = enum_column(TransactionKind)
    amount: Mapped[Decimal]
    payment_method_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime | None]


class Cancellation(Base):
    __tablename__ = "cancellations"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime | None]


class ReturnStatus(enum.StrEnum):
    REQUESTED = "requested"
    LABEL_SENT = "label_sent"
    RECEIVED = "received"
    REFUNDED = "refunded"


def new_return_uid() -> str:
    """A random id for a new return: 32 hex digits (a UUID4)."""
    return uuid.uuid4().hex


class Return(Base):
    __tablename__ = "returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_return_uid)
    """Random and never reused, unlike `id`: ids restart after `shopbot db seed --reset` or a
    restored backup, and every shop has a return 1. The carrier's idempotency key for the
    return's label is derived from it (`tools.carrier.idempotency_key_for_return`)."""
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[ReturnStatus] = enum_column(ReturnStatus, default=ReturnStatus.REQUESTED)
    reason: Mapped[str] = mapped_column(Text, default="")
    refund_payment_method_id: Mapped[str | None] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="returns")
    items: Mapped[list[ReturnItem]] = relationship(order_by="ReturnItem.position")
    label: Mapped[ShippingLabel | None] = relationship(back_populates="return_")


class ReturnItem(Base):
    __tablename__ = "return_items"
    __table_args__ = (UniqueConstraint("order_item_id"),)  # an item goes back at most once

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    order_item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"))

    order_item: Mapped[OrderItem] = relationship()


class Exchange(Base):
    __tablename__ = "exchanges"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    payment_method_id: Mapped[str] = mapped_column(String(64))
    price_difference: Mapped[Decimal]
    """New items minus old items: positive is charged, negative refunded."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    items: Mapped[list[ExchangeItem]] = relationship(order_by="ExchangeItem.position")


class ExchangeItem(Base):
    __tablename__ = "exchange_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    order_item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"))
    new_variant_id: Mapped[str] = mapped_column(ForeignKey("variants.id"))

    order_item: Mapped[OrderItem] = relationship()


class ShippingLabel(Base):
    __tablename__ = "shipping_labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id"), unique=True)
    carrier: Mapped[str] = mapped_column(String(60))
    carrier_label_id: Mapped[str] = mapped_column(String(100))
    tracking_number: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    pdf: Mapped[bytes | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    return_: Mapped[Return] = relationship(back_populates="label")
