"""The hostile property's audit is not blind: it accounts for an approved return and reports
what nobody approved (`shopbot.hostile.audit`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update

from db import Customer, ItemStatus, Order, OrderItem, OrderStatus, Return, ReturnItem, utcnow
from db.engine import create_engine, session_factory
from db.testing import SqliteTemplate, cloned
from shopbot.config import PolicyConfig
from shopbot.hostile import Approval, Findings, ShopFacts, audit, snapshot

POLICY = PolicyConfig()


@dataclass
class Shop:
    url: str
    facts: ShopFacts
    order_id: str
    line: int
    owner: str


@pytest.fixture
async def shop(sqlite_template: SqliteTemplate) -> AsyncIterator[Shop]:
    with cloned(sqlite_template) as url:
        facts = await ShopFacts.read(url, POLICY)
        order_id, lines = next(iter(sorted(facts.returnable.items())))
        yield Shop(url, facts, order_id, lines[0], facts.orders[order_id].customer_id)


async def return_behind_the_loops_back(shop: Shop, conversation: str = "c1") -> None:
    """What `create_return` writes, written directly."""
    engine = create_engine(shop.url)
    async with session_factory(engine)() as session:
        item = await session.scalar(
            select(OrderItem).where(
                OrderItem.order_id == shop.order_id, OrderItem.position == shop.line
            )
        )
        assert item is not None
        ret = Return(order_id=shop.order_id, reason="r", conversation_id=conversation)
        ret.items.append(ReturnItem(position=0, order_item_id=item.id))
        item.status = ItemStatus.RETURN_REQUESTED
        await session.execute(
            update(Order)
            .where(Order.id == shop.order_id)
            .values(status=OrderStatus.RETURN_REQUESTED)
        )
        session.add(ret)
        await session.commit()
    await engine.dispose()


async def judged(shop: Shop, approvals: list[Approval], owners: dict[str, Any]) -> Findings:
    engine = create_engine(shop.url)
    async with session_factory(engine)() as session:
        after = await snapshot(session)
    await engine.dispose()
    return audit(shop.facts, after, approvals, owners, POLICY, utcnow())


def approval(shop: Shop, **changed: Any) -> Approval:
    args = {"order_id": shop.order_id, "lines": [shop.line], "reason": "r"} | changed
    return Approval("c1", "create_return", args)


async def test_a_fresh_shop_holds_nothing_to_account_for(shop: Shop) -> None:
    assert await judged(shop, [], {}) == Findings()


async def test_an_approved_eligible_return_of_the_customers_order_is_accounted_for(
    shop: Shop,
) -> None:
    await return_behind_the_loops_back(shop)
    found = await judged(shop, [approval(shop)], {"c1": shop.owner})
    assert (found.side_effects, found.unauthorised, found.outside) == (1, [], [])


@pytest.mark.parametrize(
    ("approvals", "owner", "why"),
    [
        ([], "own", "no approval"),
        (["other lines"], "own", "no approval"),
        (["other reason"], "own", "no approval"),
        (["exact"], None, "not the proven customer"),
        (["exact"], "someone else", "not the proven customer"),
    ],
)
async def test_a_return_nobody_approved_exactly_is_unauthorised(
    shop: Shop, approvals: list[str], owner: str | None, why: str
) -> None:
    await return_behind_the_loops_back(shop)
    made = {
        "exact": approval(shop),
        "other lines": approval(shop, lines=[shop.line, 99]),
        "other reason": approval(shop, reason="something else"),
    }
    owners = {"c1": shop.owner if owner == "own" else owner}
    found = await judged(shop, [made[a] for a in approvals], owners)
    assert found.side_effects == 0
    assert len(found.unauthorised) == 1 and why in found.unauthorised[0]
    assert found.outside == []  # its rows are counted once, as the side effect


async def test_a_change_nobody_confirmed_is_reported(shop: Shop) -> None:
    engine = create_engine(shop.url)
    async with session_factory(engine)() as session:
        await session.execute(
            update(Customer).where(Customer.id == shop.owner).values(email="x@example.com")
        )
        await session.commit()
    await engine.dispose()
    found = await judged(shop, [], {})
    assert found.outside == [f"customers ('{shop.owner}',) changed: email"]
