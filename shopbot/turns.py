"""One turn at a time per conversation, across processes: a lease in the conversation row.

A turn takes the lease with one guarded UPDATE in its first transaction (it succeeds only when
nobody holds it or the holder's lease ran out; the same statement counts the turn and returns
the row) and gives it back in its last commit, or in a transaction of its own when it stopped
half-way. A worker that crashes mid-turn blocks its conversation for at most the lease.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import Conversation
from shopbot.errors import ConversationBusy, ConversationError


async def take_lease(
    session: AsyncSession,
    conversation_id: str,
    now: datetime,
    lease_seconds: float,
    title: str | None = None,
) -> tuple[Conversation, str]:
    """Take the conversation for one turn, in the caller's transaction: the conversation
    (its turn count already the new turn's) and the lease's owner.

    The same UPDATE counts the turn and, for a conversation without one, sets its `title`.
    The lease counts from the caller's commit: until then the row lock stands in for it.
    """
    owner = str(uuid.uuid4())
    values: dict[str, Any] = {
        "turn_owner": owner,
        "turn_lease_until": now + timedelta(seconds=lease_seconds),
        "turns": Conversation.turns + 1,
        "updated_at": now,
    }
    if title:
        values["title"] = case((Conversation.title == "", title), else_=Conversation.title)
    taken = await session.scalar(
        update(Conversation)
        .where(
            Conversation.id == conversation_id,
            or_(Conversation.turn_lease_until.is_(None), Conversation.turn_lease_until < now),
        )
        .values(values)
        .returning(Conversation),
        execution_options={"populate_existing": True},
    )
    if taken is None:
        if await session.get(Conversation, conversation_id) is None:
            raise ConversationError(f"No conversation {conversation_id}.")
        raise ConversationBusy("ShopBot is still answering the previous message.")
    return taken, owner


async def give_back(
    sessions: async_sessionmaker[AsyncSession], conversation_id: str, owner: str
) -> None:
    """Release in a transaction of its own: for a turn that stopped before its last commit."""
    async with sessions() as session:
        await release_lease(session, conversation_id, owner)
        await session.commit()


async def release_lease(session: AsyncSession, conversation_id: str, owner: str) -> None:
    """Give the conversation back, if `owner` still holds it (in the caller's transaction)."""
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.turn_owner == owner)
        .values(turn_owner=None, turn_lease_until=None)
    )
