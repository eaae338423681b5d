"""Wake-ups for event streams: "conversation X has new events", on every worker.

A stream reads its conversation's events from the database (the only source of truth) and
then waits; events a turn on the same worker commits are pushed to it as well, so it reads
them back only when something came between. What ends the wait:

- a turn on this worker stored events: they are pushed to its streams (`EventFeed.push`);
- a turn on another worker did: PostgreSQL carries the news with LISTEN/NOTIFY, sent in the
  transaction that stores the events (the events themselves when they fit in a payload,
  pushed like local ones); on SQLite a worker tails the event table's ids (writes are
  serialized, so ids grow in commit order);
- a timeout (`sse_poll_seconds`), so a lost wake-up only delays, never loses, an event.

The staff inbox watches every conversation (`EventFeed.watch_inbox`): it is told that
something changed, not what, and reads the inbox again. While an inbox is open the relays
read every conversation's news, not only the news of conversations with a stream here.

Reply drafts (`reply_chunk`, the text of a reply while the model writes it) are never
stored: `Relay.drafted` hands them to the streams open on this worker and, on PostgreSQL,
in a NOTIFY of their own to the other workers, sent before the commit of the step that
stores the reply. A stream that was
not open, or a SQLite worker other than the turn's, misses the draft and shows the reply
when it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from db.pipeline import Notify
from shopbot.web.store import EVENTS, StoredEvent

log = logging.getLogger(__name__)

CHANNEL = "shopbot_events"
MAX_PAYLOAD = 7900
"""PostgreSQL refuses a NOTIFY payload of 8000 bytes or more."""
DRAFT_WAIT = 1.0
"""Seconds a commit waits for its conversation's drafts to be sent; a late one only flickers."""
SEND_SECONDS = 5.0
"""Deadline of one NOTIFY of drafts, connecting included; past it they are given up."""


@dataclass(eq=False)
class Subscription:
    """One open stream: woken when its conversation has news, with the drafts it missed."""

    woken: asyncio.Event = field(default_factory=asyncio.Event)
    drafts: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    stored: list[StoredEvent] = field(default_factory=list[StoredEvent])
    """Events a turn on this worker just committed: the stream need not read them back."""
    stale: bool = True
    """News from elsewhere (another worker, a lost wake-up): the database must be read. A new
    stream starts stale: it reads what came before it subscribed."""

    def take_drafts(self) -> list[dict[str, Any]]:
        drafts, self.drafts = self.drafts, []
        return drafts

    def take_stored(self, after: int) -> list[StoredEvent] | None:
        """The events that follow `after`, from what was pushed; None when the database must
        be read (the stream is stale, or something between was not pushed here).

        Pushes come from this worker's turns and from other workers' NOTIFYs, so they may
        arrive out of order: they are put in order and must follow `after` with no gap."""
        pushed = {e.seq: e for e in self.stored if e.seq > after}
        stale, self.stored, self.stale = self.stale, [], False
        events = [pushed[seq] for seq in sorted(pushed)]
        if stale or any(e.seq != after + 1 + i for i, e in enumerate(events)):
            return None
        return events


INBOX_QUIET = frozenset({"thought", "action", "working", "observation", "parse_failed"})
"""Kinds of events that change nothing the inbox shows: the steps in the middle of a turn."""


@dataclass(eq=False)
class InboxWatch:
    """One open inbox stream: woken when any conversation has news it may show."""

    woken: asyncio.Event = field(default_factory=asyncio.Event)


