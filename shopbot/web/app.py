"""The widget backend as an ASGI app: `create_app(settings)`, one per worker.

Nothing lives in a worker's memory between requests but caches of the database: any worker
serves any request of any conversation, and `shopbot serve --workers N` (or N machines
behind a load balancer) needs only the shared database.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, SecretStr
from pydantic_core import to_jsonable_python
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import utcnow
from db.engine import bound_engine, create_engine, is_sqlite, session_factory
from shopbot.app import build_agent, build_model, open_services
from shopbot.config import Settings
from shopbot.handoff import Handoff
from shopbot.models.base import ChatModel
from shopbot.otlp import install as install_traces
from shopbot.signing_keys import CONVERSATION, STAFF_SESSION, secret_value, with_identity_secret
from shopbot.turns import MessageRate
from shopbot.web import api, conversation_page, signin, staff, staff_pages, stream
from shopbot.web.accounts import StaffAccounts
from shopbot.web.backend import Backend
from shopbot.web.config import WebConfig, web_config
from shopbot.web.csrf import SignInNonces
from shopbot.web.docs import docs_router
from shopbot.web.errors import install_error_handlers
from shopbot.web.feed import EventFeed, PostgresRelay, Relay, SqliteTail
from shopbot.web.limits import Limiter, MemoryLimiter, SqlLimiter
from shopbot.web.logs import quiet_payload_loggers
from shopbot.web.middleware import BodyLimit
from shopbot.web.outbox import OutboxKicker
from shopbot.web.pages import install_page_handlers
from shopbot.web.runner import Openings, TurnRunner
from shopbot.web.schemas import Health
from shopbot.web.sessions import StaffSessions
from shopbot.web.store import EventStore, reader_engine
from shopbot.web.tokens import ConversationTokens
from shopbot.web.widget import widget_router
from tools import Services

log = logging.getLogger(__name__)

SHUTDOWN_STEP_SECONDS = 10.0
SETTINGS_ENV = "SHOPBOT_SERVE_SETTINGS"
"""How `serve` hands its settings to worker processes (JSON)."""

DESCRIPTION = """\
The chat widget's backend. Start a conversation to get its token, send messages, and follow
the replies on the conversation's event stream (server-sent events, resumable with
Last-Event-ID). Errors are `{"error": {"code", "message"}}` with stable codes.

