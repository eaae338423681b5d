"""Test doubles and helpers for the widget backend's tests.

`ShopModel` is a FunctionModel-style chat model: it decides each step from the request alone
(the state summary, this turn's steps, the allowed tools and the hints), so one instance
serves any number of conversations on any worker, like a real model would.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import utcnow
from shopbot.app import open_services
from shopbot.config import Settings
from shopbot.models import base
from shopbot.models.base import ModelRequest, ModelStep, StepDelta, read_step
from shopbot.web import WebConfig, create_app
from shopbot.web.backend import Backend
from tools import Services
from tools.carrier import create_sandbox_app

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium: the browser tests drive it through Playwright (never a download)."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
JANE_RETURN = "Hi, I'd like to return the jeans from order 482913. My email is jane.doe@example.com"
LABEL_EMAILED = "Your return is registered and your return label has been emailed to you."
POLICY_ANSWER = "You can return items within 30 days of delivery."
NEVER_MIND = "Actually never mind, I'll keep them."
KEPT = "All right, I won't return anything."

_STEP = re.compile(r"^\d+\. (\{.*\})$")
_APPROVED = re.compile(r"^Confirmation approved: .* = (\{.*\})$", re.MULTILINE)


@dataclass(frozen=True)
class Seen:
    tool: str
    args: dict[str, Any]
    outcome: str

    @property
    def ok(self) -> bool:
        return not self.outcome.startswith(("DENIED", "ERROR")) and '"error"' not in self.outcome

    def data(self) -> dict[str, Any]:
        try:
            found = json.loads(self.outcome)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}


def act(tool: str, thought: str = "", **args: Any) -> str:
    return json.dumps({"thought": thought, "action": {"tool": tool, "args": args}})


def reply(message: str, citations: list[str] | None = None) -> str:
    return act("reply", message=message, citations=citations or [])


def steps_of(prompt: str) -> list[Seen]:
    """This turn's steps as the prompt shows them: `N. {action}` then `   -> outcome`."""
    section = prompt.split("This turn so far:\n", 1)
    if len(section) < 2:
        return []
    seen: list[Seen] = []
    lines = section[1].splitlines()
    for i, line in enumerate(lines):
        found = _STEP.match(line)
        if found is None:
            continue
        action = json.loads(found.group(1))
        outcome = lines[i + 1].strip().removeprefix("-> ") if i + 1 < len(lines) else ""
        seen.append(Seen(action["tool"], action.get("args", {}), outcome))
    return seen


def last_customer_text(prompt: str) -> str:
    said = [line for line in prompt.splitlines() if line.startswith("Customer: ")]
    return said[-1].removeprefix("Customer: ") if said else ""


@dataclass
class ShopModel:
    """Plays a competent agent for the demo shop's return and order-status stories."""

    delay: float = 0.0
    """Seconds each step "thinks": lets a test cut a stream in the middle of a turn."""
    calls: int = 0
    conversations: set[str] = field(default_factory=set[str])

    @property
    def name(self) -> str:
        return "shop-function-model"

    async def complete(self, request: ModelRequest) -> ModelStep:
        self.calls += 1
        self.conversations.add(request.conversation_id)
        if self.delay:
            await asyncio.sleep(self.delay)
        return read_step(self.decide(request))

    def decide(self, request: ModelRequest) -> str:
        prompt = str(request.messages[-1].content)
        steps = steps_of(prompt)
        done = {s.tool: s for s in steps}
        said = last_customer_text(prompt)
        verified = "State: customer verified" in prompt
        orders, emails = request.hints.get("order_id", []), request.hints.get("email", [])
        approved = _APPROVED.search(prompt)
        if any(not s.ok for s in steps):
            return reply("I'm sorry, I couldn't do that. Is there anything else I can help with?")
        if approved is not None:
            confirmed = json.loads(approved.group(1))
            return act(confirmed["tool"], "The customer confirmed.", **confirmed["args"])
        if "create_return" in done:
            return_id = done["create_return"].data().get("return_id")
            if "send_return_label" in request.allowed and "send_return_label" not in done:
                return act("send_return_label", "Now the label.", return_id=return_id)
            return reply(LABEL_EMAILED)
        if said.startswith("No, cancel"):
            return reply("All right, I've cancelled that. Anything else?")
        if "never mind" in said.lower():
            return reply(KEPT)
        if "search_policy" in done:
            hits = done["search_policy"].data().get("hits", [])
            return reply(POLICY_ANSWER, [hit["anchor"] for hit in hits[:1]])
        asks_policy = "policy" in said.lower() or "how long" in said.lower()
        if asks_policy and "search_policy" in request.allowed:
            return act("search_policy", "A policy question.", query=said[:200])
        if not verified:
            if orders and emails and "verify_identity" not in done:
                return act(
                    "verify_identity",
                    "Verify first.",
                    order_id=orders[-1].lstrip("#"),
                    email=emails[-1],
                )
            return reply("Could you tell me your order number and the email on that order?")
        order_id = orders[-1].lstrip("#") if orders else None
        if order_id and "return" in said.lower():
            if "check_return_eligibility" not in done:
                return act("check_return_eligibility", order_id=order_id, lines=[1])
            return act("create_return", order_id=order_id, lines=[1], reason="doesn't fit")
        if order_id and "lookup_order" not in done:
            return act("lookup_order", "Look it up.", order_id=order_id)
        if "lookup_order" in done:
            status = done["lookup_order"].data().get("status", "on its way")
            return reply(f"Order {order_id} is {status}.")
        return reply("Glad to help. Is there anything else?")


