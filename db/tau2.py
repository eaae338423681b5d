"""tau2-bench retail data (`{"products", "users", "orders"}`) into ShopBot's models and back.

`export_tau2(session) == data` after `import_tau2(session, data)` for any state tau2 itself
produces, and the nested records come back with their keys in tau2's own order. How:

- A product becomes a Product with Variants (tau2's `item_id` is the variant id); a user a
  Customer with one default Address and its PaymentMethods; an order an Order with its
  OrderItems, Fulfillments and Transactions (`payment_history`), plus a Cancellation
  (`cancel_reason`), a Return with ReturnItems (`return_*`) or an Exchange with
  ExchangeItems (`exchange_*`) when the order has those fields. The order's `address` is
  its `ship_*` snapshot.
- Dict and list order is kept in `position` columns (order items count from 1, as lines do).
  The three top-level dicts have no position: the export sorts them by id. tau2 compares
  databases by a hash of `json.dumps(..., sort_keys=True)`, so their order carries nothing.
- tau2 stores `return_items`, `exchange_items` and `exchange_new_items` sorted, and pairs
  an exchange's old and new items only implicitly (same product). The import pairs them
  by product and refuses unsorted lists; the export sorts, as tau2 would.
- Money is exact cents. tau2's float arithmetic can leave noise (`17.860000000000014` for
  17.86): the import keeps the cents, and `round_money` does the same to a tau2 record, for
  comparing one with an export. Anything further than noise from a cent is refused.
- tau2 has no dates: nullable timestamps stay NULL; `created_at` columns that must be set
  get the time of the import, and the export ignores them.

Both functions take a synchronous `Session`; the import flushes but never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

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
    Transaction,
    TransactionKind,
    Variant,
)

__all__ = [
    "STATUSES",
    "Tau2Error",
    "export_tau2",
    "import_tau2",
    "order_record",
    "product_record",
    "round_money",
    "user_record",
    "variant_record",
]

Record = dict[str, Any]

STATUSES: dict[str, OrderStatus] = {
    "pending": OrderStatus.PLACED,
    "pending (item modified)": OrderStatus.ITEMS_MODIFIED,
    "processed": OrderStatus.SHIPPED,
    "delivered": OrderStatus.DELIVERED,
    "cancelled": OrderStatus.CANCELLED,
    "return requested": OrderStatus.RETURN_REQUESTED,
    "exchange requested": OrderStatus.EXCHANGE_REQUESTED,
}
"""tau2 order status -> ShopBot's; one to one (ShopBot's `returned` has no tau2 twin)."""
_TAU2_STATUS = {ours: theirs for theirs, ours in STATUSES.items()}

_ADDRESS = ("address1", "address2", "city", "country", "state", "zip")
_ORDER = ("order_id", "user_id", "address", "items", "status", "fulfillments", "payment_history")
_RETURN = ("return_items", "return_payment_method_id")
_EXCHANGE = (
    "exchange_items",
    "exchange_new_items",
    "exchange_payment_method_id",
    "exchange_price_difference",
)
_MONEY = frozenset({"price", "amount", "balance", "exchange_price_difference"})
_CENT = Decimal("0.01")
_NOISE = Decimal("1e-6")
_E = TypeVar("_E", bound=StrEnum)


class Tau2Error(ValueError):
    """The data cannot go into the schema, or come out of it, without loss."""


def import_tau2(session: Session, data: Mapping[str, Any]) -> None:
    """Add a tau2 retail database to the shop tables (flushes only)."""
    _fields(data, ("products", "users", "orders"), where="tau2 data")
    session.add_all(_product(key, p) for key, p in data["products"].items())
    session.flush()
    session.add_all(_customer(key, u) for key, u in data["users"].items())
    session.flush()
    position: dict[str, tuple[str, int]] = {
        order_id: (user_id, i)
        for user_id, user in data["users"].items()
        for i, order_id in enumerate(user["orders"])
    }
    if missing := set(position) - set(data["orders"]):
        raise Tau2Error(f"users list orders that are not in the data: {sorted(missing)[:5]}")
    product_of = {v: p for v, p in session.execute(select(Variant.id, Variant.product_id))}
    session.add_all(_order(key, o, position, product_of) for key, o in data["orders"].items())
    session.flush()


ORDER_RECORD_LOADS = (
    selectinload(Order.items),
    selectinload(Order.fulfillments),
    selectinload(Order.transactions),
    selectinload(Order.cancellation),
    selectinload(Order.returns).selectinload(Return.items),
    selectinload(Order.exchanges).selectinload(Exchange.items),
)
"""What `order_record` reads of an order, loaded up front."""


def export_tau2(session: Session) -> dict[str, Any]:
    """The shop tables as a tau2 retail database."""
    fresh = {"populate_existing": True}  # read the database, not what the session holds
    products = session.scalars(
        select(Product).order_by(Product.id).options(selectinload(Product.variants)),
        execution_options=fresh,
    )
    customers = session.scalars(
        select(Customer)
        .order_by(Customer.id)
        .options(selectinload(Customer.addresses), selectinload(Customer.payment_methods)),
        execution_options=fresh,
    )
    orders_of: defaultdict[str, list[str]] = defaultdict(list)
    for customer_id, order_id in session.execute(
        select(Order.customer_id, Order.id).order_by(Order.customer_id, Order.position, Order.id)
    ):
        orders_of[customer_id].append(order_id)
    orders = session.scalars(
        select(Order).order_by(Order.id).options(*ORDER_RECORD_LOADS),
        execution_options=fresh,
    )
    return {
        "products": {p.id: _product_record(p) for p in products},
        "users": {c.id: _user_record(c, orders_of[c.id]) for c in customers},
        "orders": {o.id: _order_record(o) for o in orders},
    }


def round_money(data: Any) -> Any:
    """A copy of tau2 data with every amount rounded to cents, as an export returns it."""
    if isinstance(data, Mapping):
        return {
            k: round(v, 2) if k in _MONEY and isinstance(v, float) else round_money(v)
            for k, v in data.items()  # pyright: ignore[reportUnknownVariableType]
        }
    if isinstance(data, list):
        return [round_money(v) for v in data]  # pyright: ignore[reportUnknownVariableType]
    return data


# --- import ------------------------------------------------------------------------------


def _fields(
    record: Mapping[str, Any], required: Iterable[str], optional: Iterable[str] = (), *, where: str
) -> None:
    # A field the schema has no place for would vanish silently: refuse it instead.
    keys, required = set(record), set(required)
    if missing := required - keys:
        raise Tau2Error(f"{where}: missing {sorted(missing)}")
    if unknown := keys - required - set(optional):
        raise Tau2Error(f"{where}: no place for {sorted(unknown)}")


def _key(key: str, record: Mapping[str, Any], id_field: str, where: str) -> str:
    if record[id_field] != key:
        raise Tau2Error(f"{where} {key!r}: {id_field} is {record[id_field]!r}")
    return key


def _money(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Tau2Error(f"{where}: {value!r} is not an amount")
    exact = Decimal(repr(value))
    cents = exact.quantize(_CENT)
    if abs(exact - cents) > _NOISE:
        raise Tau2Error(f"{where}: {value!r} is not a whole number of cents")
    return cents


def _product(key: str, p: Mapping[str, Any]) -> Product:
    where = f"product {key!r}"
    _fields(p, ("name", "product_id", "variants"), where=where)
    variants: list[Variant] = []
    for i, (vid, v) in enumerate(p["variants"].items()):
        _fields(v, ("item_id", "options", "available", "price"), where=f"{where} variant {vid!r}")
        variants.append(
            Variant(
                id=_key(vid, v, "item_id", "variant"),
                position=i,
                options=v["options"],
                price=_money(v["price"], f"variant {vid!r}"),
                available=v["available"],
            )
        )
    return Product(id=_key(key, p, "product_id", "product"), name=p["name"], variants=variants)


def _customer(key: str, u: Mapping[str, Any]) -> Customer:
    where = f"user {key!r}"
    _fields(u, ("user_id", "name", "address", "email", "payment_methods", "orders"), where=where)
    _fields(u["name"], ("first_name", "last_name"), where=f"{where} name")
    _fields(u["address"], _ADDRESS, where=f"{where} address")
    return Customer(
        id=_key(key, u, "user_id", "user"),
        first_name=u["name"]["first_name"],
        last_name=u["name"]["last_name"],
        email=u["email"],
        addresses=[Address(is_default=True, **u["address"])],
        payment_methods=[
            _payment_method(pid, m, i, where)
            for i, (pid, m) in enumerate(u["payment_methods"].items())
        ],
    )


def _payment_method(key: str, m: Mapping[str, Any], position: int, where: str) -> PaymentMethod:
    where = f"{where} payment method {key!r}"
    _fields(m, ("source", "id"), ("brand", "last_four", "balance"), where=where)
    return PaymentMethod(
        id=_key(key, m, "id", "payment method"),
        position=position,
        kind=_enum(PaymentKind, m["source"], where),
        brand=m.get("brand"),
        last_four=m.get("last_four"),
        balance=None if "balance" not in m else _money(m["balance"], where),
    )


def _order(
    key: str,
    o: Mapping[str, Any],
    position: Mapping[str, tuple[str, int]],
    product_of: Mapping[str, str],
) -> Order:
    where = f"order {key!r}"
    _fields(o, _ORDER, ("cancel_reason", *_RETURN, *_EXCHANGE), where=where)
    _fields(o["address"], _ADDRESS, where=f"{where} address")
    if o["status"] not in STATUSES:
        raise Tau2Error(f"{where}: unknown status {o['status']!r}")
    if position.get(key, (None, 0))[0] != o["user_id"]:
        raise Tau2Error(f"{where}: not in the order list of user {o['user_id']!r}")
    items = [_item(item, n, where) for n, item in enumerate(o["items"], 1)]
    order = Order(
        id=_key(key, o, "order_id", "order"),
        customer_id=o["user_id"],
        position=position[key][1],
        status=STATUSES[o["status"]],
        items=items,
        fulfillments=[_fulfillment(f, i, where) for i, f in enumerate(o["fulfillments"])],
        transactions=[_transaction(t, i, where) for i, t in enumerate(o["payment_history"])],
        **{f"ship_{k}": o["address"][k] for k in _ADDRESS},
    )
    if order.status is OrderStatus.CANCELLED:
        for item in items:
            item.status = ItemStatus.CANCELLED
    if "cancel_reason" in o:
        order.cancellation = Cancellation(reason=o["cancel_reason"])
    if _all_or_none(o, _RETURN, where):
        order.returns = [_return(o, items, where)]
    if _all_or_none(o, _EXCHANGE, where):
        order.exchanges = [_exchange(o, items, product_of, where)]
    return order


def _item(item: Mapping[str, Any], line: int, where: str) -> OrderItem:
    _fields(item, ("name", "product_id", "item_id", "price", "options"), where=f"{where} item")
    return OrderItem(
        position=line,
        variant_id=item["item_id"],
        product_id=item["product_id"],
        name=item["name"],
        options=item["options"],
        price=_money(item["price"], f"{where} item"),
    )


def _fulfillment(f: Mapping[str, Any], position: int, where: str) -> Fulfillment:
    _fields(f, ("tracking_id", "item_ids"), where=f"{where} fulfillment")
    return Fulfillment(position=position, tracking_ids=f["tracking_id"], variant_ids=f["item_ids"])


def _transaction(t: Mapping[str, Any], position: int, where: str) -> Transaction:
    where = f"{where} payment"
    _fields(t, ("transaction_type", "amount", "payment_method_id"), where=where)
    return Transaction(
        position=position,
        kind=_enum(TransactionKind, t["transaction_type"], where),
        amount=_money(t["amount"], where),
        payment_method_id=t["payment_method_id"],
    )


def _enum(cls: type[_E], value: Any, where: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        raise Tau2Error(f"{where}: unknown {cls.__name__} {value!r}") from None


def _all_or_none(o: Mapping[str, Any], fields: tuple[str, ...], where: str) -> bool:
    present = [f in o for f in fields]
    if any(present) and not all(present):
        raise Tau2Error(f"{where}: {fields} come together")
    return all(present)


def _take(
    items: list[OrderItem], variant_ids: list[str], field: str, where: str
) -> list[OrderItem]:
    """The order's items named by `variant_ids`, one distinct line per mention."""
    if variant_ids != sorted(variant_ids):
        raise Tau2Error(f"{where}: {field} is not sorted, as tau2 keeps it")
    taken: list[OrderItem] = []
    for variant_id in variant_ids:
        item = next((i for i in items if i.variant_id == variant_id and i not in taken), None)
        if item is None:
            raise Tau2Error(f"{where}: {field} names {variant_id!r} once too often")
        taken.append(item)
    return taken


