"""`db.pipeline`'s writers: a step's rows and its commit, together, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import ActionLog, Base, Conversation, Event, Message, Role, utcnow
from db.engine import create_engine, session_factory
from db.pipeline import (
    Batch,
    Notify,
    PostgresWriter,
    Update,
    Writer,
    alone_if_idle,
    psycopg_of,
    writer_for,
)

EVENTS = Base.metadata.tables["events"]
MESSAGES = Base.metadata.tables["messages"]
AUDIT = Base.metadata.tables["action_log"]
CONVERSATIONS = Base.metadata.tables["conversations"]


def _event(cid: str, seq: int) -> dict[str, object]:
    return {
        "conversation_id": cid,
        "seq": seq,
        "turn": 1,
        "kind": "thought",
        "payload": {"text": f"event {seq}"},
        "created_at": utcnow(),
    }


async def commit_batch(session: AsyncSession, batch: Batch) -> None:
    """As the recorder commits: through the session's database's writer."""
    await writer_for(session).commit(session, batch)


def _events(cid: str, *seqs: int) -> Batch:
    batch = Batch()
    batch.insert(EVENTS, [_event(cid, s) for s in seqs])
    return batch


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


async def _conversations(sessions: async_sessionmaker[AsyncSession]) -> int:
    """How many conversations are stored, read apart."""
    async with sessions() as other:
        return int(await other.scalar(select(func.count()).select_from(Conversation)) or 0)


async def _conversation(sessions: async_sessionmaker[AsyncSession]) -> str:
    cid = str(uuid.uuid4())
    async with sessions() as session:
        session.add(Conversation(id=cid, channel="web"))
        await session.commit()
    return cid


async def test_writes_go_after_pending_orm_changes_and_are_committed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = str(uuid.uuid4())
    async with sessions() as session:
        session.add(Conversation(id=cid, channel="web"))  # the events' foreign key
        await commit_batch(session, _events(cid, 1, 2))
        assert not session.in_transaction()
    assert await _stored(sessions, cid) == [1, 2]


async def test_a_batch_that_opens_no_transaction_is_committed_and_the_session_goes_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """On PostgreSQL, the batch alone runs in autocommit: the connection is left as it was."""
    cid = await _conversation(sessions)
    async with sessions() as session:
        await commit_batch(session, _events(cid, 1))
        assert not session.in_transaction()
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        assert not getattr(raw, "autocommit", False), "autocommit was switched back off"
        session.add(Conversation(id=str(uuid.uuid4()), channel="web"))
        await session.flush()
        await session.rollback()  # still transactional: the rollback takes the row back
    assert await _stored(sessions, cid) == [1]
    assert await _conversations(sessions) == 1


async def test_a_failing_write_commits_nothing_of_the_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = str(uuid.uuid4())
    async with sessions() as session:
        session.add(Conversation(id=cid, channel="web"))
        await commit_batch(session, _events(cid, 1))
        session.add(Conversation(id=str(uuid.uuid4()), channel="web"))
        with pytest.raises(DBAPIError):  # seq 1 is taken: the batch fails
            await commit_batch(session, _events(cid, 2, 1))
        await session.rollback()
        # The session goes on: the next batch is written and committed.
        await commit_batch(session, _events(cid, 3))
    assert await _stored(sessions, cid) == [1, 3], "seq 2 did not stay"
    assert await _conversations(sessions) == 1, "nor did the flushed conversation"


async def test_a_failing_batch_alone_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = await _conversation(sessions)
    async with sessions() as session:
        await commit_batch(session, _events(cid, 1))
        batch = _events(cid, 2, 1)  # seq 1 again: fails after seq 2 was inserted
        batch.updates.append(Update(CONVERSATIONS, {"id": cid}, {"title": "changed"}))
        with pytest.raises(DBAPIError):
            await commit_batch(session, batch)
        await session.rollback()
    assert await _stored(sessions, cid) == [1]
    async with sessions() as other:
        assert await other.scalar(select(Conversation.title).where(Conversation.id == cid)) == ""


def _audit(cid: str, step: int, observation: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "conversation_id": cid,
        "turn": 2,
        "step": step,
        "raw_output": '{"tool": "x"}',
        "thought": "",
        "tool": "lookup_order",
        "args": {"order_id": "482913", "lines": [1, 2]},
        "parse_error": None,
        "verdict": "allow",
        "reason": None,
        "observation": observation,
        "flags": [],
        "model_ms": 1.25,
        "guard_ms": 0.0,
        "tool_ms": 3.5,
        "created_at": datetime(2026, 11, 22, 19, 30, 1, 123456, tzinfo=UTC),
    }


async def _rows(sessions: async_sessionmaker[AsyncSession], cid: str) -> list[Any]:
    """Everything a batch of `_mixed` stored, read back apart (ids left out)."""
    async with sessions() as other:
        conversation = await other.get(Conversation, cid)
        assert conversation is not None
        audit = await other.scalars(
            select(ActionLog).where(ActionLog.conversation_id == cid).order_by(ActionLog.step)
        )
        messages = await other.scalars(select(Message).where(Message.conversation_id == cid))
        is_null = await other.scalars(
            select(ActionLog.observation.is_(None))  # SQL NULL, not JSON 'null'
            .where(ActionLog.conversation_id == cid)
            .order_by(ActionLog.step)
        )
        return [
            (conversation.title, conversation.turn_owner, conversation.turn_lease_until),
            [
                {k: v for k, v in vars(a).items() if k not in ("id", "_sa_instance_state")}
                for a in audit
            ],
            [(m.turn, m.role, m.content, m.citations, m.created_at) for m in messages],
            list(is_null),
        ]


def _mixed(cid: str, owner: str) -> tuple[Batch, Batch]:
    """Two commits: rows of three tables and updates, None in JSON and text columns."""
    first = Batch()
    first.insert(
        MESSAGES,
        [
            {
                "conversation_id": cid,
                "turn": 2,
                "role": Role.ASSISTANT,
                "content": "Héllo \"there\" — 'x' %s",
                "citations": [{"anchor": "returns#window", "title": "Returns"}],
                "created_at": datetime(2026, 11, 22, 20, 30, tzinfo=UTC) + timedelta(hours=-1),
            }
        ],
    )
    first.insert(AUDIT, [_audit(cid, 1, None), _audit(cid, 2, {"verified": False})])
    first.updates.append(
        Update(CONVERSATIONS, {"id": cid}, {"title": "Return", "turn_owner": owner})
    )
    second = Batch()
    second.updates.append(
        Update(AUDIT, {"conversation_id": cid, "turn": 2, "step": 1}, {"observation": {"ok": 1}})
    )
    second.updates.append(
        Update(
            CONVERSATIONS,
            {"id": cid, "turn_owner": owner},
            {"turn_owner": None, "turn_lease_until": None},
        )
    )
    return first, second


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_one_statement_stores_what_core_statements_store(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The same batches through PostgreSQL's one statement and a statement at a time."""
    stored = []
    for writer in (PostgresWriter(), Writer()):
        cid = await _conversation(sessions)
        async with sessions() as session:
            for batch in _mixed(cid, "owner-1"):
                await writer.commit(session, batch)
        stored.append(await _rows(sessions, cid))
    one, core = stored
    for rows in (one, core):
        for audit in rows[1]:
            audit.pop("conversation_id")
    assert one == core
    title_owner, audit, messages, is_null = one
    assert title_owner == ("Return", None, None)
    assert [a["observation"] for a in audit] == [{"ok": 1}, {"verified": False}]
    assert audit[0]["created_at"] == datetime(2026, 11, 22, 19, 30, 1, 123456, tzinfo=UTC)
    assert messages[0][1:4] == (
        Role.ASSISTANT,
        "Héllo \"there\" — 'x' %s",
        [{"anchor": "returns#window", "title": "Returns"}],
    )
    assert is_null == [False, False]


