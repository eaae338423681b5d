"""Replaying τ²-bench ground-truth actions through ShopBot's retail desk.

Each action goes the way a model's action goes in the loop: parsed by the action schema,
its facts loaded into the conversation state, judged by the guard, then run by the tool
(`ToolSpec.__call__`, what the loop dispatches), each in its own transaction. What a
conversation would add around it is given: the customer's words are the identifiers the
lookups use (so the guard's "only what the customer wrote" holds), and the customer's
confirmation of a write is taken as given (the ground truth is what they confirmed).
A task with no lookup starts proven as the user its actions imply, as a customer signed in
on the shop's site would be.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import Conversation, Message, Order, Role, utcnow
from db.tau2 import export_tau2, order_record
from shopbot.actions import ActionSchema, ParseFailure
from shopbot.config import Settings
from shopbot.errors import ToolError
from shopbot.guard import Guard
from shopbot.models.base import ToolCall
from shopbot.state import load_state, load_step_facts
from shopbot.tau2.data import Data, GroundTruthAction, Task
from tools import ToolContext
from tools.retail import RETAIL_REGISTRY, RETAIL_TOOLS
from tools.retail.records import customer_record, load_customer, load_order

LOOKUPS = {t.name for t in RETAIL_TOOLS if t.proves is not None}
"""The retail desk's identity checks, as the tools declare them (`ToolSpec.proves`)."""


@dataclass(frozen=True)
class Outcome:
    action_id: str
    name: str
    error: bool
    stage: str
    """Where it ended: `parse`, `guard` (denied), `tool` (raised) or `done`."""
    detail: Any
    """The observation, or why it failed."""


def what_the_customer_said(task: Task) -> str | None:
    """The identifiers the task's lookups use, as one customer message (None: no lookup)."""
    said = [
        " ".join(str(v) for v in a.arguments.values()) for a in task.actions if a.name in LOOKUPS
    ]
    return " / ".join(said) if said else None


async def implied_user(session: AsyncSession, task: Task) -> str | None:
    """The user a task's actions are about: a `user_id` argument, else an order's owner."""
    for action in task.actions:
        if "user_id" in action.arguments:
            return str(action.arguments["user_id"])
    for action in task.actions:
        if "order_id" in action.arguments:
            owner = await session.scalar(
                select(Order.customer_id).where(Order.id == action.arguments["order_id"])
            )
            if owner is not None:
                return owner
    return None


class Replayer:
    """Runs ground-truth actions through the retail desk's schema, guard and tools."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.schema = ActionSchema(RETAIL_TOOLS)
        self.guard = Guard(RETAIL_REGISTRY, settings.policy)

    async def start(self, task: Task) -> str:
        """A conversation for the task: the customer's words, or identity up front."""
        conversation = Conversation(id=str(uuid.uuid4()), channel="tau2-replay")
        async with self.sessions() as session:
            said = what_the_customer_said(task)
            if said is None:
                conversation.customer_id = await implied_user(session, task)
                conversation.proven_by = "token"
            session.add(conversation)
            await session.flush()
            if said is not None:
                session.add(
                    Message(
                        conversation_id=conversation.id, turn=1, role=Role.CUSTOMER, content=said
                    )
                )
            await session.commit()
        return conversation.id

    async def run(self, conversation_id: str, action: GroundTruthAction) -> Outcome:
        def out(stage: str, detail: Any) -> Outcome:
            return Outcome(action.action_id, action.name, stage != "done", stage, detail)

        parsed = self.schema.parse(ToolCall(action.name, action.arguments))
        if isinstance(parsed, ParseFailure):
            return out("parse", parsed.error)
        async with self.sessions() as session:
            session.sync_session.autoflush = False  # as in the loop: tools flush themselves
            conversation = await session.get_one(Conversation, conversation_id)
            now = utcnow()
            state = await load_state(session, conversation, now)
            spec = self.guard.tools[parsed.tool]
            await load_step_facts(session, state, parsed.args, spec)
            verdict = self.guard.check(parsed, state)
            if verdict.decision == "deny":
                return out("guard", verdict.reason)
            ctx = ToolContext(session, conversation_id, state.customer_id, self.settings, now)
            try:
                observation = await spec(ctx, parsed.args)
            except ToolError as exc:
                await session.rollback()
                return out("tool", str(exc))
            await session.commit()
            return out("done", observation.model_dump(mode="json"))

    async def replay(self, task: Task) -> list[Outcome]:
        conversation_id = await self.start(task)
        return [await self.run(conversation_id, action) for action in task.actions]

    async def records_named(self, action: GroundTruthAction) -> Data:
        """The records an action could change: the order it names, the user it names, and
        that order's owner (a cheap look before and after an action that must fail)."""
        order_id, user_id = action.arguments.get("order_id"), action.arguments.get("user_id")
        found: Data = {"orders": {}, "users": {}}
        async with self.sessions() as session:
            user_ids = {str(user_id)} if user_id else set[str]()
            if order_id is not None:
                try:
                    order = await load_order(session, str(order_id))
                except ToolError:
                    pass
                else:
                    found["orders"][order.id] = order_record(order)
                    user_ids.add(order.customer_id)
            for uid in sorted(user_ids):
                try:
                    customer = await load_customer(session, uid)
                except ToolError:
                    continue
                found["users"][uid] = await customer_record(session, customer)
        return found

    async def export(self) -> Data:
        async with self.sessions() as session:
            return await session.run_sync(export_tau2)
