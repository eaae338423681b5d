"""Wake-ups for event streams: "conversation X has new events", on every worker.

A stream reads its conversation's events from the database (the only source of truth) and
then waits. What ends the wait:

- a turn on this worker stored events (`Relay.published`, immediate);
- a turn on another worker did: PostgreSQL carries the news with LISTEN/NOTIFY; on SQLite a
  worker tails the event table's ids (writes are serialized, so ids grow in commit order);
- a timeout (`sse_poll_seconds`), so a lost wake-up only delays, never loses, an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Generator
from typing import Protocol

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shopbot.web.store import EVENTS

log = logging.getLogger(__name__)

CHANNEL = "shopbot_events"


class EventFeed:
    """The streams open on this worker, by conversation."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def subscribe(self, conversation_id: str) -> Generator[asyncio.Event]:
        signal = asyncio.Event()
        self._waiters.setdefault(conversation_id, set()).add(signal)
        try:
            yield signal
        finally:
            waiters = self._waiters.get(conversation_id, set())
            waiters.discard(signal)
            if not waiters:
                self._waiters.pop(conversation_id, None)

    def wake(self, conversation_id: str) -> None:
        for signal in self._waiters.get(conversation_id, ()):
            signal.set()

    def wake_all(self) -> None:
        for conversation_id in list(self._waiters):
            self.wake(conversation_id)

    @property
    def watched(self) -> int:
        """Conversations with a stream open on this worker."""
        return len(self._waiters)


class Relay(Protocol):
    """Tells every worker's feed when a conversation has new events."""

    feed: EventFeed

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def published(self, conversation_id: str) -> None:
        """Events of the conversation were committed on this worker."""
        ...


class _Background(ABC):
    """A relay's long-running task, restarted after failures."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def _supervise(self) -> None:
        delay = 0.1
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s failed, restarting in %.1f s: %s", self.name, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    @abstractmethod
    async def run(self) -> None:
        """Relay until cancelled; raising restarts it after a back-off."""


class SqliteTail(_Background):
    """Wakes local streams for events any process wrote, by the growth of `events.id`."""

    def __init__(self, feed: EventFeed, engine: AsyncEngine, interval: float) -> None:
        super().__init__("shopbot-sqlite-tail")
        self.feed = feed
        self.engine = engine
        self.interval = interval

    def published(self, conversation_id: str) -> None:
        self.feed.wake(conversation_id)

    async def run(self) -> None:
        async with self.engine.connect() as conn:
            seen = int(await conn.scalar(select(func.coalesce(func.max(EVENTS.c.id), 0))) or 0)
        while True:
            await asyncio.sleep(self.interval)
            async with self.engine.connect() as conn:
                if not self.feed.watched:
                    query = select(func.coalesce(func.max(EVENTS.c.id), seen))
                    seen = int(await conn.scalar(query) or seen)
                    continue
                rows = (
                    await conn.execute(
                        select(EVENTS.c.id, EVENTS.c.conversation_id)
                        .where(EVENTS.c.id > seen)
                        .order_by(EVENTS.c.id)
                        .limit(2000)
                    )
                ).all()
            for conversation_id in dict.fromkeys(r.conversation_id for r in rows):
                self.feed.wake(conversation_id)
            if rows:
                seen = int(rows[-1].id)


class PostgresRelay(_Background):
    """LISTEN/NOTIFY: one listening connection per worker; notifications batched per tick."""

    def __init__(self, feed: EventFeed, url: str | URL) -> None:
        super().__init__("shopbot-pg-listen")
        self.feed = feed
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.origin = uuid.uuid4().hex[:12]
        self._pending: set[str] = set()
        self._flushing: asyncio.Task[None] | None = None
        self._sender: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._lock = asyncio.Lock()

    def published(self, conversation_id: str) -> None:
        self.feed.wake(conversation_id)
        self._pending.add(conversation_id)
        if self._flushing is None or self._flushing.done():
            # Events of one commit are yielded in a burst: one NOTIFY round trip covers them.
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)
        async with self._lock:
            while self._pending:
                batch, self._pending = self._pending, set()
                payloads = [f"{self.origin}:{cid}" for cid in batch]
                try:
                    if self._sender is None or self._sender.closed:
                        self._sender = await psycopg.AsyncConnection.connect(
                            self.dsn, autocommit=True
                        )
                    await self._sender.execute(
                        "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p",
                        (CHANNEL, payloads),
                    )
                except psycopg.Error as exc:
                    # Other workers' streams fall back to their poll for these events.
                    log.warning("NOTIFY failed: %s", exc)
                    if self._sender is not None:
                        await self._sender.close()
                    self._sender = None
                    return

    async def run(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            # Anything committed while we were not listening: let every stream look.
            self.feed.wake_all()
            async for note in conn.notifies():
                origin, _, conversation_id = note.payload.partition(":")
                if origin != self.origin:
                    self.feed.wake(conversation_id)

    async def stop(self) -> None:
        await super().stop()
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await self._flushing
        if self._sender is not None:
            await self._sender.close()
            self._sender = None
