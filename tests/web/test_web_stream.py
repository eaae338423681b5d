"""Event streams over real HTTP (uvicorn on loopback): resume, isolation, several workers."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncGenerator, Generator
from contextlib import ExitStack, asynccontextmanager
from types import SimpleNamespace
from typing import Any, cast

import httpx
import psycopg
import pytest
from sqlalchemy import select, text
from sse_starlette.sse import AppStatus
from web_support import (
    JANE_RETURN,
    STAFF_AUTH,
    TEST_WEB,
    ShopModel,
    Sse,
    StreamingShopModel,
    create_conversation,
    serve_in_thread,
    services_for_tests,
    serving,
    sse_events,
)

from db import Event
from db.engine import create_engine, session_factory
from db.testing import DEFAULT_POSTGRES_URL, postgres_reachable
from shopbot.config import Settings
from shopbot.web import WebConfig, create_app
from shopbot.web import feed as feed_module
from shopbot.web.audience import CUSTOMER, STAFF, for_customer
from shopbot.web.feed import MAX_PAYLOAD, EventFeed, PostgresRelay, SqliteTail, Subscription
from shopbot.web.store import StoredEvent
from shopbot.web.stream import _events


@pytest.fixture
def workers(settings: Settings) -> Generator[list[str]]:
    """Two servers on one database: two workers, each with its own engine and memory."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                serve_in_thread(
                    create_app(
                        settings,
                        model=ShopModel(delay=0.05),
                        services=services_for_tests,
                        web=TEST_WEB,
                    )
                )
            )
            for _ in range(2)
        ]