ASKS_FOR_A_PERSON = "Can I talk to a human, please?"
ESCALATION_REASON = "The customer asked for a person."


class Escalates(ShopModel):
    """`ShopModel`, but a customer who asks for a human is handed to one."""

    def decide(self, request: ModelRequest) -> str:
        if "human" in last_customer_text(str(request.messages[-1].content)):
            return act("escalate", "They want a person.", reason=ESCALATION_REASON)
        return super().decide(request)


@dataclass
class StreamingShopModel(ShopModel):
    """`ShopModel` that streams its steps a few characters at a time, as a real backend."""

    def stream(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]:
        return base.read_stream(self._pieces(request))

    async def _pieces(self, request: ModelRequest) -> AsyncGenerator[str]:
        raw = (await self.complete(request)).raw
        for start in range(0, len(raw), 6):
            yield raw[start : start + 6]
            await asyncio.sleep(0.001)


@dataclass(frozen=True)
class StubHit:
    document: str
    title: str
    section: str
    anchor: str
    text: str
    score: float


class StubPolicy:
    """The policy index, answering every question with the return-window section."""

    def search(self, query: str, k: int = 3) -> list[StubHit]:
        return [
            StubHit(
                document="returns.md",
                title="Returns policy",
                section="Return window",
                anchor="returns#return-window",
                text="Items can be returned within 30 days of delivery.",
                score=0.9,
            )
        ][:k]


