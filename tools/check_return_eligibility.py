"""check_return_eligibility: which lines of an order may go back, and why not."""

from __future__ import annotations

from datetime import date

from db import ItemStatus
from shopbot.errors import ToolRetry
from tools.base import Lines, Needs, Observation, OrderId, ToolContext, tool
from tools.eligibility import line_eligibility
from tools.facts import load_order_facts


class LineEligibility(Observation):
    line: int
    name: str
    eligible: bool
    reason: str


class EligibilityReport(Observation):
    order_id: str
    return_window_days: int
    returnable_until: date | None
    """The last day, shop time, a return may be requested: the delivery date plus the window."""
    lines: list[LineEligibility]


@tool(needs=Needs.OWN_ORDER, doing="Checking whether your items can go back…")
async def check_return_eligibility(
    ctx: ToolContext, order_id: OrderId, lines: Lines | None = None
) -> EligibilityReport:
    """Check which lines of the customer's order can be returned under the shop's policy, with
    the reason for each. Leave `lines` out to check every line that has not gone back yet."""
    facts = (await load_order_facts(ctx.session, [order_id])).get(order_id)
    if facts is None or facts.customer_id != ctx.customer_id:
        raise ToolRetry(f"No order {order_id} on this customer's account.", code="unknown_order")
    policy = ctx.settings.policy
    wanted = lines or [n for n, f in facts.lines.items() if f.status is ItemStatus.ACTIVE]
    verdicts = [line_eligibility(facts, n, policy, ctx.now) for n in wanted]
    last_day = next((v.last_day for v in verdicts if v.last_day), None)
    return EligibilityReport(
        order_id=order_id,
        return_window_days=policy.return_window_days,
        returnable_until=last_day,
        lines=[
            LineEligibility(
                line=v.line,
                name=facts.lines[v.line].name if v.line in facts.lines else "?",
                eligible=v.eligible,
                reason=v.reason,
            )
            for v in verdicts
        ],
    )
