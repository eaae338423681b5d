"""What the terminal chat reads from the database: earlier conversations and their events.

Resuming a conversation replays its stored events through the same rendering as a live
turn, so a resumed screen looks like the one the customer saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import Confirmation, ConfirmationStatus, Conversation, Customer
from db import Event as EventRow
from shopbot.events import EVENT_ADAPTER, Event


@dataclass(frozen=True)
class ConversationInfo:
    """One conversation as the list and the status bar show it."""

    id: str
    title: str
    turns: int
    status: str
    updated_at: datetime
    customer: str | None = None
    """The proven customer's full name; None until they have proven who they are."""
    proven_by: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    turn: int
    event: Event


@dataclass
class StoredConversation:
    info: ConversationInfo
    events: list[StoredEvent]
    confirmations: dict[str, ConfirmationStatus] = field(
        default_factory=dict[str, ConfirmationStatus]
    )
    """Each confirmation's status now; a pending one past its expiry reads as expired."""


async def list_conversations(
    sessions: async_sessionmaker[AsyncSession], *, limit: int = 200
) -> list[ConversationInfo]:
    """Conversations with at least one turn, most recently active first."""
    async with sessions() as session:
        rows = await session.execute(
            select(Conversation, Customer)
            .outerjoin(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.turns > 0)
            .order_by(Conversation.updated_at.desc(), Conversation.created_at.desc())
            .limit(limit)
        )
        return [_info(conversation, customer) for conversation, customer in rows]


async def conversation_info(
    sessions: async_sessionmaker[AsyncSession], conversation_id: str
) -> ConversationInfo | None:
    async with sessions() as session:
        return await _load_info(session, conversation_id)


async def load_conversation(
    sessions: async_sessionmaker[AsyncSession], conversation_id: str, now: datetime
) -> StoredConversation | None:
    """A conversation's events in order and its confirmations' statuses as of `now`."""
    async with sessions() as session:
        info = await _load_info(session, conversation_id)
        if info is None:
            return None
        rows = await session.scalars(
            select(EventRow)
            .where(EventRow.conversation_id == conversation_id)
            .order_by(EventRow.seq)
        )
        events = [StoredEvent(row.turn, EVENT_ADAPTER.validate_python(row.payload)) for row in rows]
        confirmations = {
            row.id: (
                ConfirmationStatus.EXPIRED
                if row.status is ConfirmationStatus.PENDING and row.expires_at <= now
                else row.status
            )
            for row in await session.scalars(
                select(Confirmation).where(Confirmation.conversation_id == conversation_id)
            )
        }
    return StoredConversation(info, events, confirmations)


async def _load_info(session: AsyncSession, conversation_id: str) -> ConversationInfo | None:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    customer = (
        await session.get(Customer, conversation.customer_id)
        if conversation.customer_id is not None
        else None
    )
    return _info(conversation, customer)


def _info(conversation: Conversation, customer: Customer | None) -> ConversationInfo:
    return ConversationInfo(
        id=conversation.id,
        title=conversation.title,
        turns=conversation.turns,
        status=conversation.status.value,
        updated_at=conversation.updated_at,
        customer=f"{customer.first_name} {customer.last_name}" if customer else None,
        proven_by=conversation.proven_by,
    )
