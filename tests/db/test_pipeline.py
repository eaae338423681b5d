"""`db.pipeline.commit_writes`: a step's rows and its commit, together, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import Conversation, Event, utcnow
from db.engine import create_engine, session_factory
from db.pipeline import commit_writes

INSERT_EVENT = insert(Event).inline()


def _event(cid: str, seq: int) -> dict[str, object]:
    return {
        "conversation_id": cid,
        "seq": seq,
        "turn": 1,
        "kind": "thought",
        "payload": {"text": f"event {seq}"},
        "created_at": utcnow(),
    }


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def _stored(sessions: async_sessionmaker[AsyncSession], cid: str) -> list[int]:
    """The seqs of the conversation's stored events, read apart."""
    async with sessions() as other:
        query = select(Event.seq).where(Event.conversation_id == cid).order_by(Event.seq)
        return list(await other.scalars(query))


async def test_writes_go_after_pending_orm_changes_and_are_committed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = str(uuid.uuid4())
    async with sessions() as session:
        session.add(Conversation(id=cid, channel="web"))  # the events' foreign key
        await commit_writes(session, [(INSERT_EVENT, [_event(cid, 1), _event(cid, 2)])])
        assert not session.in_transaction()
    assert await _stored(sessions, cid) == [1, 2]


async def test_a_failing_write_commits_nothing_of_the_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = str(uuid.uuid4())
    async with sessions() as session:
        session.add(Conversation(id=cid, channel="web"))
        await commit_writes(session, [(INSERT_EVENT, [_event(cid, 1)])])
        session.add(Conversation(id=str(uuid.uuid4()), channel="web"))
        batch = [(INSERT_EVENT, [_event(cid, 2)]), (INSERT_EVENT, [_event(cid, 1)])]
        with pytest.raises(DBAPIError):  # seq 1 is taken: the second write fails
            await commit_writes(session, batch)
        await session.rollback()
        # The session goes on: the next batch is written and committed.
        await commit_writes(session, [(INSERT_EVENT, [_event(cid, 3)])])
    assert await _stored(sessions, cid) == [1, 3], "seq 2 did not stay"
    async with sessions() as other:
        conversations = select(func.count()).select_from(Conversation)
        assert await other.scalar(conversations) == 1, "nor did the flushed conversation"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the pipeline is PG's
async def test_a_connection_lost_in_the_batch_is_thrown_away(
    db_url: str, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    execute = psycopg.AsyncConnection.execute

    async def lost_at_commit(self: psycopg.AsyncConnection[Any], query: Any, *args: Any) -> Any:
        if query == "COMMIT":  # the server goes away as the batch is sent
            await self.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await execute(self, query, *args)

    cid = str(uuid.uuid4())
    async with sessions() as session:
        session.add(Conversation(id=cid, channel="web"))
        with monkeypatch.context() as patched:
            patched.setattr(psycopg.AsyncConnection, "execute", lost_at_commit)
            with pytest.raises(DBAPIError) as raised:
                await commit_writes(session, [(INSERT_EVENT, [_event(cid, 1)])])
        assert raised.value.connection_invalidated
        await session.rollback()  # nothing to roll back on a connection thrown away
        session.add(Conversation(id=cid, channel="web"))
        await commit_writes(session, [(INSERT_EVENT, [_event(cid, 1)])])  # a new one
    assert await _stored(sessions, cid) == [1]