def _return(o: Mapping[str, Any], items: list[OrderItem], where: str) -> Return:
    taken = _take(items, o["return_items"], "return_items", where)
    for item in taken:
        item.status = ItemStatus.RETURN_REQUESTED
    return Return(
        refund_payment_method_id=o["return_payment_method_id"],
        items=[ReturnItem(position=i, order_item=item) for i, item in enumerate(taken)],
    )


def _exchange(
    o: Mapping[str, Any], items: list[OrderItem], product_of: Mapping[str, str], where: str
) -> Exchange:
    taken = _take(items, o["exchange_items"], "exchange_items", where)
    new: list[str | None] = list(o["exchange_new_items"])
    if new != sorted(o["exchange_new_items"]) or len(new) != len(taken):
        raise Tau2Error(f"{where}: exchange_new_items must be sorted and match exchange_items")
    pairs: list[ExchangeItem] = []
    for i, item in enumerate(taken):
        # tau2 sorted both lists apart; an old item's partner is a new one of the same product.
        j = next((j for j, v in enumerate(new) if v and product_of.get(v) == item.product_id), None)
        partner = None if j is None else new[j]
        if j is None or partner is None:
            raise Tau2Error(f"{where}: no new item of product {item.product_id!r} to exchange for")
        pairs.append(ExchangeItem(position=i, order_item=item, new_variant_id=partner))
        new[j] = None
        item.status = ItemStatus.EXCHANGE_REQUESTED
    return Exchange(
        payment_method_id=o["exchange_payment_method_id"],
        price_difference=_money(o["exchange_price_difference"], where),
        items=pairs,
    )


