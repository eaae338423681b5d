"""Event streams over real HTTP (uvicorn on loopback): resume, isolation, several workers."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from web_support import (
    JANE_RETURN,
    TEST_WEB,
    ShopModel,
    Sse,
    create_conversation,
    serve_in_thread,
    services_for_tests,
    sse_events,
)

from db import Event
from db.engine import create_engine, session_factory
from shopbot.config import Settings
from shopbot.web import WebConfig, create_app


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
    engine = create_engine(settings.db_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(
                select(Event).where(Event.conversation_id == cid).order_by(Event.seq)
            )
            return [{"seq": r.seq, "turn": r.turn, **r.payload} for r in rows]
    finally:
        await engine.dispose()


async def follow(
    client: httpx.AsyncClient,
    cid: str,
    auth: dict[str, str],
    *,
    after: int = 0,
    stop_after: int | None = None,
    until_turn_ends: int = 1,
) -> list[Sse]:
    """Read the stream from `after` until `stop_after` events or `until_turn_ends` turns end."""
    got: list[Sse] = []
    headers = {**auth, "Last-Event-ID": str(after)}
    ended = 0
    async with client.stream("GET", f"/v1/conversations/{cid}/events", headers=headers) as r:
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
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert [e.id for e in before + after] == [str(e["seq"]) for e in seen]
    assert [e.event for e in before + after] == [e["kind"] for e in seen]
    assert seen == await stored_events(settings, cid)
    assert seen[-1]["kind"] == "turn_ended"
    assert "confirmation_requested" in [e["kind"] for e in seen]


async def test_every_cut_point_gives_every_event_exactly_once(
    workers: list[str], settings: Settings
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
            seen += await follow(client, cid, auth, after=last, stop_after=1)
    stored = await stored_events(settings, cid)
    assert [e.json() for e in seen] == stored


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
    assert [e.json() for e in got_a] == await stored_events(settings, a)
    assert [e.json() for e in got_b] == await stored_events(settings, b)
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
    assert got[0].id == "2"
    assert [e.json() for e in got] == (await stored_events(settings, cid))[1:]


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


async def test_the_default_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopbot.web.config import web_config

    monkeypatch.setenv("SHOPBOT_WEB__CORS_ORIGINS", '["https://shop.example"]')
    monkeypatch.setenv("SHOPBOT_WEB__MESSAGES_PER_CONVERSATION_PER_MINUTE", "7")
    found = web_config(Settings(_env_file=None))  # type: ignore[call-arg]
    assert found.cors_origins == ["https://shop.example"]
    assert found.messages_per_conversation_per_minute == 7
    assert WebConfig().cors_origins == []
