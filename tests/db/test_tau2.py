"""tau2-bench retail data goes into the shop tables and comes back out unchanged.

The data is read where the project keeps it, beside the repository (`../shared/tau2-retail`,
or `SHOPBOT_TAU2_DIR`); it is never copied into the repository.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from db.shop import Cancellation, ItemStatus, Order, OrderStatus, Variant
from db.tau2 import STATUSES, Tau2Error, export_tau2, import_tau2, round_money

TAU2 = Path(
    os.environ.get("SHOPBOT_TAU2_DIR")
    or Path(__file__).resolve().parents[2] / "../shared/tau2-retail"
)
pytestmark = pytest.mark.skipif(
    not (TAU2 / "db.json").exists(),
    reason=f"tau2 retail data not found at {TAU2} (set SHOPBOT_TAU2_DIR)",
)

Data = dict[str, Any]

# Changed records from expected_train.json, by task: the final state after tau2's own tools.
TASKS = {
    "0": "exchange requested",
    "11": "two orders with return requested",
    "113": "two orders cancelled with a reason, refunds appended",
    "15": "pending (item modified), with float noise in the new payment",
    "110": "pending with a new address, and an item modified",
    "20": "item modified and paid by gift card: the balance changed",
    "43": "the user's default address changed",
    "23": "an item modified and two orders with exchanges",
}


@pytest.fixture(scope="module")
def tau2_db() -> Data:
    return json.loads((TAU2 / "db.json").read_text())


@pytest.fixture(scope="module")
def expected() -> Data:
    return json.loads((TAU2 / "expected_train.json").read_text())


def subset(db: Data, user_ids: set[str], changed: Data | None = None) -> Data:
    """Some users with all their orders and the products those need, `changed` applied."""
    changed = changed or {}
    users = {u: changed.get("users", {}).get(u, db["users"][u]) for u in sorted(user_ids)}
    orders = {
        o: changed.get("orders", {}).get(o, db["orders"][o])
        for user in users.values()
        for o in user["orders"]
    }
    needed = {item["product_id"] for order in orders.values() for item in order["items"]}
    products = {p: record for p, record in db["products"].items() if p in needed}
    return {"products": products, "users": users, "orders": orders}


def round_trip(session: Session, data: Data) -> Data:
    import_tau2(session, data)
    session.expunge_all()  # export what the database holds, not what the session remembers
    return export_tau2(session)


def in_order_of(exported: Data, data: Data) -> Data:
    """`exported` with its top-level dicts in `data`'s order (the only order not kept)."""
    return {table: {k: exported[table][k] for k in data[table]} for table in data}


def test_statuses_map_one_to_one(tau2_db: Data, expected: Data) -> None:
    seen = {o["status"] for o in tau2_db["orders"].values()}
    seen |= {
        o["status"] for t in expected.values() for o in t["changed"].get("orders", {}).values()
    }
    assert set(STATUSES) == seen
    assert len(set(STATUSES.values())) == len(STATUSES)


@pytest.mark.parametrize("status", ["pending", "processed", "delivered", "cancelled"])
def test_round_trip_db_record(session: Session, tau2_db: Data, status: str) -> None:
    order = next(o for o in tau2_db["orders"].values() if o["status"] == status)
    data = subset(tau2_db, {order["user_id"]})

    exported = round_trip(session, data)

    assert json.dumps(in_order_of(exported, data)) == json.dumps(data)  # keys in order, too


@pytest.mark.parametrize("task", list(TASKS), ids=[f"task{t}" for t in TASKS])
def test_round_trip_changed_records(
    session: Session, tau2_db: Data, expected: Data, task: str
) -> None:
    changed: Data = expected[task]["changed"]
    orders: Data = changed.get("orders", {})
    user_ids = set(changed.get("users", {})) | {o["user_id"] for o in orders.values()}
    data = subset(tau2_db, user_ids, changed)

    assert round_trip(session, data) == round_money(data)

    # The optional fields live in their own rows, as ShopBot's tools would write them.
    for order_id, record in orders.items():
        order = session.get_one(Order, order_id)
        assert order.status is STATUSES[record["status"]]
        cancellation = session.get(Cancellation, order_id)
        assert (cancellation and cancellation.reason) == record.get("cancel_reason")
        assert [len(r.items) for r in order.returns] == (
            [len(record["return_items"])] if "return_items" in record else []
        )
        for exchange in order.exchanges:
            for x in exchange.items:
                new = session.get_one(Variant, x.new_variant_id)
                assert new.product_id == x.order_item.product_id  # paired by product
                assert x.order_item.status is ItemStatus.EXCHANGE_REQUESTED


def test_round_trip_everything(session: Session, tau2_db: Data) -> None:
    exported = round_trip(session, tau2_db)

    assert exported == tau2_db
    assert json.dumps(in_order_of(exported, tau2_db)) == json.dumps(tau2_db)


def test_round_money_only_touches_amounts() -> None:
    record = {
        "price": 17.860000000000014,
        "amount": 3.1,
        "zip": 10.123,
        "items": [{"price": 0.1 + 0.2}],
    }
    assert round_money(record) == {
        "price": 17.86,
        "amount": 3.1,
        "zip": 10.123,
        "items": [{"price": 0.3}],
    }


def test_exports_refuse_what_tau2_cannot_hold(session: Session, tau2_db: Data) -> None:
    order = next(o for o in tau2_db["orders"].values() if o["status"] == "delivered")
    import_tau2(session, subset(tau2_db, {order["user_id"]}))
    session.get_one(Order, order["order_id"]).status = OrderStatus.RETURNED
    session.flush()
    with pytest.raises(Tau2Error, match="no status for 'returned'"):
        export_tau2(session)


def _delivered(tau2_db: Data) -> tuple[Data, Data]:
    order = next(
        o for o in tau2_db["orders"].values() if o["status"] == "delivered" and len(o["items"]) > 1
    )
    data = json.loads(json.dumps(subset(tau2_db, {order["user_id"]})))  # a copy to spoil
    return data, data["orders"][order["order_id"]]


def _unsorted_return(order: Data) -> None:
    order["return_items"] = sorted(i["item_id"] for i in order["items"])[::-1]
    order["return_payment_method_id"] = order["payment_history"][0]["payment_method_id"]


SPOILS: dict[str, tuple[Callable[[Data], object], str]] = {
    "unknown field": (lambda o: o.update(gift_wrap=True), r"no place for \['gift_wrap'\]"),
    "sub-cent amount": (lambda o: o["items"][0].update(price=10.005), "not a whole number"),
    "unknown status": (lambda o: o.update(status="lost"), "unknown status 'lost'"),
    "half a return": (lambda o: o.update(return_items=[o["items"][0]["item_id"]]), "together"),
    "unsorted list": (_unsorted_return, "return_items is not sorted"),
    "someone else's": (lambda o: o.update(user_id="someone_else"), "not in the order list"),
}


@pytest.mark.parametrize("case", list(SPOILS))
def test_imports_refuse_what_would_be_lost(session: Session, tau2_db: Data, case: str) -> None:
    spoil, message = SPOILS[case]
    data, order = _delivered(tau2_db)
    spoil(order)
    with pytest.raises(Tau2Error, match=message):
        import_tau2(session, data)
