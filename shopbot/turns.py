"""One turn at a time per conversation, across processes: a lease in the conversation row.

A worker takes the lease with one guarded UPDATE (it succeeds only when nobody holds it or
the holder's lease ran out) and gives it back when the turn ends, however it ends. A worker
that crashes mid-turn blocks its conversation for at most the lease.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import Conversation
from shopbot.errors import ConversationBusy, ConversationError


@asynccontextmanager
async def turn_lease(
    sessions: async_sessionmaker[AsyncSession],
    conversation_id: str,
    clock: Callable[[], datetime],
    lease_seconds: float,
) -> AsyncGenerator[str]:
    owner = str(uuid.uuid4())
    async with sessions() as session:
        now = clock()
        result = await session.execute(
            update(Conversation)
            .where(
                Conversation.id == conversation_id,
                or_(
                    Conversation.turn_lease_until.is_(None),
                    Conversation.turn_lease_until < now,
                ),
            )
            .values(turn_owner=owner, turn_lease_until=now + timedelta(seconds=lease_seconds))
        )
        await session.commit()
        if int(getattr(result, "rowcount", 0)) != 1:
            if await session.get(Conversation, conversation_id) is None:
                raise ConversationError(f"No conversation {conversation_id}.")
            raise ConversationBusy("ShopBot is still answering the previous message.")
    try:
        yield owner
    finally:
        # A turn releases in its last commit; this catches the turns that ended otherwise.
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
