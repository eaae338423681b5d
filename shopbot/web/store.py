"""What the API reads from the database: the event log, history, recent messages.

Reads go through their own engine on SQLite: the application's engine opens every
transaction with BEGIN IMMEDIATE (the write lock), and a stream polling under that lock would
queue behind every turn. In WAL mode plain reads run beside the writer. On PostgreSQL reads
share the application's pool, in autocommit: each read is one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db import ActionLog, Conversation
from db import Event as EventRow

EVENTS = EventRow.__table__
HISTORY_KINDS = (
    "customer_message",
    "reply",
    "confirmation_requested",
    "confirmation_decided",
    "confirmation_withdrawn",
    "staff_joined",
    "staff_message",
    "staff_left",
)
"""The events a customer's history is folded from; the others (steps, verdicts) are the
agent's work, for staff (`shopbot.web.audience`)."""
AUDIT = ActionLog.__table__
IDLE_AFTER = ("turn_ended", "staff_joined", "staff_message", "staff_left")
"""The kinds that end what was writing in a conversation: a turn, or a staff action."""


@dataclass(frozen=True)
class ConversationInfo:
    status: str
    customer_id: str | None
    turns: int
    lease_until: datetime | None
    """Set while a turn runs (or until a crashed worker's lease lapses)."""

    @property
    def verified(self) -> bool:
        return self.customer_id is not None


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    turn: int
    kind: str
    payload: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        """The event as a client receives it: the payload with its seq and turn."""
        return {"seq": self.seq, "turn": self.turn, **self.payload}


def _reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def reader_engine(url: str | URL, pool_size: int) -> AsyncEngine:
    """A read-only engine for SQLite: each statement is its own WAL snapshot, no write lock."""
    target = make_url(url).set(drivername="sqlite+aiosqlite")
    in_memory = target.database in (None, "", ":memory:")
    pool = {} if in_memory else {"pool_size": pool_size, "max_overflow": 0}
    engine = create_async_engine(target, connect_args={"timeout": 5}, hide_parameters=True, **pool)
    event.listen(engine.sync_engine, "connect", _reader_pragmas)
    return engine


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def after(self, conversation_id: str, seq: int, limit: int = 200) -> list[StoredEvent]:
        """The conversation's events after `seq`, in order."""
        query = (
            select(EVENTS.c.seq, EVENTS.c.turn, EVENTS.c.kind, EVENTS.c.payload)
            .where(EVENTS.c.conversation_id == conversation_id, EVENTS.c.seq > seq)
            .order_by(EVENTS.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [StoredEvent(r.seq, r.turn, r.kind, r.payload) for r in rows]

    async def history(
        self, conversation_id: str, kinds: tuple[str, ...] | None = HISTORY_KINDS
    ) -> tuple[list[StoredEvent], int]:
        """The events of `kinds` (None: all) and the last seq, from one statement (one
        snapshot)."""
        last = (
            select(func.max(EVENTS.c.seq))
            .where(EVENTS.c.conversation_id == conversation_id)
            .scalar_subquery()
        )
        query = (
            select(EVENTS.c.seq, EVENTS.c.turn, EVENTS.c.kind, EVENTS.c.payload, last.label("last"))
            .where(EVENTS.c.conversation_id == conversation_id)
            .order_by(EVENTS.c.seq)
        )
        if kinds is not None:
            query = query.where(EVENTS.c.kind.in_(kinds))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        events = [StoredEvent(r.seq, r.turn, r.kind, r.payload) for r in rows]
        return events, int(rows[-1].last) if rows else 0

    async def conversation(self, conversation_id: str) -> ConversationInfo | None:
        query = select(
            Conversation.status,
            Conversation.customer_id,
            Conversation.turns,
            Conversation.turn_lease_until,
        ).where(Conversation.id == conversation_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ConversationInfo(str(row.status), row.customer_id, row.turns, row.turn_lease_until)

    async def audit(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's audit log (`db.ActionLog`), step by step: for staff only."""
        columns = [c for c in AUDIT.c if c.key not in ("id", "conversation_id")]
        query = (
            select(*columns)
            .where(AUDIT.c.conversation_id == conversation_id)
            .order_by(AUDIT.c.turn, AUDIT.c.step)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [dict(row) for row in rows]

    async def turn_start(self, conversation_id: str) -> tuple[int, int]:
        """The running (or last) turn of a conversation and the seq of its first event."""
        turn = (
            select(Conversation.turns).where(Conversation.id == conversation_id).scalar_subquery()
        )
        query = select(turn, func.min(EVENTS.c.seq)).where(
            EVENTS.c.conversation_id == conversation_id, EVENTS.c.turn == turn
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(query)).one()
        return int(found[0] or 0), int(found[1] or 0)

    async def last_turn_ended(self, conversation_id: str) -> bool:
        """Whether the conversation's last event ends a turn or a staff member's action
        (`shopbot.handoff`): none is running any more."""
        query = (
            select(EVENTS.c.kind)
            .where(EVENTS.c.conversation_id == conversation_id)
            .order_by(EVENTS.c.seq.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            kind = await conn.scalar(query)
        return kind in IDLE_AFTER
