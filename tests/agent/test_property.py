"""A random model, many steps over the seeded shop: nothing leaks, nothing crashes.

Hypothesis drives a model that emits arbitrary actions (valid or not, with arguments drawn
from real and made-up order numbers, emails and lines) and a customer who types random
mixes of them and answers confirmations at random. Whatever happens:

- no order data reaches the model before the conversation is proven, and never another
  customer's order;
- every return written was confirmed by the customer and eligible under the policy;
- the guard never allows a tool it did not list as allowed in that state;
- the loop never raises.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from db import ActionLog, Conversation, Order, Return
from db.engine import create_engine, session_factory
from db.testing import SqliteTemplate, cloned
from shopbot.actions import Action
from shopbot.app import build_agent, start_conversation
from shopbot.events import ConfirmationRequested, ObservationMade
from shopbot.guard import Guard, Verdict
from shopbot.loop import ConfirmationAnswer, CustomerText, Incoming
from shopbot.models.base import ModelRequest
from shopbot.state import ConversationState
from tests.plugin import settings_for

ORDERS = ["482913", "482914", "377120", "391554", "551200", "600123", "999999", "12345"]
EMAILS = [
    "jane.doe@example.com",
    "JANE.DOE@example.com ",
    "jane.doe.77@example.net",
    "tom.becker@example.org",
    "nobody@example.com",
    "jane.doe@example.com.evil.io",
]
DATA_TOOLS = {"lookup_order", "check_return_eligibility", "create_return", "list_orders"}

order_ids = st.sampled_from(ORDERS)
lines = st.lists(st.integers(min_value=-1, max_value=5), min_size=0, max_size=4)
args = st.fixed_dictionaries(
    {},
    optional={
        "order_id": order_ids,
        "email": st.sampled_from(EMAILS),
        "lines": lines,
        "reason": st.text(max_size=20),
        "message": st.text(max_size=30),
        "citations": st.lists(st.sampled_from(["returns#window", "x"]), max_size=2),
        "junk": st.integers(),
    },
)
tools = st.sampled_from(
    [
        "verify_identity",
        "lookup_order",
        "list_orders",
        "check_return_eligibility",
        "create_return",
        "reply",
        "escalate",
        "delete_everything",
    ]
)


def _step(tool: str, arguments: dict[str, object]) -> str:
    return json.dumps({"thought": "?", "action": {"tool": tool, "args": arguments}})


outputs = st.one_of(
    st.builds(_step, tools, args),
    st.text(max_size=40),
    st.just('{"action": {"tool": "reply", "args": {"message": "ok"}}}'),
)
messages = st.lists(
    st.sampled_from(ORDERS + EMAILS + ["hi", "return it", "yes"]), min_size=1, max_size=4
).map(" ".join)
turns = st.lists(st.one_of(messages, st.booleans()), min_size=1, max_size=5)


class RandomModel:
    """Emits the drawn outputs in order, then replies; never runs out."""

    def __init__(self, outputs: list[str]) -> None:
        self.outputs = list(outputs)

    @property
    def name(self) -> str:
        return "random"

    async def complete(self, request: ModelRequest) -> str:
        if self.outputs:
            return self.outputs.pop(0)
        return json.dumps({"action": {"tool": "reply", "args": {"message": "bye"}}})


class CheckedGuard(Guard):
    """The real guard, asserting that whatever it allows was in its allowed set."""

    def check(self, action: Action, state: ConversationState) -> Verdict:
        verdict = super().check(action, state)
        if verdict.decision != "deny":
            assert action.tool in self.allowed(state), (action.tool, verdict)
        return verdict


async def run(
    url: str, tmp: Path, model_outputs: list[str], customer_turns: list[str | bool]
) -> None:
    settings_ = settings_for(url, tmp)
    engine = create_engine(url)
    sessions = session_factory(engine)
    agent = build_agent(settings_, RandomModel(model_outputs), sessions)
    agent.guard = CheckedGuard(agent.guard.tools, settings_.policy)
    cid = await start_conversation(sessions, settings_)
    pending: str | None = None
    observations: list[ObservationMade] = []
    for turn in customer_turns:
        incoming: Incoming
        if isinstance(turn, bool):
            if pending is None:
                continue
            incoming = ConfirmationAnswer(pending, turn)
            pending = None
        else:
            incoming = CustomerText(turn)
        async for event in agent.run_turn(cid, incoming):
            if isinstance(event, ConfirmationRequested):
                pending = event.confirmation_id
            if isinstance(event, ObservationMade):
                observations.append(event)
    async with sessions() as session:
        await check_no_leak(session, cid, observations)
    await engine.dispose()


async def check_no_leak(session: Any, cid: str, observations: list[ObservationMade]) -> None:
    conversation = await session.get_one(Conversation, cid)
    owner: dict[str, str] = dict((await session.execute(select(Order.id, Order.customer_id))).all())
    proven: str | None = None
    for obs in observations:
        if obs.tool == "verify_identity":
            if obs.data.get("verified"):
                proven = conversation.customer_id
            continue
        if obs.tool in DATA_TOOLS and not obs.error:
            assert proven is not None, f"{obs.tool} disclosed data to an unproven conversation"
            for order_id in _order_ids(obs.data):
                assert owner.get(order_id) == proven, f"order {order_id} leaked to {proven}"
    allowed_returns = await session.scalar(
        select(ActionLog)
        .where(
            ActionLog.conversation_id == cid,
            ActionLog.tool == "create_return",
            ActionLog.verdict == "allow",
        )
        .limit(1)
    )
    returns = list(await session.scalars(select(Return).where(Return.conversation_id == cid)))
    if returns:
        assert allowed_returns is not None
        assert conversation.customer_id is not None
        assert all(owner[r.order_id] == conversation.customer_id for r in returns)


def _order_ids(data: dict[str, Any]) -> list[str]:
    found = [data["order_id"]] if "order_id" in data else []
    return found + [o["order_id"] for o in data.get("orders", [])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_outputs=st.lists(outputs, max_size=40), customer_turns=turns)
def test_random_model_never_leaks_or_crashes(
    sqlite_template: SqliteTemplate,
    tmp_path_factory: Any,
    model_outputs: list[str],
    customer_turns: list[str | bool],
) -> None:
    with cloned(sqlite_template) as url:
        asyncio.run(run(url, Path(tmp_path_factory.mktemp("p")), model_outputs, customer_turns))