Two audiences: a conversation's token opens what its customer may see (messages, replies,
confirmations); the agent's steps, verdicts, observations and raw output are on the `staff`
routes, opened by the shop's staff token (or a staff member signed in at `/staff/login`).
"""


ServicesFactory = Callable[
    [Settings, async_sessionmaker[AsyncSession]], AbstractAsyncContextManager[Services]
]
"""Opens the tools' outside world for the app's lifetime (default `shopbot.app.open_services`)."""


def create_app(
    settings: Settings,
    *,
    model: ChatModel | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    services: Services | ServicesFactory | None = None,
    web: WebConfig | None = None,
    clock: Callable[[], datetime] = utcnow,
    password_hasher: PasswordHasher | None = None,
    tune_gc: bool = False,
) -> FastAPI:
    """The app; `model`, `sessions` and `services` default to what `settings` name.

    Unset signing secrets are read from the data dir, generated there on first use
    (`shopbot.signing_keys`). Libraries that log payloads at DEBUG are kept quiet unless
    configured by name (`shopbot.web.logs.quiet_payload_loggers`).

    `services` may be ready (the caller closes them) or a factory opened at startup; the
    agent, built whole, and the backend are assembled then (`app.state.backend`).
    `password_hasher` hashes staff passwords (default: argon2-cffi's, RFC 9106 low-memory).
    `tune_gc` tunes the garbage collector of the whole process for serving once start-up is
    done (`_settle_gc`): a worker process of `shopbot serve` asks for it, not a test or an
    embedding program.
    """
    web = web or web_config(settings)
    quiet_payload_loggers()
    # Resolved once: secrets left unset come from the data dir (`signing_keys`).
    settings = with_identity_secret(settings)
    conversation_secret = secret_value(web.conversation_secret, settings.data_dir, CONVERSATION)
    staff_secret = secret_value(web.staff_session_secret, settings.data_dir, STAFF_SESSION)
    owned: list[AsyncEngine] = []
    running = web.max_running_turns or (4 if is_sqlite(settings.db_url) else 8)
    if sessions is None:
        # A fixed pool: overflow connections would be opened and closed with every burst
        # (on SQLite each is a thread and a file open).
        size = running + 2 if is_sqlite(settings.db_url) else web.pool_size
        in_memory = make_url(settings.db_url).database in (None, "", ":memory:")
        pool = {} if in_memory else {"pool_size": size, "max_overflow": 0}
        owned.append(create_engine(settings.db_url, **pool))
        sessions = session_factory(owned[-1])
    engine = _engine_of(sessions)
    sqlite = engine.dialect.name == "sqlite"
    # Reads need no transaction: on PostgreSQL one would cost a BEGIN and a ROLLBACK, two
    # round trips of the three a stream's read would take.
    reads = (
        reader_engine(engine.url, web.pool_size)
        if sqlite
        else engine.execution_options(isolation_level="AUTOCOMMIT")
    )
    if sqlite:
        owned.append(reads)
    model = model or build_model(settings)
    feed = EventFeed()
    relay: Relay = (
        SqliteTail(feed, reads, web.tail_seconds) if sqlite else PostgresRelay(feed, engine.url)
    )
    openings = Openings(relay)
    store = EventStore(reads)
    limiter: Limiter = (
        SqlLimiter(sessions) if web.rate_limit_store == "database" else MemoryLimiter()
    )
    factory: ServicesFactory = (
        open_services if services is None or isinstance(services, Services) else services
    )

    def assemble(opened: Services, kicker: OutboxKicker | None) -> Backend:
        """The backend, with an agent built whole once the tools' services are open."""
        agent = build_agent(
            settings,
            model,
            sessions,
            opened,
            clock=clock,
            message_rate=MessageRate(web.messages_per_conversation_per_minute),
            on_stored=openings.stored,
            announce=relay.notice,
        )
        return Backend(
            settings=settings,
            web=web,
            sessions=sessions,
            store=store,
            feed=feed,
            relay=relay,
            # A turn's end kicks the outbox, if this worker delivers email.
            runner=TurnRunner(
                agent, store, openings, running, kicker.kick if kicker else lambda: None
            ),
            tokens=ConversationTokens(conversation_secret, web.conversation_token_ttl_seconds),
            limiter=limiter,
            clock=clock,
            accounts=StaffAccounts(sessions, password_hasher),
            staff_sessions=StaffSessions(
                staff_secret,
                sessions,
                reads,
                clock,
                idle=timedelta(minutes=web.staff_session_idle_minutes),
                lifetime=timedelta(hours=web.staff_session_max_hours),
            ),
            signin_nonces=SignInNonces(staff_secret),
            handoff=Handoff(agent),
            streams_closing=anyio.Event(),
        )

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncGenerator[None]:
        async with AsyncExitStack() as stack:
            # Each worker its own exporter (its batching thread would not survive a fork);
            # flushed last, after the running turns have finished.
            traces = install_traces(settings)
            if traces is not None:
                flush = partial(asyncio.to_thread, traces.shutdown)
                stack.push_async_callback(_bounded, flush, "flushing traces")
            for owned_engine in owned:
                stack.push_async_callback(_bounded, owned_engine.dispose, "closing the database")
            opened = (
                services
                if isinstance(services, Services)
                else await stack.enter_async_context(factory(settings, sessions))
            )
            kicker = None
            if opened.outbox is not None:
                kicker = OutboxKicker(opened.outbox)
                await kicker.start()
                stack.push_async_callback(_bounded, kicker.stop, "stopping the outbox")
            backend = assemble(opened, kicker)
            served.state.backend = backend
            await relay.start()
            stack.push_async_callback(_bounded, relay.stop, "stopping the event relay")
            closer = asyncio.create_task(_close_on(backend.streams_closing, feed))
            stack.callback(closer.cancel)
            # Last in, first out: running turns finish before what they use closes.
            stack.push_async_callback(backend.runner.drain, web.shutdown_grace_seconds)
            if tune_gc:
                _settle_gc()
            yield

    app = FastAPI(
        title="ShopBot",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from a package, not a CDN: `shopbot.web.docs`
        redoc_url=None,
    )
    install_error_handlers(app)
    install_page_handlers(app)
    app.include_router(api.router)
    app.include_router(stream.router)
    app.include_router(staff.router)
    app.include_router(signin.router)
    app.include_router(staff_pages.router)
    app.include_router(conversation_page.router)
    app.include_router(docs_router(title="ShopBot"))
    app.include_router(widget_router(demo=web.demo))

    @app.get("/healthz", response_model=Health, tags=["operations"], summary="Liveness")
    async def healthz() -> Health:
        """Answers when this worker can reach the database."""
        async with reads.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return Health(status="ok")

    app.add_middleware(BodyLimit, max_bytes=web.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=web.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
    return app


YOUNG_GC_THRESHOLD = 10_000
"""Allocations between young collections in a serving worker (CPython's default: 700)."""
_gc_settled = False


def _settle_gc() -> None:
    """Once per worker process, when start-up is done, tune the garbage collector for
    serving (measured on CPython 3.11 with the widget benchmark: BENCHMARKS.md, "Session 7").

    Freeze what start-up built (modules, the app, the services: ~165k objects), so full
    passes leave it out: each walked them all, 50-160 ms with the worker stopped, every few
    seconds under load. Refcounting still frees frozen objects; only a reference cycle among
    them would never be collected. And collect the young generation less often: a turn's
    short-lived objects then mostly die by refcount before a pass sees them, and the
    collector's CPU a turn drops several times, for young passes of a few ms instead of
    under one."""
    global _gc_settled
    if not _gc_settled:
        gc.collect()  # what is garbage now is not frozen with the rest
        gc.freeze()
        _, middle, old = gc.get_threshold()
        gc.set_threshold(YOUNG_GC_THRESHOLD, middle, old)
        _gc_settled = True


async def _close_on(shutdown: anyio.Event, feed: EventFeed) -> None:
    """End this worker's streams cleanly once the server starts shutting down."""
    await shutdown.wait()
    feed.close()


async def _bounded(close: Callable[[], Awaitable[object]], what: str) -> None:
    """Shutdown steps get a deadline: a stuck one is logged, and shutdown goes on."""
    try:
        await asyncio.wait_for(close(), SHUTDOWN_STEP_SECONDS)
    except TimeoutError:
        log.warning("shutdown: %s took over %.0f s; going on", what, SHUTDOWN_STEP_SECONDS)


def _version() -> str:
    try:
        return version("shopbot")
    except PackageNotFoundError:
        return "0"


def _engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    engine = bound_engine(sessions)
    if engine is None:
        raise TypeError("create_app needs sessions bound to an AsyncEngine")
    return engine


def app_from_env() -> FastAPI:
    """The uvicorn factory each worker calls: settings from `serve`, else the environment."""
    handed = os.environ.get(SETTINGS_ENV)
    settings = (
        Settings(_env_file=None, **json.loads(handed))  # type: ignore[call-arg]
        if handed
        else Settings()
    )
    return create_app(settings, tune_gc=True)


def settings_json(settings: Settings) -> str:
    """`settings` as JSON with secrets in clear, for worker processes (never log it)."""
    return json.dumps(to_jsonable_python(_reveal(settings)))


def _reveal(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, BaseModel):
            value = _reveal(value)
        out[name] = value
    return out
