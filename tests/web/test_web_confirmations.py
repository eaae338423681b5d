"""A confirmation the customer answered in words is withdrawn: a later approval is refused
and changes nothing; a bare yes right after the request still approves it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from web_support import (
    JANE_RETURN,
    KEPT,
    LABEL_EMAILED,
    NEVER_MIND,
    SHORT_STREAMS,
    Api,
    count,
    create_conversation,
    history,
    open_api,
    read_stream,
    say,
)

from db import (
    Confirmation,
    ConfirmationStatus,
    Conversation,
    Event,
    OutboxEmail,
    Return,
    ShippingLabel,
)
from shopbot.config import Settings


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async for opened in open_api(settings, SHORT_STREAMS):
        yield opened


async def test_answering_in_words_withdraws_the_request(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, JANE_RETURN)
    asked = (await history(api, cid, auth))["pending_confirmation"]
    await say(api, cid, auth, NEVER_MIND)
    view = await history(api, cid, auth)
    assert view["pending_confirmation"] is None
    assert [m["text"] for m in view["messages"][-2:]] == [NEVER_MIND, KEPT]
    _body, seen = await read_stream(api.client, f"/v1/conversations/{cid}/events", auth)
    withdrawn = [e.json() for e in seen if e.event == "confirmation_withdrawn"]
    assert withdrawn == [
        {
            "seq": withdrawn[0]["seq"],
            "turn": 2,
            "kind": "confirmation_withdrawn",
            "confirmation_id": asked["confirmation_id"],
        }
    ]

    # The old Confirm button, pressed later: refused, and nothing happens.
    events, turns = await count(api, Event, Event.conversation_id == cid), view["turns"]
    late = await api.client.post(
        f"/v1/conversations/{cid}/confirmations/{asked['confirmation_id']}",
        json={"approve": True},
        headers=auth,
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "confirmation_withdrawn"
    assert "withdrawn" in late.json()["error"]["message"]
    await api.settle()
    assert await count(api, Return, Return.order_id == "482913") == 0
    assert await count(api, ShippingLabel) == 0
    assert await count(api, OutboxEmail) == 0
    assert await count(api, Event, Event.conversation_id == cid) == events
    async with api.backend.sessions() as session:
        conversation = await session.get(Conversation, cid)
        assert conversation is not None and conversation.turns == turns
        statuses = list(
            await session.scalars(
                select(Confirmation.status).where(Confirmation.conversation_id == cid)
            )
        )
    assert statuses == [ConfirmationStatus.WITHDRAWN]
    maildir = api.settings.data_dir / "maildir" / "new"
    assert not maildir.exists() or not list(maildir.iterdir())

    # Asked again, the customer can confirm the new request.
    await say(api, cid, auth, "OK, return the jeans from 482913 after all.")
    again = (await history(api, cid, auth))["pending_confirmation"]
    assert again is not None and again["confirmation_id"] != asked["confirmation_id"]
    confirmed = await api.client.post(
        f"/v1/conversations/{cid}/confirmations/{again['confirmation_id']}",
        json={"approve": True},
        headers=auth,
    )
    assert confirmed.status_code == 202
    await api.settle()
    assert (await history(api, cid, auth))["messages"][-1]["text"] == LABEL_EMAILED
    assert await count(api, Return, Return.order_id == "482913") == 1


async def test_a_typed_yes_right_after_the_request_still_approves_it(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, JANE_RETURN)
    await say(api, cid, auth, "Yes, please.")
    view = await history(api, cid, auth)
    assert view["messages"][-2]["text"].startswith("Yes, go ahead: Return Slim Fit Jeans")
    assert view["messages"][-1]["text"] == LABEL_EMAILED
    assert await count(api, Return, Return.order_id == "482913") == 1
