"""A whole ShopBot against a fresh shop, for replays and evaluations.

`open_harness` assembles what a conversation needs beyond the database in `settings`: the
Parcelo carrier sandbox in process (with scripted faults), the outbox delivering to a real
SMTP server on loopback (`LoopbackInbox`, owned by the caller so one server can serve many
conversations), quick carrier retries, and the agent with the given model. Both
`shopbot.replay` (scripted conversations) and `shopbot.eval` (simulated customers) run on it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import utcnow
from shopbot.app import build_agent, open_database, open_services
from shopbot.config import Settings
from shopbot.loop import Agent
from shopbot.models.base import ChatModel
from tools import Services
from tools.mailer.loopback import LoopbackInbox


@dataclass
class Harness:
    agent: Agent
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    services: Services
    carrier_app: Any
    """The carrier sandbox (`tools.carrier.sandbox_state(app).labels`: what it issued)."""
    outbox: Any
    """The `Dispatcher` delivering to the loopback inbox."""

    def carrier_labels(self) -> int:
        from tools.carrier import sandbox_state

        return len(sandbox_state(self.carrier_app).labels)


@asynccontextmanager
async def open_harness(
    settings: Settings,
    model: ChatModel,
    *,
    inbox: LoopbackInbox,
    policy: Any = None,
    faults: Any = None,
    clock: Callable[[], datetime] = utcnow,
) -> AsyncGenerator[Harness]:
    """The agent on the database in `settings` (a fresh, seeded one), emails to `inbox`.

    `faults` is a `tools.carrier.Faults` for the carrier sandbox; `clock` is the outbox
    dispatcher's (a replay moves it forward to get past a retry backoff)."""
    from tools.carrier import Backoff, Faults, create_sandbox_app
    from tools.mailer import Dispatcher, SmtpSender

    carrier_app = create_sandbox_app(
        faults or Faults(), api_key=settings.carrier_api_key.get_secret_value()
    )
    settings = settings.model_copy(update={"smtp_url": inbox.url})
    engine, sessions = open_database(settings)
    try:
        outbox = Dispatcher(
            sessions, SmtpSender(inbox.url, timeout=5), mail_from=settings.mail_from, clock=clock
        )
        async with open_services(
            settings,
            sessions,
            policy=policy,
            carrier_app=carrier_app,
            # Quick retries: a replay or an evaluation should not wait out production backoffs.
            carrier_options={"attempt_timeout": 1.0, "backoff": Backoff(base=0.05, cap=0.2)},
            outbox=outbox,
        ) as services:
            agent = build_agent(settings, model, sessions, services)
            yield Harness(agent, sessions, settings, services, carrier_app, outbox)
    finally:
        await engine.dispose()


__all__ = ["Harness", "open_harness"]
