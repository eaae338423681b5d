"""The conversation's staff page (audit trail) and human handoff through it, in process."""

from __future__ import annotations

import mailbox
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from web_support import (
    JANE_RETURN,
    SHORT_STREAMS,
    STAFF_PASSWORD,
    Api,
    create_conversation,
    history,
    open_api,
    read_stream,
    say,
)

from db import Conversation, ConversationStatus, Event, Return
from shopbot.config import Settings

BASE = "https://shopbot.test"


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    # https: the session cookie is Secure off loopback, and the client sends it back.
    async for opened in open_api(settings, SHORT_STREAMS, base_url=BASE):
        await opened.backend.accounts.add("Sam", STAFF_PASSWORD)
        await opened.backend.accounts.add("Alex", STAFF_PASSWORD)
        yield opened


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def signed_in(api: Api, name: str) -> tuple[httpx.AsyncClient, str]:
    """A browser of its own for staff member `name`, signed in; and its CSRF token."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=BASE)
    form = await client.get("/staff/login")
    fields = {"name": name, "password": STAFF_PASSWORD, "csrf": csrf_of(form.text)}
    done = await client.post("/staff/login", data=fields)
    assert done.status_code == 303, done.text
    inbox = await client.get("/staff")
    return client, csrf_of(inbox.text)


async def test_the_page_shows_every_step_readably_and_only_to_staff(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, JANE_RETURN)

    away = await api.client.get(f"/staff/conversations/{cid}")
    assert away.status_code == 303 and away.headers["location"].startswith("/staff/login")
    token_only = await api.client.get(f"/staff/conversations/{cid}", headers=auth)
    assert token_only.status_code == 303  # a conversation's token opens no staff page

    sam, _ = await signed_in(api, "Sam")
    inbox = await sam.get("/staff")
    assert f'href="/staff/conversations/{cid}"' in inbox.text
    page = await sam.get(f"/staff/conversations/{cid}")
    assert page.status_code == 200
    html = page.text
    for shown in (
        "verify_identity",  # the parsed action
        "Raw model output",  # collapsible raw output
        "<details>",
        '<span class="badge verdict">allow</span>',  # the guard's verdict
        "model ",  # timings
        "return the jeans from order 482913",  # the customer's message
        "Take over",
    ):
        assert shown in html, shown
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # no inline script
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    script = await sam.get("/staff/static/conversation.js")
    assert script.status_code == 200 and "EventSource" in script.text

    missing = await sam.get("/staff/conversations/no-such-conversation")
    assert missing.status_code == 404 and "no conversation with that id" in missing.text
    await sam.aclose()


async def test_a_person_takes_over_writes_and_hands_back(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, "Hello")
    sam, csrf = await signed_in(api, "Sam")
    base = f"/staff/conversations/{cid}"

    taken = await sam.post(f"{base}/take", data={"csrf": csrf})
    assert taken.status_code == 303 and taken.headers["location"] == base
    page = (await sam.get(base)).text
    assert "You hold this conversation" in page and "Hand back to ShopBot" in page

    assert (await history(api, cid, auth))["person"] == "Sam from Harbor & Pine"
    calls = api.model.calls
    await say(api, cid, auth, "Is anyone there?")
    assert api.model.calls == calls  # held: no model turn

    sent = await sam.post(f"{base}/reply", data={"csrf": csrf, "text": "Sam here, one moment."})
    assert sent.status_code == 303
    seen = await history(api, cid, auth)
    assert seen["messages"][-1] == {
        "role": "staff",
        "text": "Sam here, one moment.",
        "turn": seen["messages"][-1]["turn"],
        "seq": seen["messages"][-1]["seq"],
        "citations": [],
        "name": "Sam",
        "shop": "Harbor & Pine",
    }
    assert (await sam.post(f"{base}/hand-back", data={"csrf": csrf})).status_code == 303
    assert (await history(api, cid, auth))["person"] is None

    # The customer's stream: who joined, their words, who left; fixed fields, no staff id.
    _, events = await read_stream(api.client, f"/v1/conversations/{cid}/events", auth)
    staff = [e.json() for e in events if e.event and e.event.startswith("staff_")]
    assert [(e["kind"], set(e)) for e in staff] == [
        ("staff_joined", {"seq", "turn", "kind", "name", "shop"}),
        ("staff_message", {"seq", "turn", "kind", "name", "shop", "text"}),
        ("staff_left", {"seq", "turn", "kind", "name", "shop"}),
    ]
    # The staff stream has it all, the staff member's id included.
    staff_cookie_stream = await sam.get(f"/v1/staff/conversations/{cid}/events")
    assert '"staff_id"' in staff_cookie_stream.text
    assert '"Is anyone there?"' in staff_cookie_stream.text

    await say(api, cid, auth, "Thanks")
    assert api.model.calls > calls  # ShopBot answers again
    await sam.aclose()


async def test_refused_staff_posts_say_why_and_change_nothing(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, "Hello")
    sam, sam_csrf = await signed_in(api, "Sam")
    alex, alex_csrf = await signed_in(api, "Alex")
    base = f"/staff/conversations/{cid}"

    no_csrf = await sam.post(f"{base}/take", data={})
    assert no_csrf.status_code == 403 and "CSRF token" in no_csrf.text
    wrong = await sam.post(f"{base}/take", data={"csrf": alex_csrf})
    assert wrong.status_code == 403

    not_holder = await alex.post(f"{base}/reply", data={"csrf": alex_csrf, "text": "Hi"})
    assert not_holder.status_code == 409 and "take it over first" in not_holder.text

    assert (await sam.post(f"{base}/take", data={"csrf": sam_csrf})).status_code == 303
    second = await alex.post(f"{base}/take", data={"csrf": alex_csrf})
    assert second.status_code == 409
    assert "Sam has already taken this conversation over" in second.text
    assert "Sam holds this conversation" in (await alex.get(base)).text

    empty = await sam.post(f"{base}/reply", data={"csrf": sam_csrf, "text": "  "})
    assert empty.status_code == 422 and "Nothing was sent" in empty.text

    async with api.backend.sessions() as s:
        row = await s.get_one(Conversation, cid)
        row.status = ConversationStatus.CLOSED
        await s.commit()
        before = len(list(await s.scalars(Event.__table__.select())))
    closed = await sam.post(f"{base}/reply", data={"csrf": sam_csrf, "text": "Still there?"})
    assert closed.status_code == 409 and "closed" in closed.text
    async with api.backend.sessions() as s:
        assert len(list(await s.scalars(Event.__table__.select()))) == before
    await sam.aclose()
    await alex.aclose()


async def test_staff_create_the_return_and_send_its_label_from_the_page(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, JANE_RETURN)  # verified; the return waits for confirmation
    sam, csrf = await signed_in(api, "Sam")
    base = f"/staff/conversations/{cid}"
    assert (await sam.post(f"{base}/take", data={"csrf": csrf})).status_code == 303
    assert "Run a tool as Sam" in (await sam.get(base)).text

    not_json = await sam.post(
        f"{base}/tool", data={"csrf": csrf, "tool": "create_return", "args": "{order"}
    )
    assert not_json.status_code == 422 and "not JSON" in not_json.text
    args = '{"order_id": "482913", "lines": [1], "reason": "too small"}'
    created = await sam.post(
        f"{base}/tool", data={"csrf": csrf, "tool": "create_return", "args": args}
    )
    assert created.status_code == 303
    async with api.backend.sessions() as s:
        return_id = await s.scalar(select(Return.id).where(Return.conversation_id == cid))
    assert return_id is not None
    sent = await sam.post(
        f"{base}/tool",
        data={"csrf": csrf, "tool": "send_return_label", "args": f'{{"return_id": {return_id}}}'},
    )
    assert sent.status_code == 303
    page = (await sam.get(base)).text
    assert "Sam ran create_return (allowed): done." in page
    assert "Sam ran send_return_label (allowed): done." in page
    mails = list(mailbox.Maildir(api.settings.data_dir / "maildir", create=False))
    assert [m["To"] for m in mails] == ["jane.doe@example.com"]
    # The customer's stream says nothing of it: staff actions are for staff.
    _, events = await read_stream(api.client, f"/v1/conversations/{cid}/events", auth)
    assert not [e for e in events if e.event == "staff_tool"]
    await sam.aclose()
