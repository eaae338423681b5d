"""Two audiences: a customer's stream and history carry only what the customer may see; the
agent's work goes to staff, behind the staff token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any, get_args

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import select
from web_support import (
    JANE_RETURN,
    LABEL_EMAILED,
    SHORT_STREAMS,
    STAFF_AUTH,
    Api,
    ShopModel,
    act,
    approve,
    count,
    create_conversation,
    open_api,
    read_stream,
    say,
    services_for_tests,
    steps_of,
)

from db import ActionLog, Message
from shopbot.config import Settings
from shopbot.models.base import ModelRequest
from shopbot.redact import mask_email
from shopbot.web import create_app
from shopbot.web.audience import CUSTOMER_KINDS, for_customer
from shopbot.web.schemas import CUSTOMER_STREAM
from shopbot.web.store import StoredEvent

HIDDEN = {"thought", "action", "verdict", "observation", "parse_failed"}
GUESS = "jane.d@example.com"
"""An email the customer never wrote: the guard's refusal names it."""


class Guesser(ShopModel):
    """`ShopModel`, but before the customer gave an email it tries one of its own."""

    def decide(self, request: ModelRequest) -> str:
        prompt = str(request.messages[-1].content)
        orders = request.hints.get("order_id", [])
        guessing = "State: customer verified" not in prompt and not request.hints.get("email")
        if guessing and orders and not steps_of(prompt):
            return act("verify_identity", "Guess.", order_id=orders[-1].lstrip("#"), email=GUESS)
        return super().decide(request)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async for opened in open_api(settings, SHORT_STREAMS):
        yield opened


def strings(node: Any) -> Iterator[str]:
    """Every string value in a JSON document (keys left out)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():  # pyright: ignore[reportUnknownVariableType]
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:  # pyright: ignore[reportUnknownVariableType]
            yield from strings(value)


async def test_the_customer_sees_the_conversation_and_staff_see_the_work(
    settings: Settings,
) -> None:
    model = Guesser()
    app = create_app(settings, model=model, services=services_for_tests, web=SHORT_STREAMS)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://shopbot.test") as client,
    ):
        api = Api(app, client, settings, model)
        cid, auth = await create_conversation(client)
        await say(api, cid, auth, "Where is my order 482913?")  # the guess is refused
        await say(api, cid, auth, JANE_RETURN)
        await approve(api, cid, auth)
        await say(api, cid, auth, "Has order 482913 arrived?")

        body, seen = await read_stream(api.client, f"/v1/conversations/{cid}/events", auth)
        view = (await client.get(f"/v1/conversations/{cid}", headers=auth)).text
        staff_body, staff_seen = await read_stream(
            api.client, f"/v1/staff/conversations/{cid}/events", STAFF_AUTH
        )
        staff_view = (await client.get(f"/v1/staff/conversations/{cid}", headers=STAFF_AUTH)).json()
        audited = await count(api, ActionLog, ActionLog.conversation_id == cid)
        said = [m async for m in _messages(api, cid)]

    # The customer's stream: only their kinds, each exactly as its customer model says.
    kinds = [e.event for e in seen]
    assert set(kinds) <= set(CUSTOMER_KINDS) and not set(kinds) & HIDDEN
    assert kinds.count("turn_ended") == 4 and "draft_dropped" in kinds
    models: dict[str, type[BaseModel]] = {
        get_args(m.model_fields["kind"].annotation)[0]: m for m in CUSTOMER_STREAM
    }
    for event in seen:
        assert event.json()["kind"] == event.event
        models[event.json()["kind"]].model_validate(event.json())  # no extra fields
    replies = [e.json()["text"] for e in seen if e.event == "reply"]
    assert replies[-2] == LABEL_EMAILED and replies[-1].startswith("Order 482913 is")
    # What ShopBot is doing reaches the customer in their words, never the tool's name; the
    # refused guess did not run, so it shows nothing.
    working = [e.json() for e in seen if e.event == "working"]
    assert [w["text"] for w in working] == [
        "Checking your details…",
        "Checking whether your items can go back…",
        "Registering your return…",
        "Getting your return label…",
        "Checking your order…",
    ]
    assert all(set(w) == {"seq", "turn", "kind", "step", "text"} for w in working)

    # Staff see every event as stored, and the audit log with the model's raw output.
    stored = staff_view["events"]
    assert [e.json() for e in staff_seen] == stored
    assert HIDDEN - {"parse_failed"} <= {e["kind"] for e in stored}
    assert [e.id for e in seen] == [
        str(e["seq"]) for e in stored if for_customer(_stored(e)) is not None
    ], "seqs match the stored events: a stream resumes the same on either side"
    assert len(staff_view["steps"]) == audited
    assert all(step["raw_output"] for step in staff_view["steps"])
    refusal = next(e for e in stored if e["kind"] == "verdict" and e["decision"] == "deny")
    # Stored after the check, the guess is masked (`shopbot.pii`), for staff too.
    assert mask_email(GUESS) in refusal["reason"] and mask_email(GUESS) in staff_body
    assert GUESS not in staff_body

    # Nothing of the agent's work reaches the customer: not its thoughts, not the guard's
    # reasons, not the tool output, unless a message said it (or the action the customer
    # was asked to confirm, which they see whole).
    said += [t for e in stored if e["kind"] == "confirmation_requested" for t in strings(e)]
    internal = {
        text
        for e in stored
        if e["kind"] in HIDDEN
        for text in strings({k: v for k, v in e.items() if k not in ("kind", "tool")})
        if len(text) >= 6 and not _is_time(text) and not any(text in line for line in said)
    }
    assert refusal["reason"] in internal
    assert any(e["kind"] == "observation" and e["tool"] == "send_return_label" for e in stored)
    for document in [*(e.json() for e in seen), json.loads(view)]:
        shown = list(strings(document))
        leaks = {secret for secret in internal if any(secret in text for text in shown)}
        assert not leaks, document
    assert GUESS not in body and GUESS not in view


def _is_time(text: str) -> bool:
    """Dates and times: one in tool output may share its day with a confirmation's expiry."""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _stored(wire: dict[str, Any]) -> StoredEvent:
    seq, turn = wire["seq"], wire["turn"]
    return StoredEvent(seq, turn, wire["kind"], {k: v for k, v in wire.items() if k != "seq"})