@asynccontextmanager
async def services_for_tests(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncGenerator[Services]:
    """The real carrier sandbox and outbox (a Maildir in the data dir); a stub policy index."""
    carrier = create_sandbox_app(data_dir=settings.data_dir / "carrier")
    # The sandbox is a FastAPI app too: build its routes here, in the app's start-up, not at a
    # turn's first label while another test server may be building its own (serve_in_thread).
    transport = httpx.ASGITransport(app=carrier)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        await client.get("/-/warm-up")
    async with open_services(settings, sessions, policy=StubPolicy(), carrier_app=carrier) as s:
        yield s


@contextmanager
def serve_in_thread(app: FastAPI) -> Generator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yield its base URL."""
    with serving(app) as (url, _server):
        yield url


@contextmanager
def serving(app: FastAPI, **options: Any) -> Generator[tuple[str, uvicorn.Server]]:
    """`serve_in_thread`, yielding the server too (to shut it down from the test); `options`
    override the `uvicorn.Config` arguments."""
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "log_level": "warning",
        "timeout_graceful_shutdown": 2,
    }
    config = uvicorn.Config(app, **(defaults | options))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="shopbot-web", daemon=True)
    thread.start()
    give_up = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > give_up:
            server.should_exit = True
            raise RuntimeError("the web app did not start")
        time.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # FastAPI builds its routes at the first request, under `warnings.catch_warnings()`, which
    # is not thread-safe: two apps doing it at once in two threads can lose each other's
    # "ignore" and pytest's `error` filter turns a pydantic warning into a 500. One request
    # that matches no route builds them all, here, before the test makes any.
    httpx.get(f"{url}/-/warm-up", timeout=20)
    try:
        yield url, server
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass(frozen=True)
class Sse:
    id: str | None
    event: str | None
    data: str

    def json(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.data)
        return found


async def sse_events(response: httpx.Response) -> AsyncIterator[Sse]:
    """Parse a text/event-stream body into events (comments and retry-only blocks skipped)."""
    event_id: str | None = None
    kind: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Sse(event_id, kind, "\n".join(data))
            event_id, kind, data = None, None, []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)


async def read_stream(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[str, list[Sse]]:
    """A whole stream of an app with `SHORT_STREAMS` (it ends by itself): text and events."""
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return response.text, [event async for event in sse_events(response)]


async def create_conversation(
    client: httpx.AsyncClient, customer_token: str | None = None
) -> tuple[str, dict[str, str]]:
    body = {"customer_token": customer_token} if customer_token else {}
    response = await client.post("/v1/conversations", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    return created["conversation_id"], {"Authorization": f"Bearer {created['token']}"}


STAFF_TOKEN = "staff-token-for-the-tests"
STAFF_AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}

TEST_WEB = WebConfig(
    staff_token=SecretStr(STAFF_TOKEN),
    conversations_per_ip_per_minute=1000,
    messages_per_conversation_per_minute=1000,
    sse_poll_seconds=0.5,
    tail_seconds=0.02,
)


SHORT_STREAMS = TEST_WEB.model_copy(update={"sse_max_seconds": 0.3})
"""Streams end soon, so a test reads one whole with a plain GET (`read_stream`)."""
STAFF_PASSWORD = "harbor-and-pine-2026"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""Staff passwords hashed in microseconds: the real parameters take seconds on a busy CI."""


@dataclass
class Api:
    """An app run in process (lifespan included) and a client talking to it over ASGI."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    model: ShopModel

    @property
    def backend(self) -> Backend:
        backend: Backend = self.app.state.backend
        return backend

    async def settle(self) -> None:
        """Wait for the turns running in the background to end."""
        while self.backend.runner.running:
            await next(iter(self.backend.runner.running))


async def open_api(
    settings: Settings,
    web: WebConfig = TEST_WEB,
    *,
    model: ShopModel | None = None,
    base_url: str = "http://shopbot.test",
    clock: Callable[[], datetime] = utcnow,
) -> AsyncIterator[Api]:
    model = model or ShopModel()
    app = create_app(
        settings,
        model=model,
        services=services_for_tests,
        web=web,
        clock=clock,
        password_hasher=FAST_HASHER,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base_url) as client,
    ):
        backend: Backend = app.state.backend
        # The app's settings: its signing secrets resolved (from the data dir when unset).
        yield Api(app, client, backend.settings, model)


def escalating_app(settings: Settings) -> FastAPI:
    """An app to serve over HTTP whose model hands a customer who asks for a human to a
    person, with staff passwords checked fast."""
    return create_app(
        settings,
        model=Escalates(),
        services=services_for_tests,
        web=TEST_WEB,
        password_hasher=FAST_HASHER,
    )


# Driving a conversation through the API.


async def say(api: Api, cid: str, auth: dict[str, str], text: str) -> None:
    sent = await api.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": text}, headers=auth
    )
    assert sent.status_code == 202, sent.text
    await api.settle()


async def approve(api: Api, cid: str, auth: dict[str, str]) -> None:
    """Approve the pending confirmation, as the widget's Confirm button does, and let the
    turn run."""
    pending = (await history(api, cid, auth))["pending_confirmation"]
    approved = await api.client.post(
        f"/v1/conversations/{cid}/confirmations/{pending['confirmation_id']}",
        json={"approve": True},
        headers=auth,
    )
    assert approved.status_code == 202, approved.text
    await api.settle()


async def history(api: Api, cid: str, auth: dict[str, str]) -> dict[str, Any]:
    response = await api.client.get(f"/v1/conversations/{cid}", headers=auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def count(api: Api, table: Any, *where: Any) -> int:
    async with api.backend.sessions() as session:
        found = await session.scalar(select(func.count()).select_from(table).where(*where))
    return int(found or 0)