async def test_none_in_a_json_column_is_sql_null(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = await _conversation(sessions)
    async with sessions() as session:
        first, _ = _mixed(cid, "owner")
        await commit_batch(session, first)
    *_, is_null = await _rows(sessions, cid)
    assert is_null == [True, False]


async def test_a_batch_must_name_every_column_match_no_none_and_update_a_row_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = await _conversation(sessions)
    short = Batch()
    short.insert(EVENTS, [{k: v for k, v in _event(cid, 1).items() if k != "created_at"}])
    unmatched = Batch(updates=[Update(CONVERSATIONS, {"turn_owner": None}, {"title": "x"})])
    match = {"id": cid, "turn_owner": "o"}
    twice = [
        Update(CONVERSATIONS, match, {"title": "x"}),
        Update(CONVERSATIONS, dict(reversed(match.items())), {"turns": 3}),
    ]
    async with sessions() as session:
        for batch, refused in (
            (short, "must each name exactly"),
            (unmatched, "matches None"),
            (Batch(updates=twice), "two updates of one conversations row"),
        ):
            with pytest.raises(ValueError, match=refused):
                await commit_batch(session, batch)
            await session.rollback()
    assert await _stored(sessions, cid) == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_the_notification_leaves_with_the_commit(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    cid = await _conversation(sessions)
    dsn = make_url(db_url).set(drivername="postgresql").render_as_string(False)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener:
        await listener.execute("LISTEN test_pipeline")
        async with sessions() as session:
            batch = _events(cid, 1)
            batch.notify = Notify("test_pipeline", f"{cid}:1")
            await commit_batch(session, batch)
        async with aclosing(listener.notifies(timeout=5)) as notes:
            note = await asyncio.wait_for(anext(notes), 5)
        assert note.payload == f"{cid}:1"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the pipeline is PG's
async def test_a_connection_lost_in_the_batch_is_thrown_away(
    db_url: str, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    execute = psycopg.AsyncConnection.execute

    async def lost_at_commit(
        self: psycopg.AsyncConnection[Any], query: Any, *args: Any, **kw: Any
    ) -> Any:
        if query == "COMMIT":  # the server goes away as the batch is sent
            await self.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await execute(self, query, *args, **kw)

    cid = str(uuid.uuid4())
    async with sessions() as session:
        session.add(Conversation(id=cid, channel="web"))
        with monkeypatch.context() as patched:
            patched.setattr(psycopg.AsyncConnection, "execute", lost_at_commit)
            with pytest.raises(DBAPIError) as raised:
                await commit_batch(session, _events(cid, 1))
        assert raised.value.connection_invalidated
        await session.rollback()  # nothing to roll back on a connection thrown away
        session.add(Conversation(id=cid, channel="web"))
        await commit_batch(session, _events(cid, 1))  # a new one
    assert await _stored(sessions, cid) == [1]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_connection_lost_in_a_batch_alone_is_thrown_away_with_its_own_error(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In autocommit, no COMMIT follows: the statement itself is where the server goes."""
    execute = psycopg.AsyncConnection.execute

    async def lost_in_autocommit(
        self: psycopg.AsyncConnection[Any], query: Any, *args: Any, **kw: Any
    ) -> Any:
        if self.autocommit:
            await self.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await execute(self, query, *args, **kw)

    cid = await _conversation(sessions)
    async with sessions() as session:
        with monkeypatch.context() as patched:
            patched.setattr(psycopg.AsyncConnection, "execute", lost_in_autocommit)
            with pytest.raises(DBAPIError) as raised:
                await commit_batch(session, _events(cid, 1))
        assert isinstance(raised.value.orig, psycopg.OperationalError), "not a later error"
        assert raised.value.connection_invalidated
        await session.rollback()
    async with sessions() as session:  # whatever connection comes next is transactional
        await commit_batch(session, _events(cid, 1))
        session.add(Conversation(id=str(uuid.uuid4()), channel="web"))
        await session.flush()
        await session.rollback()
    assert await _stored(sessions, cid) == [1]
    assert await _conversations(sessions) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_nan_is_refused_before_it_reaches_postgresql(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = await _conversation(sessions)
    batch = Batch()
    batch.insert(AUDIT, [_audit(cid, 1, None) | {"model_ms": float("nan")}])
    async with sessions() as session:
        with pytest.raises(ValueError, match="Out of range float values"):
            await commit_batch(session, batch)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_connection_that_cannot_leave_autocommit_is_closed_not_pooled(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_autocommit = psycopg.AsyncConnection.set_autocommit

    async def stuck(self: psycopg.AsyncConnection[Any], value: bool) -> None:
        if not value:
            raise psycopg.ProgrammingError("can't change 'autocommit' now")
        await set_autocommit(self, value)

    async with sessions() as session:
        driver = await psycopg_of(await session.connection())
        await session.rollback()
        with monkeypatch.context() as patched:
            patched.setattr(psycopg.AsyncConnection, "set_autocommit", stuck)
            with pytest.raises(KeyError):  # the block's own error, not the restore's
                async with alone_if_idle(driver):
                    raise KeyError("in the block")
        assert driver.closed
