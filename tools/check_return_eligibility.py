"""check_return_eligibility: which lines of an order may go back, and why not."""

from __future__ import annotations

from datetime import date
from typing import Any

from db import ItemStatus
from shopbot.errors import ToolRetry
from tools.base import (
    Lines,
    Needs,
    Observation,
    OrderId,
    StateView,
    ToolContext,
    tool,
    typed_order_numbers,
)
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


def next_step(state: StateView) -> str | None:
    """After this turn's latest check: return what can go back, or say why not."""
    reports = state.reports("check_return_eligibility")
    if not reports:
        return None
    lines: list[dict[str, Any]] = reports[-1].get("lines", [])
    ok = [str(x["line"]) for x in lines if x.get("eligible")]
    refused = [str(x["line"]) for x in lines if not x.get("eligible")]
    if ok and not refused:
        return (
            f"line {', '.join(ok)} can go back: call create_return for it with the reason "
            "the customer gave (the customer is asked to confirm)."
        )
    if not ok:
        return "nothing checked can go back: tell the customer why."
    return (
        f"line {', '.join(refused)} cannot go back: tell the customer why, and ask whether to "
        f"return line {', '.join(ok)}."
    )


@tool(
    needs=Needs.OWN_ORDER,
    doing="Checking whether your items can go back…",
    known=typed_order_numbers,
    hint=next_step,
)
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
