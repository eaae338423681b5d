"""Turns run in the background of the worker that accepted them.

`begin` runs a turn up to its first stored event, so a refused input (busy conversation, no
pending confirmation, a message too long) is answered on the request itself; the rest of the
turn then runs in a task while the request returns 202. Every event but a reply draft is in the
database before the turn yields it, so any worker's stream can serve it; drafts go out live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from shopbot.errors import ConversationBusy
from shopbot.events import Event, ReplyChunk
from shopbot.loop import Agent, Incoming
from shopbot.web.feed import Relay
from shopbot.web.schemas import TurnAccepted
from shopbot.web.store import EventStore, StoredEvent

log = logging.getLogger(__name__)

TURN_OPENERS = ("customer_message", "confirmation_decided")
"""The kinds a turn's first stored event can have."""


@dataclass
class _Opening:
    found: tuple[int, int] | None = None
    """The turn's number and the seq of its first event."""


class Openings:
    """What each commit stored, handed to the relay; and, for the turns `TurnRunner.begin`
    is starting here, their first stored event. The agent is built with `stored` as its
    listener, before the runner."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._starting: dict[str, _Opening] = {}
        """Conversations whose turn `begin` is starting here, each with the request's slot
        for the turn's number and first seq, filled by the turn's first commit."""

    def stored(self, conversation_id: str, rows: list[dict[str, Any]]) -> None:
        events = [StoredEvent(r["seq"], r["turn"], r["kind"], r["payload"]) for r in rows]
        self.relay.stored(conversation_id, events)
        opening = self._starting.get(conversation_id)
        if opening is not None and events[0].kind in TURN_OPENERS:
            opening.found = (events[0].turn, events[0].seq)

    def watch(self, conversation_id: str, opening: _Opening) -> None:
        opening.found = None
        self._starting[conversation_id] = opening

    def close(self, conversation_id: str, opening: _Opening) -> None:
        if self._starting.get(conversation_id) is opening:
            del self._starting[conversation_id]


class TurnRunner:
    def __init__(
        self,
        agent: Agent,
        store: EventStore,
        openings: Openings,
        max_running: int,
        after_turn: Callable[[], None] = lambda: None,
    ) -> None:
        self.agent = agent
        self.store = store
        self.openings = openings
        self.running: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(max_running)
        """Turns this worker runs at once; more wait here, in order, rather than in the
        database's lock queue or connection pool."""
        self.after_turn = after_turn
        """Called when a turn ends, however it ends (the outbox is kicked here)."""

    async def begin(self, conversation_id: str, incoming: Incoming) -> TurnAccepted:
        await self.slots.acquire()
        opening = _Opening()
        try:
            turn = await self._start(conversation_id, incoming, opening)
        except BaseException:
            self.openings.close(conversation_id, opening)
            self.slots.release()
            raise
        self.openings.close(conversation_id, opening)
        go_on = asyncio.Event()
        task = asyncio.create_task(self._finish(conversation_id, turn, go_on))
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        try:
            # Nothing awaits between the first commit and here, so `found` is this turn's.
            # It stays empty when a request for the same conversation took the slot in the
            # meantime (that one is refused as busy); then the database says.
            opened = opening.found or await self.store.turn_start(conversation_id)
        finally:
            go_on.set()
        number, first_seq = opened
        return TurnAccepted(conversation_id=conversation_id, turn=number, first_seq=first_seq)

    async def _start(
        self, conversation_id: str, incoming: Incoming, opening: _Opening
    ) -> AsyncIterator[Event]:
        """The turn, run up to its first stored event: the input is accepted, or refused."""
        delay = 0.01
        while True:
            self.openings.watch(conversation_id, opening)
            turn = aiter(self.agent.run_turn(conversation_id, incoming))
            try:
                with contextlib.suppress(StopAsyncIteration):
                    await anext(turn)
                return turn
            except ConversationBusy:
                # The previous turn freed the conversation in the commit that stored its
                # `turn_ended`; busy after that means another request's turn is starting
                # this moment (its first commit not yet seen): wait a little for the answer.
                if delay > 1.5 or not await self.store.last_turn_ended(conversation_id):
                    raise
                await asyncio.sleep(delay)
                delay *= 2

    async def _finish(
        self, conversation_id: str, turn: AsyncIterator[Event], go_on: asyncio.Event
    ) -> None:
        try:
            await go_on.wait()
            async for event in turn:
                if isinstance(event, ReplyChunk):
                    self.openings.relay.drafted(conversation_id, event.model_dump())
        except Exception:
            # The stored events stand; the lease is released; the client sees no turn_ended
            # and may send again.
            log.exception("turn of %s failed", conversation_id)
        finally:
            self.slots.release()
            self.after_turn()

    async def drain(self, grace_seconds: float) -> None:
        """Let running turns finish for up to `grace_seconds`, then cancel the rest."""
        if not self.running:
            return
        _done, pending = await asyncio.wait(set(self.running), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
