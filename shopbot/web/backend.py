"""Everything a request handler needs, assembled once per worker at `create_app`'s start-up
(the agent needs the tools' services, opened then)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shopbot.config import Settings
from shopbot.handoff import Handoff
from shopbot.web.accounts import StaffAccounts
from shopbot.web.config import WebConfig
from shopbot.web.csrf import SignInNonces
from shopbot.web.feed import EventFeed, Relay
from shopbot.web.limits import Limiter
from shopbot.web.runner import TurnRunner
from shopbot.web.sessions import StaffSessions
from shopbot.web.store import EventStore
from shopbot.web.tokens import ConversationTokens


@dataclass
class Backend:
    settings: Settings
    web: WebConfig
    sessions: async_sessionmaker[AsyncSession]
    store: EventStore
    feed: EventFeed
    relay: Relay
    runner: TurnRunner
    tokens: ConversationTokens
    limiter: Limiter
    clock: Callable[[], datetime]
    accounts: StaffAccounts
    staff_sessions: StaffSessions
    signin_nonces: SignInNonces
    handoff: Handoff
    """Staff members taking conversations over from ShopBot, writing, handing back."""
    streams_closing: anyio.Event
    """Set (by sse-starlette) when the server shuts down."""


async def get_backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


BackendDep = Annotated[Backend, Depends(get_backend)]