# --- export ------------------------------------------------------------------------------


def _product_record(p: Product) -> Record:
    return {
        "name": p.name,
        "product_id": p.id,
        "variants": {v.id: _variant_record(v) for v in p.variants},
    }


def _variant_record(v: Variant) -> Record:
    return {
        "item_id": v.id,
        "options": v.options,
        "available": v.available,
        "price": float(v.price),
    }


def _user_record(c: Customer, order_ids: list[str]) -> Record:
    address = next((a for a in c.addresses if a.is_default), None)
    if address is None:
        raise Tau2Error(f"customer {c.id!r} has no default address")
    return {
        "user_id": c.id,
        "name": {"first_name": c.first_name, "last_name": c.last_name},
        "address": {k: getattr(address, k) for k in _ADDRESS},
        "email": c.email,
        "payment_methods": {m.id: _payment_record(m) for m in c.payment_methods},
        "orders": order_ids,
    }


def _payment_record(m: PaymentMethod) -> Record:
    record: Record = {"source": m.kind.value, "id": m.id}
    if m.brand is not None:
        record["brand"] = m.brand
    if m.last_four is not None:
        record["last_four"] = m.last_four
    if m.balance is not None:
        record["balance"] = float(m.balance)
    return record


def _order_record(o: Order) -> Record:
    status = _TAU2_STATUS.get(o.status)
    if status is None:
        raise Tau2Error(f"order {o.id!r}: tau2 has no status for {o.status.value!r}")
    if len(o.returns) > 1 or len(o.exchanges) > 1:
        raise Tau2Error(f"order {o.id!r}: tau2 holds one return and one exchange per order")
    record: Record = {
        "order_id": o.id,
        "user_id": o.customer_id,
        "address": {k: getattr(o, f"ship_{k}") for k in _ADDRESS},
        "items": [
            {
                "name": i.name,
                "product_id": i.product_id,
                "item_id": i.variant_id,
                "price": float(i.price),
                "options": i.options,
            }
            for i in o.items
        ],
        "status": status,
        "fulfillments": [
            {"tracking_id": f.tracking_ids, "item_ids": f.variant_ids} for f in o.fulfillments
        ],
        "payment_history": [
            {
                "transaction_type": t.kind.value,
                "amount": float(t.amount),
                "payment_method_id": t.payment_method_id,
            }
            for t in o.transactions
        ],
    }
    # The optional fields in tau2's own order: cancel, exchange, return.
    if o.cancellation is not None:
        record["cancel_reason"] = o.cancellation.reason
    variant_of = {i.id: i.variant_id for i in o.items}
    for e in o.exchanges:
        record["exchange_items"] = sorted(variant_of[x.order_item_id] for x in e.items)
        record["exchange_new_items"] = sorted(x.new_variant_id for x in e.items)
        record["exchange_payment_method_id"] = e.payment_method_id
        record["exchange_price_difference"] = float(e.price_difference)
    for r in o.returns:
        record["return_items"] = sorted(variant_of[x.order_item_id] for x in r.items)
        record["return_payment_method_id"] = r.refund_payment_method_id
    return record


# One record at a time, as tau2's tools return them (the relationships must be loaded).
order_record = _order_record
product_record = _product_record
user_record = _user_record
variant_record = _variant_record
