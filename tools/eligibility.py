"""Return eligibility: the shop's return rules as one pure function.

The guard calls it to allow or deny `create_return`; `check_return_eligibility` calls it to
tell the customer why. The numbers come from `PolicyConfig`, which the policy documents state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from db import ItemStatus, OrderStatus
from shopbot.config import PolicyConfig
from tools.facts import OrderFacts

RETURNABLE_ORDER_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.RETURN_REQUESTED})


@dataclass(frozen=True)
class Eligibility:
    line: int
    eligible: bool
    reason: str
    deadline: datetime | None = None
    """Last moment a return may be requested (delivery + return window)."""


def return_deadline(order: OrderFacts, policy: PolicyConfig) -> datetime | None:
    if order.delivered_at is None:
        return None
    return order.delivered_at + timedelta(days=policy.return_window_days)


def line_eligibility(
    order: OrderFacts, line: int, policy: PolicyConfig, now: datetime
) -> Eligibility:
    facts = order.lines.get(line)
    if facts is None:
        return Eligibility(line, False, f"order {order.order_id} has no line {line}")
    deadline = return_deadline(order, policy)
    if order.status not in RETURNABLE_ORDER_STATUSES or deadline is None:
        return Eligibility(line, False, f"the order is {order.status.value}, not delivered yet")
    if facts.final_sale:
        return Eligibility(line, False, f"{facts.name} was bought as final sale")
    if facts.status is not ItemStatus.ACTIVE:
        return Eligibility(line, False, f"{facts.name} is already {facts.status.value}")
    if now > deadline:
        return Eligibility(
            line,
            False,
            f"the {policy.return_window_days}-day return window ended on {deadline:%Y-%m-%d}",
            deadline,
        )
    return Eligibility(line, True, f"returnable until {deadline:%Y-%m-%d}", deadline)
