"""What tools declare of themselves and the core reads: the values the state knows for their
arguments, how an identity check's observation reads, their rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shopbot.models.base import KnownArgs
from shopbot.state import ConversationState, known_args
from tools import REGISTRY, ToolContext, tool
from tools.base import Observation
from tools.retail import RETAIL_REGISTRY


def state(*said: str) -> ConversationState:
    return ConversationState("c1", datetime(2026, 12, 6, tzinfo=UTC), customer_texts=list(said))


def test_a_label_is_offered_for_the_returns_created_in_the_turn() -> None:
    s = state("order 482913, jane.doe@example.com")
    s.observed = [
        ("create_return", {"return_id": 38, "order_id": "482913"}),
        ("lookup_order", {"order_id": "482913"}),
        ("create_return", {"return_id": 39, "order_id": "482913"}),
    ]
    known = known_args(REGISTRY, {"send_return_label", "reply"}, s)
    assert known == {"send_return_label": KnownArgs({"return_id": ["38", "39"]})}


def test_an_identity_checks_known_values_bind_and_others_guide() -> None:
    known = known_args(REGISTRY, REGISTRY, state("order #482913, jane.doe@example.com"))
    assert known["verify_identity"] == KnownArgs(
        {"order_id": ["#482913"], "email": ["jane.doe@example.com"]}, binding=True
    )
    assert known["lookup_order"] == KnownArgs({"order_id": ["#482913"]})
    assert "list_orders" not in known and "search_policy" not in known
    # The retail desk's lookups take what the guard checks, not a closed set; its label tool
    # knows no return of this turn yet.
    assert known_args(RETAIL_REGISTRY, RETAIL_REGISTRY, state("noah@example.com")) == {
        "send_return_label": KnownArgs({"return_id": []})
    }


def test_an_identity_check_says_how_its_observation_reads() -> None:
    verify = REGISTRY["verify_identity"].proves
    lookup = RETAIL_REGISTRY["find_user_id_by_email"].proves
    assert verify is not None and lookup is not None
    assert verify.outcome({"verified": True}, error=False) is True
    assert verify.outcome({"verified": False}, error=False) is False
    assert verify.outcome({"error": "internal_error"}, error=True) is None
    assert lookup.outcome({"user_id": "noah_brown_1234"}, error=False) is True
    assert lookup.outcome({"error": "not_found"}, error=True) is False


def test_a_rule_and_its_facts_go_together() -> None:
    def anything(args: BaseModel, facts: object) -> str | None:
        return None

    async def cancel_order(ctx: ToolContext, order_id: str) -> Observation:
        """Cancel an order."""
        return Observation()

    async def nothing(session: AsyncSession, customer_id: str | None, args: BaseModel) -> object:
        return None

    with pytest.raises(TypeError, match=r"a rule and the facts it reads go together"):
        tool(rule=anything)(cancel_order)
    with pytest.raises(TypeError, match=r"a rule and the facts it reads go together"):
        tool(facts=nothing)(cancel_order)
    assert tool(rule=anything, facts=nothing)(cancel_order).rule is anything
