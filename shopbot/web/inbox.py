"""What the staff inbox lists: the live conversations, escalated ones first.

A conversation is live from its first turn until it is closed. Escalated conversations come
first (a person is needed), then the others; within each, the most recently active first.
An escalated one carries the reason its last escalation gave and when that was (how long
the customer has waited); the others, when they were last active.

One read of the conversations, one of their escalations, through the app's read engine.
Search and filters will narrow `live`'s query; this module is where they belong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db import Conversation, ConversationStatus, Customer
from db import Event as EventRow

__all__ = ["Inbox", "LiveConversation"]


@dataclass(frozen=True)
class LiveConversation:
    id: str
    title: str
    status: str
    customer: str | None
    """The proven customer's full name; None until they have proven who they are."""
    turns: int
    last_active: datetime
    escalated_at: datetime | None = None
    """When it was (last) escalated: the customer has waited for a person since."""
    reason: str | None = None
    """Why it was escalated, as the agent recorded it."""

    @property
    def escalated(self) -> bool:
        return self.status == ConversationStatus.ESCALATED.value


class Inbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def live(self, limit: int = 100) -> tuple[list[LiveConversation], int]:
        """Up to `limit` live conversations in inbox order, and how many are live in all."""
        escalated_first = case((Conversation.status == ConversationStatus.ESCALATED, 0), else_=1)
        query = (
            select(
                Conversation.id,
                Conversation.title,
                Conversation.status,
                Conversation.turns,
                Conversation.updated_at,
                Customer.first_name,
                Customer.last_name,
                func.count().over().label("total"),  # counted before the LIMIT
            )
            .outerjoin(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.status != ConversationStatus.CLOSED, Conversation.turns > 0)
            .order_by(escalated_first, Conversation.updated_at.desc(), Conversation.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            escalated = [r.id for r in rows if r.status == ConversationStatus.ESCALATED]
            escalations = (
                (
                    await conn.execute(
                        select(EventRow.conversation_id, EventRow.payload, EventRow.created_at)
                        .where(
                            EventRow.conversation_id.in_(escalated), EventRow.kind == "escalated"
                        )
                        .order_by(EventRow.seq)
                    )
                ).all()
                if escalated
                else []
            )
        last = {e.conversation_id: e for e in escalations}  # the latest of each
        found: list[LiveConversation] = []
        for r in rows:
            escalation = last.get(r.id)
            found.append(
                LiveConversation(
                    id=r.id,
                    title=r.title,
                    status=str(r.status),
                    customer=f"{r.first_name} {r.last_name}" if r.first_name is not None else None,
                    turns=r.turns,
                    last_active=r.updated_at,
                    escalated_at=escalation.created_at if escalation else None,
                    reason=(escalation.payload.get("reason") or None) if escalation else None,
                )
            )
        return found, int(rows[0].total) if rows else 0