async def _messages(api: Api, cid: str) -> AsyncIterator[str]:
    async with api.backend.sessions() as session:
        for text in await session.scalars(
            select(Message.content).where(Message.conversation_id == cid)
        ):
            yield text


def test_the_customer_view_of_each_kind() -> None:
    def shown(kind: str, **payload: Any) -> dict[str, Any] | None:
        return for_customer(StoredEvent(7, 2, kind, {"kind": kind, **payload}))

    assert shown("escalated", reason="denied 3 times: the email x@y.z") == {
        "seq": 7,
        "turn": 2,
        "kind": "escalated",
    }
    assert shown("turn_ended", turn=2, steps=4, ms=812.5) == {
        "seq": 7,
        "turn": 2,
        "kind": "turn_ended",
    }
    assert shown("verdict", step=3, tool="reply", decision="deny", reason="uncited") == {
        "seq": 7,
        "turn": 2,
        "kind": "draft_dropped",
        "step": 3,
    }
    assert shown("parse_failed", step=1, error="not JSON: {...}") == {
        "seq": 7,
        "turn": 2,
        "kind": "draft_dropped",
        "step": 1,
    }
    for kind, payload in [
        ("verdict", {"step": 1, "tool": "lookup_order", "decision": "allow", "reason": ""}),
        ("thought", {"step": 1, "text": "hmm"}),
        ("action", {"step": 1, "tool": "lookup_order", "args": {}}),
        ("observation", {"step": 1, "tool": "lookup_order", "data": {"email": "a@b.c"}}),
        ("something_new", {"secret": "s"}),
    ]:
        assert shown(kind, **payload) is None, kind
    requested = shown(
        "confirmation_requested",
        confirmation_id="c",
        tool="create_return",
        args={"order_id": "482913"},
        summary="Return it",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC).isoformat(),
    )
    assert requested is not None and set(requested) == {
        "seq",
        "turn",
        "kind",
        "confirmation_id",
        "tool",
        "args",
        "summary",
        "expires_at",
    }


async def test_tokens_open_their_own_side_only(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, "hello")
    staff_routes = [f"/v1/staff/conversations/{cid}", f"/v1/staff/conversations/{cid}/events"]
    for path in staff_routes:
        for headers in [auth, {}, {"Authorization": STAFF_AUTH["Authorization"] + "x"}]:
            refused = await api.client.get(path, headers=headers)
            assert refused.status_code == 401, path
            assert refused.json()["error"]["code"] == "invalid_token"
    token = auth["Authorization"].removeprefix("Bearer ")
    refused = await api.client.get(staff_routes[1], params={"access_token": token})
    assert refused.status_code == 401, "no token in the URL on the staff side"
    for method, path, body in [
        ("GET", f"/v1/conversations/{cid}", None),
        ("GET", f"/v1/conversations/{cid}/events", None),
        ("POST", f"/v1/conversations/{cid}/messages", {"text": "hi"}),
        ("POST", f"/v1/conversations/{cid}/confirmations/x", {"approve": True}),
    ]:
        refused = await api.client.request(method, path, headers=STAFF_AUTH, json=body)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "invalid_token"
    staff = await api.client.get(staff_routes[0], headers=STAFF_AUTH)
    assert staff.status_code == 200 and staff.json()["turns"] == 1
    missing = await api.client.get("/v1/staff/conversations/nobody", headers=STAFF_AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    missing = await api.client.get("/v1/staff/conversations/nobody/events", headers=STAFF_AUTH)
    assert missing.status_code == 404


async def test_without_a_staff_token_the_staff_routes_are_absent(settings: Settings) -> None:
    async for api in open_api(settings, SHORT_STREAMS.model_copy(update={"staff_token": None})):
        cid, _auth = await create_conversation(api.client)
        for path in [f"/v1/staff/conversations/{cid}", f"/v1/staff/conversations/{cid}/events"]:
            for headers in [{}, STAFF_AUTH, {"Authorization": "Bearer "}]:
                absent = await api.client.get(path, headers=headers)
                assert absent.status_code == 404, path
                assert absent.json()["error"]["code"] == "not_found"
