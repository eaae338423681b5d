"""Turns run in the background of the worker that accepted them.

`begin` runs a turn up to its first stored event, so a refused input (busy conversation, no
pending confirmation, a message too long) is answered on the request itself; the rest of the
turn then runs in a task while the request returns 202. Every event is in the database before
the turn yields it, so any worker's stream can serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from shopbot.errors import ConversationBusy
from shopbot.events import Event
from shopbot.loop import Agent, Incoming
from shopbot.web.feed import Relay
from shopbot.web.schemas import TurnAccepted
from shopbot.web.store import EventStore

log = logging.getLogger(__name__)


class TurnRunner:
    def __init__(self, agent: Agent, store: EventStore, relay: Relay, max_running: int) -> None:
        self.agent = agent
        self.store = store
        self.relay = relay
        self.running: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(max_running)
        """Turns this worker runs at once; more wait here, in order, rather than in the
        database's lock queue or connection pool."""
        self.after_turn: Callable[[], None] = lambda: None
        """Called when a turn ends, however it ends (the outbox is kicked here)."""

    async def begin(self, conversation_id: str, incoming: Incoming) -> TurnAccepted:
        await self.slots.acquire()
        try:
            turn = await self._start(conversation_id, incoming)
        except BaseException:
            self.slots.release()
            raise
        self.relay.published(conversation_id)
        go_on = asyncio.Event()
        task = asyncio.create_task(self._finish(conversation_id, turn, go_on))
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        try:
            # The paused turn holds the lease, so the conversation's turn count is this turn.
            number, first_seq = await self.store.turn_start(conversation_id)
        finally:
            go_on.set()
        return TurnAccepted(conversation_id=conversation_id, turn=number, first_seq=first_seq)

    async def _start(self, conversation_id: str, incoming: Incoming) -> AsyncIterator[Event]:
        """The turn, run up to its first stored event: the input is accepted, or refused."""
        delay = 0.01
        while True:
            turn = aiter(self.agent.run_turn(conversation_id, incoming))
            try:
                with contextlib.suppress(StopAsyncIteration):
                    await anext(turn)
                return turn
            except ConversationBusy:
                # `turn_ended` is stored (and streamed) a moment before the turn gives its
                # lease back: a client answering at once is early, not concurrent.
                if delay > 1.5 or not await self.store.last_turn_ended(conversation_id):
                    raise
                await asyncio.sleep(delay)
                delay *= 2

    async def _finish(
        self, conversation_id: str, turn: AsyncIterator[Event], go_on: asyncio.Event
    ) -> None:
        try:
            await go_on.wait()
            async for _event in turn:
                self.relay.published(conversation_id)
        except Exception:
            # The stored events stand; the lease is released; the client sees no turn_ended
            # and may send again.
            log.exception("turn of %s failed", conversation_id)
        finally:
            self.slots.release()
            self.relay.published(conversation_id)
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
