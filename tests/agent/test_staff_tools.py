"""Staff actions through the agent's own tools: guarded, audited with the person's name, and
a rule overridden only explicitly, with a reason."""

from __future__ import annotations

import pytest
from agent_support import act, add_staff, turn
from sqlalchemy import select

from db import ActionLog, Event, Return
from shopbot.app import start_conversation
from shopbot.errors import NotHolder
from shopbot.handoff import Handoff, StaffMember
from shopbot.loop import Agent, CustomerText
from shopbot.staff_tools import RuleRefused, run_tool

OLD_ORDER = "Can I return the rain jacket from order 377120? My email: jane.doe@example.com"


async def verified_and_taken(agent: Agent) -> tuple[Handoff, str, StaffMember]:
    """Jane verified on an order delivered past the return window; Sam holds the chat."""
    cid = await start_conversation(agent.sessions, agent.settings)
    verify = act("verify_identity", order_id="377120", email="jane.doe@example.com")
    await turn(agent, cid, CustomerText(OLD_ORDER), verify, act("reply", message="Verified."))
    handoff, sam = Handoff(agent), await add_staff(agent, "Sam")
    await handoff.take(cid, sam)
    return handoff, cid, sam


async def returns_of(agent: Agent, cid: str) -> list[Return]:
    async with agent.sessions() as s:
        return list(await s.scalars(select(Return).where(Return.conversation_id == cid)))


async def test_a_rule_refuses_a_staff_action_until_it_is_overridden_with_a_reason(
    agent: Agent,
) -> None:
    handoff, cid, sam = await verified_and_taken(agent)
    alex = await add_staff(agent, "Alex")  # not the holder
    args = {"order_id": "377120", "lines": [1], "reason": "parcel was delayed"}
    with pytest.raises(NotHolder):
        await run_tool(handoff, cid, alex, "create_return", args, "goodwill")

    with pytest.raises(RuleRefused, match="30-day return window ended"):
        await run_tool(handoff, cid, sam, "create_return", args)
    assert await returns_of(agent, cid) == []

    done = await run_tool(
        handoff, cid, sam, "create_return", args, "Goodwill: the parcel was late."
    )
    assert done.decision == "override" and not done.error
    assert len(await returns_of(agent, cid)) == 1
    async with agent.sessions() as s:
        row = await s.scalar(
            select(ActionLog).where(ActionLog.conversation_id == cid, ActionLog.step == 0)
        )
        kinds = list(await s.scalars(select(Event.kind).where(Event.conversation_id == cid)))
    assert row is not None and row.verdict == "override" and row.tool == "create_return"
    assert row.reason is not None and "Sam overrode the rule" in row.reason
    assert "30-day return window ended" in row.reason and "Goodwill" in row.reason
    assert kinds[-1] == "staff_tool"


async def test_an_allowed_staff_action_runs_through_the_tool_and_bad_input_changes_nothing(
    agent: Agent,
) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    jane = "Return the jeans from 482913 please, jane.doe@example.com"
    verify = act("verify_identity", order_id="482913", email="jane.doe@example.com")
    await turn(agent, cid, CustomerText(jane), verify, act("reply", message="Verified."))
    handoff = Handoff(agent)
    sam = await add_staff(agent, "Sam")
    await handoff.take(cid, sam)

    with pytest.raises(ValueError, match="not 'lookup_order'"):
        await run_tool(handoff, cid, sam, "lookup_order", {"order_id": "482913"})
    with pytest.raises(ValueError, match="do not fit create_return"):
        await run_tool(handoff, cid, sam, "create_return", {"order_id": "482913"})
    done = await run_tool(
        handoff,
        cid,
        sam,
        "create_return",
        {"order_id": "482913", "lines": [1], "reason": "too small"},
    )
    assert done.decision == "allow" and done.reason == "run and confirmed by Sam"
    created = await returns_of(agent, cid)
    assert len(created) == 1 and done.data["return_id"] == created[0].id
