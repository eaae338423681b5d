"""The staff inbox: search and filters as GET parameters, bad parameters, and the inbox's own
event stream (an escalation reaches an open inbox on another worker within a second)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from test_web_staff import csrf_of, sign_in
from web_support import (
    ASKS_FOR_A_PERSON,
    ESCALATION_REASON,
    FAST_HASHER,
    JANE_RETURN,
    STAFF_AUTH,
    STAFF_PASSWORD,
    TEST_WEB,
    Api,
    Sse,
    create_conversation,
    escalating_app,
    open_api,
    say,
    serve_in_thread,
    sse_events,
)

from db import ActionLog, Event, utcnow
from db.engine import create_engine, session_factory
from shopbot.config import Settings
from shopbot.web.accounts import StaffAccounts
from shopbot.web.feed import EventFeed
from shopbot.web.inbox_query import BadInboxQuery, InboxQuery, SearchKind
from shopbot.web.store import StoredEvent

STEP: dict[str, Any] = {"turn": 1, "step": 9, "raw_output": "{}"}
LOOKUP_DENIED = STEP | {"tool": "lookup_order", "verdict": "deny", "reason": "not proven"}
REPLY_FLAGGED = STEP | {"tool": "reply", "verdict": "allow", "flags": ["ungrounded_claim"]}
TYPO = "I want to return order 482913, my email is someone@else.example"


async def floor(staff_api: Api) -> dict[str, str]:
    """Four live conversations, each found by something else."""
    found: dict[str, str] = {}
    for name, said in [
        ("jane", JANE_RETURN),  # verified as Jane Doe; the return awaits her confirmation
        ("person", ASKS_FOR_A_PERSON),  # escalated
        ("typo", TYPO),  # a failed check with order 482913 and someone else's address
        ("quiet", "Where is my parcel?"),
    ]:
        cid, auth = await create_conversation(staff_api.client)
        await say(staff_api, cid, auth, said)
        found[name] = cid
    async with staff_api.backend.sessions() as session:
        # What a grounding check and the guard leave in the audit log; the models of these
        # tests never make a policy claim or propose a forbidden action.
        session.add_all(
            [
                ActionLog(conversation_id=found["quiet"], **LOOKUP_DENIED),
                ActionLog(conversation_id=found["person"], **REPLY_FLAGGED),
            ]
        )
        await session.commit()
    await sign_in(staff_api.client)
    return found


async def listed(staff_api: Api, params: dict[str, str] | None = None) -> list[str]:
    page = await staff_api.client.get("/staff", params=params or {})
    assert page.status_code == 200, page.text
    return re.findall(r'data-conversation="([^"]+)"', page.text)


async def test_search_and_filters_narrow_the_inbox(staff_api: Api) -> None:
    c = await floor(staff_api)
    everyone = await listed(staff_api)
    assert everyone[0] == c["person"] and set(everyone) == set(c.values())
    cases: list[tuple[dict[str, str], set[str]]] = [
        ({"q": "482913"}, {c["jane"], c["typo"]}),  # proven with it; named in a step
        ({"q": "#482913"}, {c["jane"], c["typo"]}),
        ({"q": "jane.doe@example.com"}, {c["jane"]}),  # the account's email
        ({"q": " JANE.Doe@Example.com "}, {c["jane"]}),
        ({"q": "someone@else.example"}, {c["typo"]}),  # typed: found by its keyed hash
        ({"q": "doe"}, {c["jane"]}),
        ({"q": "Jane   Doe"}, {c["jane"]}),
        ({"q": "nobody"}, set()),
        ({"q": "999999"}, set()),
        ({"escalated": "1"}, {c["person"]}),
        ({"confirming": "on"}, {c["jane"]}),
        ({"denied": "1"}, {c["quiet"]}),
        ({"flagged": "true"}, {c["person"]}),
        ({"q": "482913", "confirming": "1"}, {c["jane"]}),
        ({"q": "482913", "escalated": "1"}, set()),
        ({"escalated": "0", "denied": ""}, set(c.values())),
    ]
    for params, expected in cases:
        assert set(await listed(staff_api, params)) == expected, params

    home = await staff_api.client.get("/staff")

    def marks(cid: str) -> list[str]:
        row = home.text.split(f'data-conversation="{cid}"')[1].split("</tr>")[0]
        return re.findall(r'data-mark="(\w+)"', row)

    assert [marks(c[name]) for name in ("jane", "person", "typo", "quiet")] == [
        ["confirming"],
        ["flagged"],
        [],
        ["denied"],
    ]
    assert ">Awaiting confirmation</span>" in home.text

    page = await staff_api.client.get("/staff", params={"q": "482913", "confirming": "1"})
    assert "matching order &#39;482913&#39;, open confirmation" in page.text
    assert f'href="/staff/conversations/{c["jane"]}"' in page.text
    assert 'data-stream="/staff/inbox/events?q=482913&amp;confirming=1"' in page.text
    assert 'name="confirming" value="1" checked>' in page.text, "the form keeps the query"
    assert 'name="escalated" value="1">' in page.text
    assert 'id="q" name="q" value="482913"' in page.text
    empty = await staff_api.client.get("/staff", params={"q": "nobody"})
    assert "No live conversation matches name &#39;nobody&#39;." in empty.text


async def test_a_typed_address_is_searched_by_its_hash_never_stored_in_clear(
    staff_api: Api,
) -> None:
    c = await floor(staff_api)
    async with staff_api.backend.sessions() as session:
        rows = (
            await session.scalars(select(ActionLog).where(ActionLog.conversation_id == c["typo"]))
        ).all()
    hashed = [r.args["email_hash"] for r in rows if r.args and "email_hash" in r.args]
    assert hashed == [staff_api.backend.runner.agent.pii.email_hash("Someone@Else.example")]
    assert all("someone@else.example" not in repr(r.args) for r in rows)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"escalated": "maybe"}, "The filter escalated=&#39;maybe&#39; is neither on nor off"),
        ({"sort": "new"}, "The inbox has no parameter &#39;sort&#39;"),
        ({"q": "x"}, "a name is two letters or more"),
        ({"q": "jane@"}, "has an @ but is not an email address"),
        ({"q": "order 482913"}, "has digits but is not an order number"),
        ({"q": "j" * 101}, "at most 100"),
        ({"q": "Jane\x07"}, "control characters"),
    ],
)
async def test_bad_parameters_get_a_clear_message_and_no_list(
    staff_api: Api, params: dict[str, str], message: str
) -> None:
    await create_conversation(staff_api.client)
    await sign_in(staff_api.client)
    page = await staff_api.client.get("/staff", params=params)
    assert page.status_code == 400
    assert message in page.text
    assert "data-conversation" not in page.text and "inbox-list" not in page.text
    stream = await staff_api.client.get("/staff/inbox/events", params=params)
    assert stream.status_code == 422
    assert stream.json()["error"]["code"] == "validation_error"


async def test_a_repeated_parameter_is_refused(staff_api: Api) -> None:
    await sign_in(staff_api.client)
    page = await staff_api.client.get("/staff?q=jane&q=doe")
    assert page.status_code == 400 and "is given twice" in page.text


async def test_the_inbox_stream_is_for_staff_only(staff_api: Api) -> None:
    cid, auth = await create_conversation(staff_api.client)
    await say(staff_api, cid, auth, "hello")
    for headers in [auth, {}]:
        refused = await staff_api.client.get("/staff/inbox/events", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_token"
    # The page itself sends anyone but a signed-in member to sign in.
    assert (await staff_api.client.get("/staff", headers=auth)).status_code == 303


def test_the_query_parser_tells_the_kinds_apart() -> None:
    assert InboxQuery.parse([]) == InboxQuery()
    assert InboxQuery.parse([("q", "#W2611340")]).kind is SearchKind.ORDER
    assert InboxQuery.parse([("q", "a.b@c.de")]).kind is SearchKind.EMAIL
    assert InboxQuery.parse([("q", "Anne-Marie O'Neil")]).kind is SearchKind.NAME
    parsed = InboxQuery.parse([("q", "  482913 "), ("escalated", "1")])
    assert parsed.params() == {"q": "482913", "escalated": "1"}
    assert parsed.query_string() == "?q=482913&escalated=1"
    with pytest.raises(BadInboxQuery):
        InboxQuery.parse([("q", "1; drop table")])


def test_the_feed_wakes_open_inboxes_for_news_they_may_show() -> None:
    feed = EventFeed()
    assert not feed.watching("c1")
    with feed.watch_inbox() as watch:
        assert feed.watching("c1") and feed.watched == 1
        feed.push("c1", [StoredEvent(1, 1, "thought", {}), StoredEvent(2, 1, "action", {})])
        assert not watch.woken.is_set(), "a step in the middle of a turn shows nothing"
        feed.push("c1", [StoredEvent(3, 1, "escalated", {"kind": "escalated"})])
        assert watch.woken.is_set()
        watch.woken.clear()
        feed.wake("c2")  # news from another worker, not known what
        assert watch.woken.is_set()
    assert not feed.inboxes and not feed.watching("c1")


async def first_with(events: AsyncIterator[Sse], text: str) -> tuple[str, datetime]:
    """The first inbox rendering that shows `text`, and when it arrived."""
    async with asyncio.timeout(10):
        async for event in events:
            if text in event.json()["html"]:
                return event.json()["html"], utcnow()
    raise AssertionError(f"the stream ended before showing {text!r}")


async def test_an_escalation_reaches_an_open_inbox_on_another_worker_within_a_second(
    settings: Settings,
) -> None:
    engine = create_engine(settings.db_url)
    try:
        await StaffAccounts(session_factory(engine), FAST_HASHER).add("Sam", STAFF_PASSWORD)
        with ExitStack() as stack:
            inbox_url, other_url = (
                stack.enter_context(serve_in_thread(escalating_app(settings))) for _ in range(2)
            )
            async with (
                httpx.AsyncClient(base_url=inbox_url, timeout=10) as staff,
                httpx.AsyncClient(base_url=other_url, timeout=10) as customer,
            ):
                assert (await sign_in(staff)).status_code == 303
                cid, auth = await create_conversation(customer)
                async with staff.stream("GET", "/staff/inbox/events") as stream:
                    assert stream.status_code == 200
                    events = sse_events(stream)
                    first = await anext(events)
                    assert (
                        first.event == "inbox" and "No live conversations" in first.json()["html"]
                    )
                    sent = await customer.post(
                        f"/v1/conversations/{cid}/messages",
                        json={"text": ASKS_FOR_A_PERSON},
                        headers=auth,
                    )
                    assert sent.status_code == 202
                    html, arrived = await first_with(events, ESCALATION_REASON)
                row = html.split(f'data-conversation="{cid}"')[1]
                assert "Escalated" in row.split("</tr>")[0]
        async with session_factory(engine)() as session:
            escalated_at = await session.scalar(
                select(Event.created_at).where(
                    Event.conversation_id == cid, Event.kind == "escalated"
                )
            )
        assert escalated_at is not None
        assert (arrived - escalated_at).total_seconds() < 1.0
    finally:
        await engine.dispose()


async def test_the_staff_token_opens_the_inbox_stream(settings: Settings) -> None:
    web = TEST_WEB.model_copy(update={"sse_max_seconds": 0.3})
    async for opened in open_api(settings, web):
        started = time.monotonic()
        response = await opened.client.get("/staff/inbox/events", headers=STAFF_AUTH)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "event: inbox" in response.text and time.monotonic() - started < 5


async def test_signing_out_ends_an_open_inbox_stream(settings: Settings) -> None:
    engine = create_engine(settings.db_url)
    try:
        await StaffAccounts(session_factory(engine), FAST_HASHER).add("Sam", STAFF_PASSWORD)
    finally:
        await engine.dispose()
    with serve_in_thread(escalating_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as staff:
            await sign_in(staff)
            csrf = csrf_of((await staff.get("/staff")).text)
            async with staff.stream("GET", "/staff/inbox/events") as stream:
                events = sse_events(stream)
                assert (await anext(events)).event == "inbox"
                out = await staff.post("/staff/logout", data={"csrf": csrf})
                assert out.status_code == 303
                async with asyncio.timeout(5):  # the next read, at the latest a poll away
                    rest = [event async for event in events]
            assert rest == []
            again = await staff.get("/staff/inbox/events")
            assert again.status_code == 401, "EventSource's reconnect is refused"
