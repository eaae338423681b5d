"""Email delivery after turns: the outbox dispatcher, kicked when a turn ends.

A turn that writes an email (a return label) commits it to the outbox; the worker that ran
the turn then delivers what is due. Kicks coalesce and runs are spaced by `min_interval`, so a
busy worker does not poll the outbox once per turn; a slow sweep picks up retries whose time
has come and rows a crashed worker left behind. The dispatcher's claim on each row keeps
workers from sending one email twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

log = logging.getLogger(__name__)


class Deliverer(Protocol):
    async def deliver_due(self, limit: int = 100) -> object: ...


class OutboxKicker:
    def __init__(
        self, outbox: Deliverer, *, min_interval: float = 0.2, sweep_seconds: float = 30.0
    ) -> None:
        self.outbox = outbox
        self.min_interval = min_interval
        self.sweep_seconds = sweep_seconds
        self._kicked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._kicked.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shopbot-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kicked.wait(), self.sweep_seconds)
            self._kicked.clear()
            started = time.monotonic()
            try:
                await self.outbox.deliver_due()
            except Exception:
                log.exception("outbox delivery failed; the next kick or sweep retries")
            await asyncio.sleep(max(0.0, self.min_interval - (time.monotonic() - started)))
