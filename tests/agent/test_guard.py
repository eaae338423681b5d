"""The guard as a pure function: states built by hand, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db import ConfirmationStatus, ItemStatus, OrderStatus
from shopbot.actions import Action, ActionSchema
from shopbot.config import PolicyConfig
from shopbot.guard import Guard
from shopbot.models.base import ToolCall
from shopbot.state import ConversationState, LiveConfirmation
from tools import REGISTRY, TOOLS
from tools.facts import LineFacts, OrderFacts

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
schema = ActionSchema(TOOLS)
guard = Guard(REGISTRY, PolicyConfig())


def action(tool: str, **args: object) -> Action:
    parsed = schema.parse(ToolCall(tool, args))
    assert isinstance(parsed, Action), parsed
    return parsed


def order(
    owner: str = "c1",
    *,
    status: OrderStatus = OrderStatus.DELIVERED,
    delivered_days: int | None = 5,
    lines: dict[int, tuple[ItemStatus, bool]] | None = None,
) -> OrderFacts:
    lines = lines or {
        1: (ItemStatus.ACTIVE, False),
        2: (ItemStatus.ACTIVE, True),
        3: (ItemStatus.RETURNED, False),
    }
    return OrderFacts(
        order_id="482913",
        customer_id=owner,
        email="a@b.co",
        status=status,
        delivered_at=NOW - timedelta(days=delivered_days) if delivered_days is not None else None,
        lines={n: LineFacts(n, f"item {n}", s, fs) for n, (s, fs) in lines.items()},
    )


def state(customer: str | None = "c1", **kw: object) -> ConversationState:
    s = ConversationState(conversation_id="x", now=NOW, customer_id=customer)
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_order_data_needs_a_proven_customer() -> None:
    v = guard.check(
        action("lookup_order", order_id="482913"), state(None, orders={"482913": order()})
    )
    assert v.decision == "deny" and "not verified" in v.reason
    assert "lookup_order" not in guard.allowed(state(None))
    assert guard.check(
        action("lookup_order", order_id="482913"), state(orders={"482913": order()})
    ).allowed


def test_unknown_and_foreign_orders_read_the_same() -> None:
    foreign = guard.check(
        action("lookup_order", order_id="482913"), state(orders={"482913": order("c2")})
    )
    unknown = guard.check(action("lookup_order", order_id="482913"), state(orders={}))
    assert foreign == unknown and foreign.decision == "deny"


def test_identity_check_uses_only_what_the_customer_typed() -> None:
    typed = state(None, customer_texts=["order #482913, email A@B.co"])
    assert guard.check(action("verify_identity", order_id="482913", email="a@b.co"), typed).allowed
    assert (
        guard.check(action("verify_identity", order_id="482913", email="x@b.co"), typed).decision
        == "deny"
    )
    assert (
        guard.check(action("verify_identity", order_id="482914", email="a@b.co"), typed).decision
        == "deny"
    )
    # A substring of a typed address is not the address.
    sneaky = state(None, customer_texts=["order 482913, email xa@b.co"])
    assert (
        guard.check(action("verify_identity", order_id="482913", email="a@b.co"), sneaky).decision
        == "deny"
    )


def test_identity_attempts_are_bounded_and_once_proven_stay_proven() -> None:
    tired = state(None, customer_texts=["482913 a@b.co"], failed_verifications=5)
    assert (
        guard.check(action("verify_identity", order_id="482913", email="a@b.co"), tired).decision
        == "deny"
    )
    assert "verify_identity" not in guard.allowed(tired)
    proven = state("c1", customer_texts=["482913 a@b.co"])
    assert (
        guard.check(action("verify_identity", order_id="482913", email="a@b.co"), proven).decision
        == "deny"
    )


@pytest.mark.parametrize(
    ("facts", "lines", "reason"),
    [
        (order(), [2], "final sale"),
        (order(), [3], "already returned"),
        (order(), [7], "no line 7"),
        (order(delivered_days=31), [1], "30-day return window ended"),
        (order(status=OrderStatus.SHIPPED, delivered_days=None), [1], "not delivered"),
    ],
)
def test_returns_the_policy_forbids_are_denied(
    facts: OrderFacts, lines: list[int], reason: str
) -> None:
    v = guard.check(
        action("create_return", order_id="482913", lines=lines, reason="r"),
        state(orders={"482913": facts}),
    )
    assert v.decision == "deny" and reason in v.reason


def test_the_window_counts_from_delivery_inclusive_of_the_last_day() -> None:
    a = action("create_return", order_id="482913", lines=[1], reason="r")
    assert guard.check(a, state(orders={"482913": order(delivered_days=30)})).decision == "confirm"


def test_side_effects_need_a_confirmation_of_exactly_these_arguments() -> None:
    a = action("create_return", order_id="482913", lines=[1], reason="r")
    facts = {"482913": order()}
    assert guard.check(a, state(orders=facts)).decision == "confirm"

    def confirmed(
        status: ConfirmationStatus,
        digest: str = a.digest,
        expires: datetime = NOW + timedelta(minutes=5),
    ) -> ConversationState:
        conf = LiveConfirmation("k", a.tool, a.arguments, digest, "s", status, expires)
        return state(orders=facts, confirmation=conf)

    assert guard.check(a, confirmed(ConfirmationStatus.APPROVED)).allowed
    assert guard.check(a, confirmed(ConfirmationStatus.PENDING)).decision == "confirm"
    assert guard.check(a, confirmed(ConfirmationStatus.APPROVED, expires=NOW)).decision == "confirm"
    other = guard.check(a, confirmed(ConfirmationStatus.APPROVED, digest="0" * 64))
    assert other.decision == "deny" and "confirmed something else" in other.reason
    assert guard.allowed(confirmed(ConfirmationStatus.APPROVED)) == {
        "create_return",
        "reply",
        "escalate",
    }


def test_replies_cite_only_what_was_retrieved() -> None:
    assert (
        guard.check(action("reply", message="hi", citations=["returns#window"]), state()).decision
        == "deny"
    )
    assert guard.check(action("reply", message="hi"), state(None)).allowed
    assert guard.check(action("escalate", reason="help"), state(None)).allowed


def test_the_same_action_twice_in_a_turn_is_denied() -> None:
    a = action("lookup_order", order_id="482913")
    s = state(orders={"482913": order()})
    assert guard.check(a, s).allowed
    s.done.add(a.digest)
    verdict = guard.check(a, s)
    assert verdict.decision == "deny"
    assert "already did exactly this" in verdict.reason


def test_after_an_approval_only_the_approved_tool_may_run() -> None:
    """`allowed` offers only the approved tool; `check` must not allow another (a lookup ran
    on an approval though it was not offered)."""
    a = action("create_return", order_id="482913", lines=[1], reason="r")
    conf = LiveConfirmation(
        "k", a.tool, a.arguments, a.digest, "s", ConfirmationStatus.APPROVED, NOW + timedelta(1)
    )
    approved = state(orders={"482913": order()}, confirmation=conf)
    lookup = guard.check(action("lookup_order", order_id="482913"), approved)
    assert lookup.decision == "deny" and "approved" in lookup.reason
    assert "lookup_order" not in guard.allowed(approved)
    assert guard.check(a, approved).allowed
    assert guard.check(action("reply", message="ok"), approved).allowed
