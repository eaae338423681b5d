"""The return window, counted in the shop's calendar days: both sides of its last midnight.

Issue #18: an order delivered 30 days ago at noon UTC was refused at 19:00 UTC, "window ended
on" today. The window ends at the end of the last day in the shop's time zone, whatever the
hour of delivery or of the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import ItemStatus, Order, OrderStatus
from db.engine import create_engine, session_factory
from shopbot.actions import Action, ActionSchema
from shopbot.config import PolicyConfig, Settings
from shopbot.guard import Guard
from shopbot.models.base import ToolCall
from shopbot.state import ConversationState
from tests.plugin import settings_for
from tools import REGISTRY, TOOLS, ToolContext
from tools.check_return_eligibility import EligibilityReport, check_return_eligibility
from tools.eligibility import last_return_day, line_eligibility, shop_date
from tools.facts import LineFacts, OrderFacts, load_order_facts
from tools.lookup_order import lookup_order
from tools.views import OrderView

SHOP = PolicyConfig()
BERLIN = PolicyConfig(timezone="Europe/Berlin")


def delivered(at: datetime) -> OrderFacts:
    return OrderFacts(
        order_id="482913",
        customer_id="c1",
        email="a@b.co",
        status=OrderStatus.DELIVERED,
        delivered_at=at,
        lines={1: LineFacts(1, "Slim Fit Jeans", ItemStatus.ACTIVE, False)},
    )


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # pyright: ignore[reportArgumentType]


def test_the_issue_delivered_30_days_ago_at_noon_utc_is_returnable_at_19_utc() -> None:
    now = datetime(2026, 6, 1, 19, tzinfo=UTC)
    verdict = line_eligibility(delivered(now.replace(hour=12) - timedelta(days=30)), 1, SHOP, now)
    assert verdict.eligible, verdict.reason
    assert verdict.reason == "returnable until 2026-06-01"
    assert verdict.last_day == date(2026, 6, 1)


@pytest.mark.parametrize(
    ("zone", "delivered_on"),
    [
        ("America/New_York", date(2026, 5, 2)),
        ("Europe/Berlin", date(2026, 5, 2)),
        ("UTC", date(2026, 5, 2)),
        ("Pacific/Auckland", date(2026, 5, 2)),
        ("America/New_York", date(2026, 2, 20)),  # the window spans the change to summer time
        ("Europe/Berlin", date(2026, 10, 1)),  # ... and the change back
    ],
)
def test_the_last_day_is_returnable_until_its_last_second_and_not_after(
    zone: str, delivered_on: date
) -> None:
    policy = PolicyConfig(timezone=zone)
    order = delivered(local(zone, delivered_on.year, delivered_on.month, delivered_on.day, 9))
    last_day = delivered_on + timedelta(days=policy.return_window_days)
    y, m, d = last_day.year, last_day.month, last_day.day
    on_time = line_eligibility(order, 1, policy, local(zone, y, m, d, 23, 59, 59))
    next_day = last_day + timedelta(days=1)
    too_late = line_eligibility(
        order, 1, policy, local(zone, next_day.year, next_day.month, next_day.day, 0, 0)
    )
    assert on_time.eligible, on_time.reason
    assert on_time.reason == f"returnable until {last_day:%Y-%m-%d}"
    assert not too_late.eligible
    assert too_late.reason == f"the 30-day return window ended on {last_day:%Y-%m-%d}"


def test_a_delivery_late_in_the_utc_day_counts_from_the_next_local_date() -> None:
    # 22:30 UTC on May 1 is 00:30 on May 2 in Berlin (summer time, UTC+2).
    order = delivered(datetime(2026, 5, 1, 22, 30, tzinfo=UTC))
    assert last_return_day(order.delivered_at, BERLIN) == date(2026, 6, 1)
    assert last_return_day(order.delivered_at, PolicyConfig(timezone="UTC")) == date(2026, 5, 31)
    assert line_eligibility(order, 1, BERLIN, datetime(2026, 6, 1, 21, 59, 59, tzinfo=UTC)).eligible
    assert not line_eligibility(order, 1, BERLIN, datetime(2026, 6, 1, 22, tzinfo=UTC)).eligible


def test_a_delivery_early_in_the_utc_day_counts_from_the_previous_local_date() -> None:
    # 02:00 UTC on May 3 is 22:00 on May 2 in Portland, Maine (UTC-4 in summer).
    order = delivered(datetime(2026, 5, 3, 2, tzinfo=UTC))
    assert last_return_day(order.delivered_at, SHOP) == date(2026, 6, 1)
    assert line_eligibility(order, 1, SHOP, datetime(2026, 6, 2, 3, 59, 59, tzinfo=UTC)).eligible
    assert not line_eligibility(order, 1, SHOP, datetime(2026, 6, 2, 4, tzinfo=UTC)).eligible


def test_a_naive_timestamp_is_utc_as_the_database_stores_it() -> None:
    assert shop_date(datetime(2026, 5, 3, 2), SHOP) == date(2026, 5, 2)


def test_the_time_zone_is_a_setting_checked_at_start() -> None:
    settings = Settings(_env_file=None, policy={"timezone": "Europe/Berlin"})  # type: ignore[call-arg]
    assert settings.policy.zone == ZoneInfo("Europe/Berlin")
    assert SHOP.zone == ZoneInfo("America/New_York")
    for wrong in ("Mars/Olympus_Mons", "America", "", "../etc/passwd"):
        with pytest.raises(ValidationError, match="unknown time zone"):
            PolicyConfig(timezone=wrong)


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBOT_POLICY__TIMEZONE", "Europe/Berlin")
    assert Settings(_env_file=None).policy.timezone == "Europe/Berlin"  # type: ignore[call-arg]


# --- the tool, the view and the guard agree, on the database ---------------------------


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


def create_return() -> Action:
    schema = ActionSchema(TOOLS)
    args = {"order_id": "482913", "lines": [1], "reason": "too small"}
    parsed = schema.parse(ToolCall("create_return", args))
    assert isinstance(parsed, Action), parsed
    return parsed


@pytest.mark.parametrize(
    ("now", "eligible"),
    [
        (datetime(2026, 6, 2, 3, 59, 59, tzinfo=UTC), True),  # 23:59:59 on June 1 in Portland
        (datetime(2026, 6, 2, 4, 0, 0, tzinfo=UTC), False),  # midnight: June 2 in Portland
    ],
)
async def test_the_tool_the_order_view_and_the_guard_agree(
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    tmp_path: Path,
    now: datetime,
    eligible: bool,
) -> None:
    settings = settings_for(db_url, tmp_path)
    async with sessions() as session:
        order = await session.get_one(Order, "482913")
        order.delivered_at = datetime(2026, 5, 3, 2, tzinfo=UTC)  # 22:00 on May 2 in Portland
        await session.commit()
        ctx = ToolContext(session, "c1", order.customer_id, settings, now)
        report = await check_return_eligibility(
            ctx, check_return_eligibility.args_model(order_id="482913", lines=[1])
        )
        view = await lookup_order(ctx, lookup_order.args_model(order_id="482913"))
        facts = await load_order_facts(session, ["482913"])
        state = ConversationState("c1", now, customer_id=order.customer_id, orders=facts)

    assert isinstance(report, EligibilityReport) and isinstance(view, OrderView)
    assert view.delivered_on == date(2026, 5, 2)
    assert report.returnable_until == date(2026, 6, 1)  # = delivered_on + 30 days
    [line] = report.lines
    assert line.eligible is eligible
    assert line.reason == (
        "returnable until 2026-06-01"
        if eligible
        else "the 30-day return window ended on 2026-06-01"
    )
    verdict = Guard(REGISTRY, settings.policy).check(create_return(), state)
    assert verdict.decision == ("confirm" if eligible else "deny"), verdict.reason
