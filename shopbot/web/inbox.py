"""What the staff inbox lists: the live conversations, escalated ones first.

A conversation is live from its first turn until it is closed. Escalated conversations come
first (a person is needed), then the others; within each, the most recently active first.
An escalated one carries the reason its last escalation gave and when that was (how long
the customer has waited); the others, when they were last active.

One read of the conversations, one of their escalations, through the app's read engine.

A search or filters (`InboxQuery`) narrow the live conversations, each a condition on one
conversation read through an index from its row: its audit rows by `ix_action_log_
conversation`, its confirmations by `ix_confirmations_conversation`, its customer and proven
order by their primary keys. So the cost grows with the live conversations (few: `shopbot
purge` deletes the idle ones), never with the whole shop's customers or orders.

What an email search finds:
- conversations whose proven customer has that account email, or were proven with an order
  placed with it (the email on their verified order);
- conversations where the customer typed it for a check (verified or not): the audit log
  holds a typed address masked and as a keyed hash (`shopbot.pii`), so the search hashes the
  address with the same key and compares hashes. The address itself is never stored, nor
  searched for in the customer's messages.
An order number finds conversations proven with that order, those of the customer who owns
it, and those where a step named it (an identity check, a lookup). A name finds verified
conversations whose customer's full name contains it, ignoring case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db import (
    ActionLog,
    Confirmation,
    ConfirmationStatus,
    Conversation,
    ConversationStatus,
    Customer,
    Order,
)
from db import Event as EventRow
from shopbot.web.inbox_query import InboxQuery, SearchKind

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
    marks: tuple[str, ...] = ()
    """Of `MARKS`, what the conversation has: a denied step, a flagged reply, a confirmation
    the customer has not answered yet."""

    @property
    def escalated(self) -> bool:
        return self.status == ConversationStatus.ESCALATED.value


class Inbox:
    def __init__(self, engine: AsyncEngine, email_hash: Callable[[str], str]) -> None:
        self.engine = engine
        self.email_hash = email_hash
        """The audit log's keyed hash of a typed address (`Minimiser.email_hash`)."""

    async def live(
        self, wanted: InboxQuery, now: datetime, limit: int = 100
    ) -> tuple[list[LiveConversation], int]:
        """Up to `limit` live conversations that match `wanted`, in inbox order, and how many
        match in all."""
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
                *(mark.label(name) for name, mark in _marks(now).items()),
            )
            .outerjoin(Customer, Customer.id == Conversation.customer_id)
            .where(
                Conversation.status != ConversationStatus.CLOSED,
                Conversation.turns > 0,
                *self._narrowed(wanted, now),
            )
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
                    marks=tuple(name for name in MARKS if r._mapping[name]),
                )
            )
        return found, int(rows[0].total) if rows else 0

    def _narrowed(self, query: InboxQuery, now: datetime) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if query.kind is not None:
            where.append(self._search(query.kind, query.search))
        if query.escalated:
            where.append(Conversation.status == ConversationStatus.ESCALATED)
        marks = _marks(now)
        where += [marks[name] for name in MARKS if getattr(query, name)]
        return where

    def _search(self, kind: SearchKind, search: str) -> ColumnElement[bool]:
        if kind is SearchKind.NAME:
            full_name = func.lower(Customer.first_name + literal(" ") + Customer.last_name)
            return full_name.contains(search.lower(), autoescape=True)
        if kind is SearchKind.EMAIL:
            address = search.casefold()
            return or_(
                func.lower(Customer.email) == address,  # the proven customer, joined
                exists().where(
                    Order.id == Conversation.proven_order_id, func.lower(Order.email) == address
                ),
                _has_step(ActionLog.args["email_hash"].as_string() == self.email_hash(search)),
            )
        number = search.removeprefix("#")
        numbers = [number, f"#{number}"]
        return or_(
            Conversation.proven_order_id.in_(numbers),
            exists().where(Order.id.in_(numbers), Order.customer_id == Conversation.customer_id),
            _has_step(ActionLog.args["order_id"].as_string().in_(numbers)),
        )


MARKS = ("denied", "flagged", "confirming")
"""What a row shows beside its status, and the filters of the same names."""


def _marks(now: datetime) -> dict[str, ColumnElement[bool]]:
    return {
        "denied": _has_step(ActionLog.verdict == "deny"),
        "flagged": _has_step(func.json_array_length(ActionLog.flags) > 0),
        "confirming": exists().where(
            Confirmation.conversation_id == Conversation.id,
            Confirmation.status == ConfirmationStatus.PENDING,
            Confirmation.expires_at > now,
        ),
    }


def _has_step(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """The conversation has an audit row that meets `condition`."""
    return exists().where(and_(ActionLog.conversation_id == Conversation.id, condition))
