"""Return eligibility: the shop's return rules as one pure function.

The guard calls it to allow or deny `create_return`; `check_return_eligibility` calls it to
tell the customer why; `shopbot.eval` scores runs with it. The numbers come from
`PolicyConfig`, which the policy documents state.

The window is counted in calendar days in the shop's time zone (`PolicyConfig.timezone`), as
the documents say ("counted from the day your order was delivered ... ends at midnight on the
last day"): the last day is the delivery date, shop time, plus `return_window_days`, and a
request is on time until the end of that day, shop time. Delivery and request are turned into
shop dates before they are compared, never compared as instants N x 24 hours apart, so the
hour of delivery does not shorten the last day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from db import ItemStatus, OrderStatus
from shopbot.config import PolicyConfig
from tools.facts import OrderFacts

RETURNABLE_ORDER_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.RETURN_REQUESTED})


@dataclass(frozen=True)
class Eligibility:
    line: int
    eligible: bool
    reason: str
    last_day: date | None = None
    """The last day, shop time, a return may be requested (to the end of that day)."""


def shop_date(moment: datetime, policy: PolicyConfig) -> date:
    """The calendar date of `moment` in the shop's time zone (a naive `moment` is UTC, as
    the database stores every timestamp)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(policy.zone).date()


def last_return_day(delivered_at: datetime | None, policy: PolicyConfig) -> date | None:
    """The delivery date, shop time, plus the return window; None before delivery."""
    if delivered_at is None:
        return None
    return shop_date(delivered_at, policy) + timedelta(days=policy.return_window_days)


def window_open(delivered_at: datetime | None, policy: PolicyConfig, now: datetime) -> bool:
    """Whether a return requested at `now` is inside the window of an item delivered then."""
    last_day = last_return_day(delivered_at, policy)
    return last_day is not None and shop_date(now, policy) <= last_day


def line_eligibility(
    order: OrderFacts, line: int, policy: PolicyConfig, now: datetime
) -> Eligibility:
    facts = order.lines.get(line)
    if facts is None:
        return Eligibility(line, False, f"order {order.order_id} has no line {line}")
    last_day = last_return_day(order.delivered_at, policy)
    if order.status not in RETURNABLE_ORDER_STATUSES or last_day is None:
        return Eligibility(line, False, f"the order is {order.status.value}, not delivered yet")
    if facts.final_sale:
        return Eligibility(line, False, f"{facts.name} was bought as final sale")
    if facts.status is not ItemStatus.ACTIVE:
        return Eligibility(line, False, f"{facts.name} is already {facts.status.value}")
    if not window_open(order.delivered_at, policy, now):
        return Eligibility(
            line,
            False,
            f"the {policy.return_window_days}-day return window ended on {last_day:%Y-%m-%d}",
            last_day,
        )
    return Eligibility(line, True, f"returnable until {last_day:%Y-%m-%d}", last_day)