class EventFeed:
    """The streams open on this worker, by conversation, and the open inboxes."""

    def __init__(self) -> None:
        self.closing = False
        """Set by `close`: streams end instead of waiting for more."""
        self.inboxes: set[InboxWatch] = set()
        self._waiters: dict[str, set[Subscription]] = {}
        self._pushed: dict[str, int] = {}
        """The last seq pushed to each watched conversation's streams."""

    @contextlib.contextmanager
    def subscribe(self, conversation_id: str) -> Generator[Subscription]:
        subscription = Subscription()
        self._waiters.setdefault(conversation_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            waiters = self._waiters.get(conversation_id, set())
            waiters.discard(subscription)
            if not waiters:
                self._waiters.pop(conversation_id, None)
                self._pushed.pop(conversation_id, None)

    @contextlib.contextmanager
    def watch_inbox(self) -> Generator[InboxWatch]:
        watch = InboxWatch()
        self.inboxes.add(watch)
        try:
            yield watch
        finally:
            self.inboxes.discard(watch)

    def _tell_inboxes(self) -> None:
        for watch in self.inboxes:
            watch.woken.set()

    def watching(self, conversation_id: str) -> bool:
        """A stream of the conversation, or an inbox, is open on this worker."""
        return conversation_id in self._waiters or bool(self.inboxes)

    def wake(self, conversation_id: str) -> None:
        """The conversation has news this worker did not push: its streams read it."""
        self._tell_inboxes()  # what the news is is unknown: the inbox may show it
        for subscription in self._waiters.get(conversation_id, ()):
            subscription.stale = True
            subscription.woken.set()

    def push(self, conversation_id: str, events: list[StoredEvent]) -> None:
        """Events just committed (here, or on a worker that sent them along), for the
        streams open here."""
        if any(e.kind not in INBOX_QUIET for e in events):
            self._tell_inboxes()
        if conversation_id not in self._waiters or not events:
            return
        last = max(e.seq for e in events)
        self._pushed[conversation_id] = max(last, self._pushed.get(conversation_id, 0))
        for subscription in self._waiters[conversation_id]:
            subscription.stored.extend(events)
            subscription.woken.set()

    def pushed_through(self, conversation_id: str) -> int:
        """The last seq pushed to the conversation's streams here (0: none)."""
        return self._pushed.get(conversation_id, 0)

    def draft(self, conversation_id: str, data: dict[str, Any]) -> None:
        """A piece of a reply being written: every open stream of the conversation gets it."""
        for subscription in self._waiters.get(conversation_id, ()):
            subscription.drafts.append(data)
            subscription.woken.set()

    def wake_all(self) -> None:
        self._tell_inboxes()
        for conversation_id in list(self._waiters):
            self.wake(conversation_id)

    def close(self) -> None:
        """The worker is shutting down: every stream sends what it holds and ends cleanly,
        and its client resumes from another worker."""
        self.closing = True
        self._tell_inboxes()
        for waiters in self._waiters.values():
            for subscription in waiters:
                subscription.woken.set()

    @property
    def watched(self) -> int:
        """Conversations with a stream open on this worker, plus the open inboxes: nonzero
        when a relay must read the news."""
        return len(self._waiters) + len(self.inboxes)


class Relay(Protocol):
    """Tells every worker's feed when a conversation has new events."""

    feed: EventFeed

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def notice(self, conversation_id: str, rows: list[dict[str, Any]]) -> Notify | None:
        """The notification that tells the other workers about these event rows, sent in the
        transaction that stores them (so the news leaves with the commit, in commit order);
        None when the database carries no news."""
        ...

    def stored(self, conversation_id: str, events: list[StoredEvent]) -> None:
        """A turn on this worker committed these events: hand them to the streams open here."""
        ...

    def drafted(self, conversation_id: str, data: dict[str, Any]) -> None:
        """A turn on this worker produced a piece of a reply (never stored)."""
        ...


class _Background(ABC):
    """A relay's long-running task, restarted after failures."""

    finish_on_stop = 0.0
    """Seconds `stop` lets the task end by itself (it watches `stopping`) before cancelling
    it: 0 cancels at once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        self.stopping.clear()
        self.task = asyncio.create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is None:
            return
        self.stopping.set()
        if self.finish_on_stop:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), self.finish_on_stop)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _supervise(self) -> None:
        delay = 0.1
        while not self.stopping.is_set():
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s failed, restarting in %.1f s: %s", self.name, delay, exc)
            if await self._stopped_within(delay):
                return
            delay = min(delay * 2, 5.0)

    async def _stopped_within(self, seconds: float) -> bool:
        """Waits `seconds`, or less if `stop` is called: whether it was."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()

    @abstractmethod
    async def run(self) -> None:
        """Relay until cancelled or `stopping` (when it watches it); raising restarts it
        after a back-off."""


class SqliteTail(_Background):
    """Wakes local streams for events any process wrote, by the growth of `events.id`.

    On `stop` a read in progress finishes rather than being cancelled: aiosqlite's thread
    would report a cancelled query to an event loop that may be closed by then."""

    finish_on_stop = 2.0

    def __init__(self, feed: EventFeed, engine: AsyncEngine, interval: float) -> None:
        super().__init__("shopbot-sqlite-tail")
        self.feed = feed
        self.engine = engine
        self.interval = interval

    async def notice(self, conversation_id: str, rows: list[dict[str, Any]]) -> Notify | None:
        return None  # other processes learn of them from the table

    def stored(self, conversation_id: str, events: list[StoredEvent]) -> None:
        self.feed.push(conversation_id, events)

    def drafted(self, conversation_id: str, data: dict[str, Any]) -> None:
        # SQLite carries nothing between processes but the table: drafts stay local.
        self.feed.draft(conversation_id, data)

    async def run(self) -> None:
        async with self.engine.connect() as conn:
            seen = int(await conn.scalar(select(func.coalesce(func.max(EVENTS.c.id), 0))) or 0)
        while not await self._stopped_within(self.interval):
            async with self.engine.connect() as conn:
                if not self.feed.watched:
                    query = select(func.coalesce(func.max(EVENTS.c.id), seen))
                    seen = int(await conn.scalar(query) or seen)
                    continue
                rows = (
                    await conn.execute(
                        select(EVENTS.c.id, EVENTS.c.conversation_id, EVENTS.c.seq)
                        .where(EVENTS.c.id > seen)
                        .order_by(EVENTS.c.id)
                        .limit(2000)
                    )
                ).all()
            newest: dict[str, int] = {}
            for row in rows:
                newest[row.conversation_id] = max(row.seq, newest.get(row.conversation_id, 0))
            for conversation_id, seq in newest.items():
                # What this worker's own turns wrote was pushed already.
                if seq > self.feed.pushed_through(conversation_id):
                    self.feed.wake(conversation_id)
            if rows:
                seen = int(rows[-1].id)


class PostgresRelay(_Background):
    """LISTEN/NOTIFY: one listening connection per worker. Stored events' news goes out in
    the transaction that stores them (`notice`); drafts from a sending connection, batched
    per tick. Payloads: `origin:conversation` (look at the table),
    `origin:conversation:e[events]` (committed), `origin:conversation:d{draft}`."""

    def __init__(self, feed: EventFeed, url: str | URL) -> None:
        super().__init__("shopbot-pg-listen")
        self.feed = feed
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.origin = uuid.uuid4().hex[:12]
        self._pending: list[str] = []
        """Draft payloads to send, in order."""
        self._drafts = 0
        """Drafts handed to `drafted` so far (each payload carries its number)."""
        self._done = 0
        """Drafts sent, or given up on, so far: the first `_done` of them."""
        self._last_draft: dict[str, int] = {}
        """The number of each conversation's last draft not yet done: its next stored events'
        `notice` waits for it and removes it; `_flush` forgets it once done (the turn may
        have died before storing a reply)."""
        self._progress = asyncio.Condition()
        self._flushing: asyncio.Task[None] | None = None
        self._sender: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._lock = asyncio.Lock()

    @property
    def drafts_unsent(self) -> int:
        """Drafts handed over and not yet sent (nor given up on)."""
        return self._drafts - self._done

    async def notice(self, conversation_id: str, rows: list[dict[str, Any]]) -> Notify | None:
        target = self._last_draft.pop(conversation_id, 0)
        if self._done < target:
            # This conversation's drafts (a reply's, before the reply is stored) must reach
            # the other workers first. Not longer than DRAFT_WAIT: a stalled sender delays
            # the drafts, never the commit (and each send has a deadline of its own).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAFT_WAIT), self._progress:
                    await self._progress.wait_for(lambda: self._done >= target)
        # The events ride along when they fit, so the other workers' streams need not read
        # them back; otherwise a bare wake-up sends those streams to the table.
        wire = [[r["seq"], r["turn"], r["kind"], r["payload"]] for r in rows]
        payload = f"{self.origin}:{conversation_id}:e{json.dumps(wire, separators=(',', ':'))}"
        if len(payload.encode()) > MAX_PAYLOAD:
            payload = f"{self.origin}:{conversation_id}"
        return Notify(CHANNEL, payload)

    def stored(self, conversation_id: str, events: list[StoredEvent]) -> None:
        self.feed.push(conversation_id, events)

    def drafted(self, conversation_id: str, data: dict[str, Any]) -> None:
        self.feed.draft(conversation_id, data)
        # NOTIFY folds identical payloads of one transaction into one: number each draft.
        self._drafts += 1
        self._last_draft[conversation_id] = self._drafts
        wire = json.dumps({**data, "n": self._drafts}, separators=(",", ":"))
        self._pending.append(f"{self.origin}:{conversation_id}:d{wire}")
        if self._flushing is None or self._flushing.done():
            # Pieces come in bursts: one NOTIFY round trip covers what waits.
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)
        async with self._lock:
            while self._pending:
                payloads, self._pending = self._pending, []
                last = self._drafts  # the payloads taken are drafts up to this one
                try:
                    async with asyncio.timeout(SEND_SECONDS):
                        if self._sender is None or self._sender.closed:
                            self._sender = await psycopg.AsyncConnection.connect(
                                self.dsn, autocommit=True
                            )
                        await self._sender.execute(
                            "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p",
                            (CHANNEL, payloads),
                        )
                except (psycopg.Error, TimeoutError) as exc:
                    # The other workers' streams show the reply when it is stored.
                    log.warning("NOTIFY of reply drafts failed: %s", exc)
                    if self._sender is not None:
                        await self._sender.close()
                    self._sender = None
                finally:
                    async with self._progress:
                        self._done = last
                        # A turn that died before its reply's commit never asks again.
                        self._last_draft = {c: n for c, n in self._last_draft.items() if n > last}
                        self._progress.notify_all()

    async def run(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            # Anything committed while we were not listening: let every stream look.
            self.feed.wake_all()
            async for note in conn.notifies():
                origin, _, rest = note.payload.partition(":")
                if origin == self.origin:
                    continue
                conversation_id, _, body = rest.partition(":")
                if not self.feed.watching(conversation_id):
                    continue  # most news is for streams on other workers: left unparsed
                if body.startswith("e"):
                    events = [StoredEvent(*row) for row in json.loads(body[1:])]
                    self.feed.push(conversation_id, events)
                elif body.startswith("d"):
                    data = json.loads(body[1:])
                    data.pop("n", None)
                    self.feed.draft(conversation_id, data)
                else:
                    self.feed.wake(conversation_id)

    async def stop(self) -> None:
        await super().stop()
        if self._flushing is not None:
            # Drafts are worth a moment, not a hung shutdown.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._flushing, SEND_SECONDS)
        if self._sender is not None:
            await self._sender.close()
            self._sender = None
