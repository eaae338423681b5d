"""The demo shop: its fixture files, the loader, and the story records replay tests rely on."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from db.conversations import Confirmation, ConfirmationStatus, Conversation, OutboxEmail
from db.seed import (
    FIXTURES,
    SHOP_TABLES,
    SeedSummary,
    ShopNotEmptyError,
    clear_shop,
    is_seeded,
    load_demo_shop,
)
from db.shop import (
    Customer,
    ItemStatus,
    Order,
    OrderStatus,
    PaymentKind,
    Product,
    Return,
    ReturnStatus,
    TransactionKind,
)
from db.tau2 import ORDER_RECORD_LOADS

TODAY = date(2026, 11, 21)
SHIPPED = {
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.RETURN_REQUESTED,
    OrderStatus.RETURNED,
    OrderStatus.EXCHANGE_REQUESTED,
}
STORY_CUSTOMERS = {"cust_jane", "cust_jane2", "cust_tom"}


@pytest.fixture(scope="module")
def seeded(engine: Engine) -> Iterator[tuple[Session, SeedSummary]]:
    """The demo shop seeded once per backend, read by many tests, rolled back at the end."""
    with Session(engine) as session:
        summary = load_demo_shop(session, today=TODAY)
        yield session, summary
        session.rollback()


@pytest.fixture(scope="module")
def orders(seeded: tuple[Session, SeedSummary]) -> dict[str, Order]:
    session, _ = seeded
    query = select(Order).options(selectinload(Order.customer), *ORDER_RECORD_LOADS)
    return {o.id: o for o in session.scalars(query)}


@pytest.fixture
def scratch(seeded: tuple[Session, SeedSummary]) -> Iterator[Session]:
    """The seeded session for a test that changes it; the changes are rolled back after."""
    session, _ = seeded
    savepoint = session.begin_nested()
    yield session
    savepoint.rollback()


def days_ago(when: datetime | None) -> int | None:
    if when is None:
        return None
    assert when.tzinfo is not None
    assert when.utcoffset() == timedelta(0)
    assert when.time() == datetime(2000, 1, 1, 12).time()  # noon UTC, as the loader promises
    return (TODAY - when.date()).days


# --- the loader --------------------------------------------------------------------------


def test_summary_counts_every_row(seeded: tuple[Session, SeedSummary]) -> None:
    session, summary = seeded
    in_db = {
        m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in SHOP_TABLES
    }
    assert in_db.pop("shipping_labels") == 0
    assert vars(summary) == in_db
    assert 30 <= summary.products <= 40
    assert summary.customers >= 50
    assert summary.orders >= 200


def test_refuses_to_seed_twice(seeded: tuple[Session, SeedSummary]) -> None:
    session, _ = seeded
    assert is_seeded(session)
    with pytest.raises(ShopNotEmptyError):
        load_demo_shop(session, today=TODAY)


# --- the data ----------------------------------------------------------------------------


def test_every_status_and_delivered_most_common(orders: dict[str, Order]) -> None:
    statuses = Counter(o.status for o in orders.values())
    assert set(statuses) == set(OrderStatus)
    assert statuses.most_common(1)[0][0] is OrderStatus.DELIVERED


def test_orders_spread_over_the_last_120_days(orders: dict[str, Order]) -> None:
    ages = [days_ago(o.placed_at) for o in orders.values()]
    assert all(age is not None and 0 <= age <= 120 for age in ages)
    by_month = Counter(age // 30 for age in ages if age is not None and age < 120)
    assert sorted(by_month) == [0, 1, 2, 3]
    assert min(by_month.values()) >= 20


def test_ids(orders: dict[str, Order], seeded: tuple[Session, SeedSummary]) -> None:
    session, _ = seeded
    assert all(len(i) == 6 and i.isdigit() for i in orders)
    customers = session.scalars(select(Customer.id)).all()
    others = set(customers) - STORY_CUSTOMERS
    assert all(c.startswith("cust_") and c[5:].isdigit() for c in others)
    story_orders = {o.id for o in orders.values() if o.customer_id in STORY_CUSTOMERS}
    assert story_orders == set(STORY)


def test_orders_are_consistent(orders: dict[str, Order]) -> None:
    for o in orders.values():
        assert [i.position for i in o.items] == list(range(1, len(o.items) + 1))
        assert (o.delivered_at is not None) == (o.status in SHIPPED - {OrderStatus.SHIPPED})
        assert bool(o.fulfillments) == (o.status in SHIPPED), o.id
        for f in o.fulfillments:
            assert f.carrier
            assert f.tracking_ids
            assert f.shipped_at is not None
            assert set(f.variant_ids) <= {i.variant_id for i in o.items}
        payments = [t for t in o.transactions if t.kind is TransactionKind.PAYMENT]
        refunds = sum(
            (t.amount for t in o.transactions if t.kind is TransactionKind.REFUND), Decimal()
        )
        assert o.transactions[0].kind is TransactionKind.PAYMENT
        if o.status is not OrderStatus.ITEMS_MODIFIED:
            assert len(payments) == 1
            assert payments[0].amount == sum((i.price for i in o.items), Decimal()), o.id
        if o.status is OrderStatus.CANCELLED:
            assert o.cancellation is not None
            assert o.cancellation.reason
            assert refunds == payments[0].amount
            assert {i.status for i in o.items} == {ItemStatus.CANCELLED}
        returned = [i for i in o.items if i.status is ItemStatus.RETURNED]
        if o.status not in (OrderStatus.CANCELLED, OrderStatus.ITEMS_MODIFIED):
            assert refunds == sum((i.price for i in returned), Decimal()), o.id
        if o.status is OrderStatus.RETURNED:
            assert len(returned) == len(o.items)
        in_returns = {ri.order_item_id for r in o.returns for ri in r.items}
        assert {i.id for i in returned} <= in_returns
        for r in o.returns:
            assert r.status in (ReturnStatus.REFUNDED, ReturnStatus.REQUESTED)
            assert o.delivered_at is not None
            assert r.created_at >= o.delivered_at


def test_multi_item_orders(orders: dict[str, Order]) -> None:
    sizes = Counter(len(o.items) for o in orders.values())
    assert sum(n for size, n in sizes.items() if size > 1) >= 50


def test_final_sale(orders: dict[str, Order], seeded: tuple[Session, SeedSummary]) -> None:
    session, _ = seeded
    products = {p.id: p for p in session.scalars(select(Product))}
    final = {p.category for p in products.values() if p.final_sale}
    assert final == {"swimwear", "clearance"}
    items = [i for o in orders.values() for i in o.items]
    assert all(i.final_sale == products[i.product_id].final_sale for i in items)
    assert sum(i.final_sale for i in items) >= 20
    # Policy: final-sale items never go back.
    for o in orders.values():
        sent_back = [x.order_item for r in o.returns for x in r.items]
        sent_back += [x.order_item for e in o.exchanges for x in e.items]
        assert not any(i.final_sale for i in sent_back), o.id


def test_customers(seeded: tuple[Session, SeedSummary]) -> None:
    session, _ = seeded
    query = select(Customer).options(
        selectinload(Customer.addresses), selectinload(Customer.payment_methods)
    )
    customers = session.scalars(query).all()
    assert Counter(c.name for c in customers)["Jane Doe"] == 2
    assert len({c.email for c in customers}) == len(customers)
    for c in customers:
        assert sum(a.is_default for a in c.addresses) == 1
        assert c.payment_methods
    methods = [m for c in customers for m in c.payment_methods]
    assert {m.kind for m in methods} == set(PaymentKind)
    for m in methods:
        card = m.kind is PaymentKind.CREDIT_CARD
        assert (m.brand is not None, m.last_four is not None) == (card, card)
        assert m.last_four is None or (len(m.last_four) == 4 and m.last_four.isdigit())
        assert (m.balance is not None) == (m.kind is PaymentKind.GIFT_CARD)


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(FIXTURES / "generate.py"), str(tmp_path)], check=True)
    written = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in FIXTURES.glob("*.yaml"))
    assert written == committed
    for name in written:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name


# --- the story records -------------------------------------------------------------------

Line = tuple[str, dict[str, str], str, bool, ItemStatus]
ACTIVE, RETURNED, CANCELLED = ItemStatus.ACTIVE, ItemStatus.RETURNED, ItemStatus.CANCELLED
STORY: dict[str, tuple[str, OrderStatus, int | None, list[Line]]] = {
    # order: customer, status, delivered days ago, lines (name, options, price, final sale, status)
    "482913": ("cust_jane", OrderStatus.DELIVERED, 10, [
        ("Slim Fit Jeans", {"color": "indigo", "size": "32/32"}, "59.90", False, ACTIVE),
        ("Linen Shirt", {"color": "white", "size": "M"}, "39.90", False, ACTIVE),
        ("Swim Shorts", {"color": "navy", "size": "M"}, "24.90", True, ACTIVE)]),
    "482914": ("cust_jane", OrderStatus.SHIPPED, None, [
        ("Wool Beanie", {"color": "grey"}, "19.90", False, ACTIVE)]),
    "482915": ("cust_jane", OrderStatus.PLACED, None, [
        ("Canvas Sneakers", {"color": "white", "size": "42"}, "49.90", False, ACTIVE)]),
    "377120": ("cust_jane", OrderStatus.DELIVERED, 45, [
        ("Rain Jacket", {"color": "yellow", "size": "M"}, "89.00", False, ACTIVE)]),
    "391554": ("cust_jane", OrderStatus.DELIVERED, 20, [
        ("Denim Jacket", {"color": "blue", "size": "M"}, "79.00", False, RETURNED),
        ("Chino Trousers", {"color": "beige", "size": "32"}, "49.00", False, ACTIVE)]),
    "402233": ("cust_jane", OrderStatus.CANCELLED, None, [
        ("Leather Belt", {"color": "black"}, "29.00", False, CANCELLED)]),
    "551200": ("cust_jane2", OrderStatus.DELIVERED, 5, [
        ("Hooded Sweatshirt", {"color": "green", "size": "L"}, "45.00", False, ACTIVE)]),
    "600123": ("cust_tom", OrderStatus.DELIVERED, 7, [
        ("Slim Fit Jeans", {"color": "black", "size": "34/32"}, "59.90", False, ACTIVE),
        ("Leather Belt", {"color": "brown"}, "29.00", False, ACTIVE)]),
}  # fmt: skip


def test_story_customers(seeded: tuple[Session, SeedSummary]) -> None:
    session, _ = seeded
    found = {c: session.get_one(Customer, c) for c in STORY_CUSTOMERS}
    assert {c: (x.name, x.email) for c, x in found.items()} == {
        "cust_jane": ("Jane Doe", "jane.doe@example.com"),
        "cust_jane2": ("Jane Doe", "jane.doe.77@example.net"),
        "cust_tom": ("Tom Becker", "tom.becker@example.org"),
    }


@pytest.mark.parametrize("order_id", list(STORY))
def test_story_order(orders: dict[str, Order], order_id: str) -> None:
    customer, status, delivered, lines = STORY[order_id]
    o = orders[order_id]
    assert (o.customer_id, o.status, days_ago(o.delivered_at)) == (customer, status, delivered)
    assert [(i.name, i.options, str(i.price), i.final_sale, i.status) for i in o.items] == lines
    assert o.contact_email == o.customer.email
    paid = sum((i.price for i in o.items), Decimal())
    assert [(t.kind, t.amount) for t in o.transactions][:1] == [(TransactionKind.PAYMENT, paid)]


def test_story_order_details(orders: dict[str, Order]) -> None:
    placed = orders["482915"]
    assert days_ago(placed.placed_at) == 1
    assert not placed.fulfillments

    in_transit = orders["482914"]
    assert days_ago(in_transit.placed_at) == 3
    [parcel] = in_transit.fulfillments
    assert (parcel.carrier, parcel.tracking_ids) == ("Parcelo", ["PX482914001"])
    assert (days_ago(parcel.shipped_at), parcel.delivered_at) == (2, None)

    partly_returned = orders["391554"]
    [ret] = partly_returned.returns
    assert ret.status is ReturnStatus.REFUNDED
    assert [x.order_item.position for x in ret.items] == [1]
    refunds = [t.amount for t in partly_returned.transactions if t.kind is TransactionKind.REFUND]
    assert refunds == [Decimal("79.00")]

    cancelled = orders["402233"]
    assert cancelled.cancellation is not None
    assert cancelled.cancellation.reason
    assert [(t.kind, t.amount) for t in cancelled.transactions] == [
        (TransactionKind.PAYMENT, Decimal("29.00")),
        (TransactionKind.REFUND, Decimal("29.00")),
    ]
    assert [i for i in STORY if orders[i].returns or orders[i].exchanges] == ["391554"]


# --- changes to the seeded shop (last: they expire what the tests above loaded) ----------


def test_clear_shop_empties_the_shop_and_unlinks_shopbot_records(scratch: Session) -> None:
    session = scratch
    returned = session.scalars(select(Return)).first()
    assert returned is not None
    conversation = Conversation(
        id="c1", customer_id="cust_jane", proven_by="email", proven_order_id="482913"
    )
    email = OutboxEmail(
        message_id="<m1@shop>", to_address="jane.doe@example.com", subject="Your label",
        body_text="...", return_id=returned.id,
    )  # fmt: skip
    session.add_all([conversation, email])
    session.flush()
    later = datetime.now(UTC) + timedelta(minutes=15)
    confirmations = {
        status: Confirmation(
            id=f"k-{status.value}",
            conversation_id="c1",
            tool="create_return",
            args={},
            digest="0" * 64,
            summary="",
            status=status,
            expires_at=later,
        )
        for status in (
            ConfirmationStatus.PENDING,
            ConfirmationStatus.APPROVED,
            ConfirmationStatus.CONSUMED,
        )
    }
    session.add_all(confirmations.values())
    session.flush()

    clear_shop(session)

    assert not is_seeded(session)
    for model in SHOP_TABLES:
        assert session.scalar(select(func.count()).select_from(model)) == 0, model.__tablename__
    assert session.get(Conversation, "c1") is not None
    # Unproven as a whole: no conversation is left verified with no customer.
    proven = (conversation.customer_id, conversation.proven_by, conversation.proven_order_id)
    assert proven == (None, None, None)
    assert email.return_id is None
    assert {s: c.status for s, c in confirmations.items()} == {
        ConfirmationStatus.PENDING: ConfirmationStatus.EXPIRED,
        ConfirmationStatus.APPROVED: ConfirmationStatus.EXPIRED,
        ConfirmationStatus.CONSUMED: ConfirmationStatus.CONSUMED,
    }


def test_dates_are_noon_in_the_shops_time_zone(scratch: Session) -> None:
    portland = ZoneInfo("America/New_York")
    clear_shop(scratch)
    load_demo_shop(scratch, today=TODAY, zone=portland)
    order = scratch.get_one(Order, "482913")
    assert order.delivered_at is not None
    assert order.delivered_at.utcoffset() == timedelta(0)  # stored in UTC
    assert order.delivered_at.astimezone(portland) == datetime(2026, 11, 11, 12, tzinfo=portland)


def test_dates_count_back_from_today_by_default(scratch: Session) -> None:
    clear_shop(scratch)
    load_demo_shop(scratch)
    order = scratch.get_one(Order, "482915")
    assert order.placed_at is not None
    assert order.placed_at.date() == datetime.now(UTC).date() - timedelta(days=1)