async def stored_events(settings: Settings, cid: str) -> list[dict[str, Any]]:
    """Every stored event, as the staff stream sends it."""
    engine = create_engine(settings.db_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(
                select(Event).where(Event.conversation_id == cid).order_by(Event.seq)
            )
            return [{"seq": r.seq, "turn": r.turn, **r.payload} for r in rows]
    finally:
        await engine.dispose()


async def shown_events(settings: Settings, cid: str) -> list[dict[str, Any]]:
    """The stored events as the customer's stream sends them."""
    shown = [
        for_customer(StoredEvent(e["seq"], e["turn"], e["kind"], e))
        for e in await stored_events(settings, cid)
    ]
    return [e for e in shown if e is not None]


async def follow(
    client: httpx.AsyncClient,
    cid: str,
    auth: dict[str, str],
    *,
    after: int = 0,
    stop_after: int | None = None,
    until_turn_ends: int = 1,
    staff: bool = False,
) -> list[Sse]:
    """Read the stream from `after` until `stop_after` events or `until_turn_ends` turns end;
    the customer's stream, or with `staff` (and the staff token as `auth`) the staff's."""
    got: list[Sse] = []
    headers = {**auth, "Last-Event-ID": str(after)}
    ended = 0
    path = f"/v1/{'staff/' if staff else ''}conversations/{cid}/events"
    async with client.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for event in sse_events(r):
            got.append(event)
            ended += event.event == "turn_ended"
            if stop_after is not None and len(got) >= stop_after:
                break
            if ended >= until_turn_ends:
                break
    return got


async def test_a_cut_stream_resumes_on_another_worker_with_nothing_lost_or_repeated(
    workers: list[str], settings: Settings
) -> None:
    first, second = workers
    async with (
        httpx.AsyncClient(base_url=first, timeout=10) as a,
        httpx.AsyncClient(base_url=second, timeout=10) as b,
    ):
        cid, auth = await create_conversation(a)
        sent = await a.post(
            f"/v1/conversations/{cid}/messages", json={"text": JANE_RETURN}, headers=auth
        )
        assert sent.status_code == 202
        # Cut mid-reply: the turn is still running (each step takes 50 ms).
        before = await follow(a, cid, auth, stop_after=3)
        assert before[0].event == "customer_message"
        assert "turn_ended" not in [e.event for e in before]
        after = await follow(b, cid, auth, after=int(before[-1].id or 0))
    seen = [e.json() for e in before + after]
    assert [e.id for e in before + after] == [str(e["seq"]) for e in seen]
    assert [e.event for e in before + after] == [e["kind"] for e in seen]
    assert seen == await shown_events(settings, cid)
    assert seen[-1]["kind"] == "turn_ended"
    assert "confirmation_requested" in [e["kind"] for e in seen]


@pytest.mark.parametrize("staff", [False, True], ids=["customer", "staff"])
async def test_every_cut_point_gives_every_event_exactly_once(
    workers: list[str], settings: Settings, staff: bool
) -> None:
    """Reconnect after every single event, alternating workers, while the turn runs."""
    async with (
        httpx.AsyncClient(base_url=workers[0], timeout=10) as a,
        httpx.AsyncClient(base_url=workers[1], timeout=10) as b,
    ):
        cid, auth = await create_conversation(a)
        await b.post(f"/v1/conversations/{cid}/messages", json={"text": JANE_RETURN}, headers=auth)
        seen: list[Sse] = []
        while not seen or seen[-1].event != "turn_ended":
            client = (a, b)[len(seen) % 2]
            last = int(seen[-1].id or 0) if seen else 0
            seen += await follow(
                client, cid, STAFF_AUTH if staff else auth, after=last, stop_after=1, staff=staff
            )
    everything = await (stored_events if staff else shown_events)(settings, cid)
    assert [e.json() for e in seen] == everything


async def test_two_conversations_never_see_each_others_events(
    workers: list[str], settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=workers[0], timeout=10) as client:
        (a, auth_a), (b, auth_b) = [await create_conversation(client) for _ in range(2)]
        streams = [
            asyncio.create_task(follow(client, a, auth_a, until_turn_ends=2)),
            asyncio.create_task(follow(client, b, auth_b, until_turn_ends=2)),
        ]
        for text in ("Where is order 482913? jane.doe@example.com", "thanks"):
            await client.post(
                f"/v1/conversations/{a}/messages", json={"text": text}, headers=auth_a
            )
            await client.post(
                f"/v1/conversations/{b}/messages",
                json={"text": f"{text} (from b)"},
                headers=auth_b,
            )
            while True:
                views = [
                    (await client.get(f"/v1/conversations/{cid}", headers=auth)).json()
                    for cid, auth in ((a, auth_a), (b, auth_b))
                ]
                if not any(v["busy"] for v in views):
                    break
                await asyncio.sleep(0.05)
        got_a, got_b = await asyncio.gather(*streams)
        denied = await client.get(f"/v1/conversations/{b}/events", headers=auth_a)
        assert denied.status_code == 401
    assert [e.json() for e in got_a] == await shown_events(settings, a)
    assert [e.json() for e in got_b] == await shown_events(settings, b)
    texts_a = {e.json().get("text") for e in got_a}
    assert all("(from b)" not in (t or "") for t in texts_a)
    assert any("(from b)" in (e.json().get("text") or "") for e in got_b)


async def test_a_stream_accepts_the_token_in_the_query_and_after(
    workers: list[str], settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=workers[0], timeout=10) as client:
        cid, auth = await create_conversation(client)
        await client.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=auth)
        token = auth["Authorization"].removeprefix("Bearer ")
        got: list[Sse] = []
        async with client.stream(
            "GET", f"/v1/conversations/{cid}/events", params={"access_token": token, "after": 1}
        ) as r:
            async for event in sse_events(r):
                got.append(event)
                if event.event == "turn_ended":
                    break
        bad = await client.get(
            f"/v1/conversations/{cid}/events", headers={**auth, "Last-Event-ID": "seven"}
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "validation_error"
    assert [e.json() for e in got] == (await shown_events(settings, cid))[1:]
    assert got[0].event == "reply", "after the customer's message; the steps are not theirs"


async def test_streams_end_and_say_how_to_come_back(settings: Settings) -> None:
    web = TEST_WEB.model_copy(update={"sse_max_seconds": 0.3, "sse_ping_seconds": 0.1})
    app = create_app(settings, model=ShopModel(), services=services_for_tests, web=web)
    with serve_in_thread(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            cid, auth = await create_conversation(client)
            async with client.stream("GET", f"/v1/conversations/{cid}/events", headers=auth) as r:
                body = "".join([chunk async for chunk in r.aiter_text()])
    assert body.startswith(": shopbot\r\nretry: 1000\r\n\r\n")
    assert ": ping" in body


async def test_a_worker_shutting_down_ends_its_streams_cleanly(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # sse-starlette notes the shutdown process-wide: put it back for the tests after this one.
    monkeypatch.setattr(AppStatus, "should_exit", False)
    app = create_app(settings, model=ShopModel(), services=services_for_tests, web=TEST_WEB)
    with serving(app) as (url, server):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            cid, auth = await create_conversation(client)
            async with client.stream("GET", f"/v1/conversations/{cid}/events", headers=auth) as r:
                chunks: list[str] = []
                # A cut stream (no last chunk) would raise httpx.RemoteProtocolError here.
                async for chunk in r.aiter_text():
                    chunks.append(chunk)
                    if len(chunks) == 1:  # the stream is open: shut the worker down, as SIGTERM
                        server.handle_exit(signal.SIGTERM, None)
    assert "".join(chunks).startswith(": shopbot")
    assert "without completing response" not in caplog.text


async def test_the_default_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopbot.web.config import web_config

    monkeypatch.setenv("SHOPBOT_WEB__CORS_ORIGINS", '["https://shop.example"]')
    monkeypatch.setenv("SHOPBOT_WEB__MESSAGES_PER_CONVERSATION_PER_MINUTE", "7")
    found = web_config(Settings(_env_file=None))  # type: ignore[call-arg]
    assert found.cors_origins == ["https://shop.example"]
    assert found.messages_per_conversation_per_minute == 7
    assert WebConfig().cors_origins == []


async def test_a_reply_streams_live_to_every_worker_before_it_is_stored(
    settings: Settings, db_url: str
) -> None:
    """Drafts go to this worker's streams, and on PostgreSQL to the other workers' too."""
    model = StreamingShopModel()
    app = create_app(settings, model=model, services=services_for_tests, web=TEST_WEB)
    other = create_app(settings, model=ShopModel(), services=services_for_tests, web=TEST_WEB)
    with serve_in_thread(app) as url, serve_in_thread(other) as other_url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as a,
            httpx.AsyncClient(base_url=other_url, timeout=10) as b,
        ):
            cid, auth = await create_conversation(a)
            here = asyncio.create_task(follow(a, cid, auth))
            there = asyncio.create_task(follow(b, cid, auth))
            for _ in range(500):  # both streams are open before the turn starts
                if all(x.state.backend.feed.watched for x in (app, other)):
                    break
                await asyncio.sleep(0.01)
            await a.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=auth)
            streams = {"here": await here, "there": await there}
    stored = await shown_events(settings, cid)
    reply = next(e for e in stored if e["kind"] == "reply")
    for name, got in streams.items():
        drafts = [e for e in got if e.event == "reply_chunk"]
        assert [e.json() for e in got if e.event != "reply_chunk"] == stored, name
        if name == "there" and not db_url.startswith("postgresql"):
            assert drafts == [], "SQLite carries drafts only to the turn's own worker"
            continue
        assert len(drafts) > 1 and all(e.id is None for e in drafts), name
        assert "".join(e.json()["text"] for e in drafts) == reply["text"], name
        kinds = [e.event for e in got]
        assert kinds.index("reply") > max(i for i, k in enumerate(kinds) if k == "reply_chunk")


def test_pushed_events_are_used_only_when_nothing_is_missing() -> None:
    feed = EventFeed()
    with feed.subscribe("c") as sub:

        def push(*seqs: int) -> None:
            feed.push("c", [StoredEvent(s, 1, "thought", {}) for s in seqs])

        push(1, 2)
        assert sub.take_stored(after=0) is None, "a new stream reads what came before it"
        push(3, 4, 5)
        assert [e.seq for e in sub.take_stored(after=2) or []] == [3, 4, 5]
        push(4, 5, 6)  # 4 and 5 were already read from the database
        assert [e.seq for e in sub.take_stored(after=5) or []] == [6]
        assert sub.take_stored(after=6) == [], "nothing new and nothing from elsewhere: no read"
        push(8, 9)  # 7 came from elsewhere: read the database
        assert sub.take_stored(after=6) is None
        assert sub.take_stored(after=6) == [], "taken means gone"
        feed.wake("c")  # another worker's news
        push(7)
        assert sub.take_stored(after=6) is None
        # This worker's turn and another worker's NOTIFY may hand events over out of order.
        push(12)
        push(10, 11)
        push(11)
        assert [e.seq for e in sub.take_stored(after=9) or []] == [10, 11, 12]


async def _commit_with_notice(
    relay: PostgresRelay, cid: str, events: list[StoredEvent], *, roll_back: bool = False
) -> None:
    """Run the relay's notice for `events` in a transaction, as a turn's commit does."""
    rows = [{"seq": e.seq, "turn": e.turn, "kind": e.kind, "payload": e.payload} for e in events]
    notice = await relay.notice(cid, rows)
    assert notice is not None
    engine = create_engine(DEFAULT_POSTGRES_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text("SELECT pg_notify(:c, :p)"), {"c": notice.channel, "p": notice.payload}
            )
            await (conn.rollback() if roll_back else conn.commit())
    finally:
        await engine.dispose()


@asynccontextmanager
async def _two_workers(
    cid: str,
) -> AsyncGenerator[tuple[PostgresRelay, PostgresRelay, Subscription]]:
    """Two workers' relays on PostgreSQL, listening, and a stream of `cid` open on the second
    (its first wake-up, "look at the table", already taken)."""
    if why := postgres_reachable(DEFAULT_POSTGRES_URL):
        pytest.skip(why)
    here = PostgresRelay(EventFeed(), DEFAULT_POSTGRES_URL)
    there = PostgresRelay(EventFeed(), DEFAULT_POSTGRES_URL)
    with there.feed.subscribe(cid) as far:
        await here.start()
        await there.start()
        try:
            await asyncio.wait_for(far.woken.wait(), 10)  # listening: "look at the table"
            assert far.take_stored(after=0) is None
            far.woken.clear()
            yield here, there, far
        finally:
            await here.stop()
            await there.stop()


async def test_postgres_carries_a_commits_events_to_other_workers_when_they_fit() -> None:
    cid = uuid.uuid4().hex
    async with _two_workers(cid) as (here, _there, far):
        lost = StoredEvent(1, 1, "customer_message", {"text": "Never stored"})
        await _commit_with_notice(here, cid, [lost], roll_back=True)
        small = StoredEvent(1, 1, "customer_message", {"text": "Hi"})
        await _commit_with_notice(here, cid, [small])
        await asyncio.wait_for(far.woken.wait(), 10)
        assert far.take_stored(after=0) == [small], "only the committed news, no read"
        far.woken.clear()

        big = StoredEvent(2, 1, "reply", {"text": "x" * MAX_PAYLOAD})
        await _commit_with_notice(here, cid, [big])
        await asyncio.wait_for(far.woken.wait(), 10)
        assert far.take_stored(after=1) is None, "too big for a NOTIFY: read the table"


async def test_postgres_sends_a_replys_drafts_before_the_news_of_the_reply() -> None:
    cid = uuid.uuid4().hex
    order: list[str] = []
    async with _two_workers(cid) as (here, there, _far):
        push, draft = there.feed.push, there.feed.draft
        there.feed.push = lambda c, e: (order.append("reply"), push(c, e))[1]  # type: ignore[method-assign]
        there.feed.draft = lambda c, d: (order.append(d["text"]), draft(c, d))[1]  # type: ignore[method-assign]
        for piece in ("Your ", "label ", "is sent."):
            here.drafted(cid, {"kind": "reply_chunk", "step": 1, "text": piece})
        # No await between the drafts and the commit: the notice waits until they are sent.
        reply = {"seq": 1, "turn": 1, "kind": "reply", "payload": {"text": "..."}}
        await here.notice(cid, [reply])
        assert here.drafts_unsent == 0
        await _commit_with_notice(here, cid, [StoredEvent(1, 1, "reply", {"text": "..."})])
        for _ in range(1000):  # up to 10 s
            if len(order) == 4:
                break
            await asyncio.sleep(0.01)
        assert order == ["Your ", "label ", "is sent.", "reply"]


@pytest.mark.parametrize("audience", ["staff", "customer"])
async def test_a_long_history_streams_batch_after_batch_without_waiting(audience: str) -> None:
    """Also when most of it is kept from the customer: the stream moves past it at once."""
    history = [
        StoredEvent(seq, 1, "reply" if seq % 50 == 0 else "thought", {"text": "..."})
        for seq in range(1, 451)
    ]
    expected = [e.seq for e in history if audience == "staff" or e.kind == "reply"]

    class Store:
        async def after(self, conversation_id: str, seq: int, limit: int) -> list[StoredEvent]:
            return history[seq : seq + limit]

    web = TEST_WEB.model_copy(update={"sse_poll_seconds": 30.0})
    backend = SimpleNamespace(web=web, feed=EventFeed(), store=Store())
    got: list[str] = []

    async def follow() -> None:
        view = STAFF if audience == "staff" else CUSTOMER
        async for event in _events(cast(Any, backend), "c", 0, view):
            if event.id is not None:
                got.append(event.id)
            if len(got) == len(expected):
                return

    await asyncio.wait_for(follow(), 5)  # a stall would wait for the 30 s poll
    assert got == [str(seq) for seq in expected]


async def test_a_stalled_draft_sender_delays_no_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    async def stalled(*_args: object, **_kwargs: object) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(feed_module, "DRAFT_WAIT", 0.2)
    monkeypatch.setattr(feed_module, "SEND_SECONDS", 0.5)
    monkeypatch.setattr(psycopg.AsyncConnection, "connect", stalled)
    relay = PostgresRelay(EventFeed(), DEFAULT_POSTGRES_URL)
    relay.drafted("c", {"kind": "reply_chunk", "step": 1, "text": "Hi"})
    reply = {"seq": 1, "turn": 1, "kind": "reply", "payload": {"text": "Hi"}}
    started = time.monotonic()
    assert await relay.notice("c", [reply]) is not None
    assert time.monotonic() - started < 0.45, "waited DRAFT_WAIT, not the send"
    assert relay.drafts_unsent == 1
    started = time.monotonic()
    assert await relay.notice("other", [reply]) is not None  # no drafts of its own: no wait
    assert time.monotonic() - started < 0.1
    await asyncio.sleep(0.5)
    assert relay.drafts_unsent == 0, "the stalled send was given up at its deadline"
    await relay.stop()


async def test_a_turn_that_dies_mid_reply_leaves_nothing_of_its_drafts_behind() -> None:
    """Drafts whose reply is never stored (the turn died) are forgotten once sent: a worker
    does not keep one entry per conversation that ever died mid-reply."""
    if why := postgres_reachable(DEFAULT_POSTGRES_URL):
        pytest.skip(why)
    relay = PostgresRelay(EventFeed(), DEFAULT_POSTGRES_URL)
    for cid in ("died", "also died"):
        relay.drafted(cid, {"kind": "reply_chunk", "step": 1, "text": "Your label"})
    for _ in range(1000):  # up to 10 s
        if relay.drafts_unsent == 0:
            break
        await asyncio.sleep(0.01)
    assert relay.drafts_unsent == 0
    assert relay._last_draft == {}
    relay.drafted("alive", {"kind": "reply_chunk", "step": 1, "text": "Hi"})
    assert relay._last_draft == {"alive": 3}, "a draft not yet sent is remembered"
    await relay.stop()


class _SlowReads:
    """An engine stand-in whose every read takes a while and says whether it was cut off."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.finished = 0
        self.cancelled = 0

    @asynccontextmanager
    async def connect(self) -> AsyncGenerator[_SlowReads]:
        yield self

    async def scalar(self, _query: object) -> int:
        self.reading.set()
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return 0


async def test_the_sqlite_tail_stops_after_its_read_not_in_the_middle() -> None:
    """aiosqlite's thread would report a cancelled read to a loop that may be gone."""
    engine = _SlowReads()
    tail = SqliteTail(EventFeed(), cast(Any, engine), interval=0.01)
    await tail.start()
    await engine.reading.wait()
    started = time.monotonic()
    await tail.stop()
    assert (engine.finished, engine.cancelled) == (1, 0)
    assert time.monotonic() - started < 1.0, "it stopped after the read, not at a deadline"
    assert tail.task is None
