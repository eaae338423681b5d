"""The widget API in process (ASGI), on SQLite and PostgreSQL: flows, limits, errors."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from web_support import (
    JANE_RETURN,
    LABEL_EMAILED,
    TEST_WEB,
    Api,
    ShopModel,
    create_conversation,
    open_api,
    services_for_tests,
)

from db import Conversation, Event, Message, Return, UsedIdentityToken, utcnow
from db.engine import create_engine, session_factory
from shopbot.config import Settings
from shopbot.errors import ConversationError, ConversationNotFound
from shopbot.identity import AUDIENCE, sign_customer
from shopbot.signing import sign
from shopbot.signing_keys import identity_secret
from shopbot.web import WebConfig, create_app
from shopbot.web import app as web_app
from shopbot.web.errors import from_shopbot_error


def error_of(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


async def count(api: Api, table: Any, *where: Any) -> int:
    async with api.backend.sessions() as session:
        found = await session.scalar(select(func.count()).select_from(table).where(*where))
    return int(found or 0)


async def history(api: Api, cid: str, auth: dict[str, str]) -> dict[str, Any]:
    response = await api.client.get(f"/v1/conversations/{cid}", headers=auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_a_return_is_confirmed_and_the_label_sent(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    assert await history(api, cid, auth) == {
        "conversation_id": cid,
        "status": "open",
        "verified": False,
        "turns": 0,
        "busy": False,
        "last_seq": 0,
        "messages": [],
        "pending_confirmation": None,
        "person": None,
    }

    sent = await api.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": JANE_RETURN}, headers=auth
    )
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"conversation_id": cid, "turn": 1, "first_seq": 1}
    await api.settle()
    view = await history(api, cid, auth)
    pending = view["pending_confirmation"]
    assert pending["tool"] == "create_return"
    assert pending["args"] == {"order_id": "482913", "lines": [1], "reason": "doesn't fit"}
    assert [m["role"] for m in view["messages"]] == ["customer", "assistant"]
    assert view["verified"] is True
    assert await count(api, Return, Return.order_id == "482913") == 0

    confirmed = await api.client.post(
        f"/v1/conversations/{cid}/confirmations/{pending['confirmation_id']}",
        json={"approve": True},
        headers=auth,
    )
    assert confirmed.status_code == 202, confirmed.text
    assert confirmed.json()["turn"] == 2
    await api.settle()
    view = await history(api, cid, auth)
    assert view["pending_confirmation"] is None
    assert view["messages"][-2]["text"].startswith("Yes, go ahead: Return Slim Fit Jeans")
    assert confirmed.json()["first_seq"] == view["messages"][-2]["seq"], "where turn 2 starts"
    assert view["messages"][-1] == {
        "role": "assistant",
        "text": LABEL_EMAILED,
        "turn": 2,
        "seq": view["messages"][-1]["seq"],
        "citations": [],
        "name": None,
        "shop": None,
    }
    assert view["last_seq"] == await count(api, Event, Event.conversation_id == cid)
    assert await count(api, Return, Return.order_id == "482913") == 1


async def test_cancelling_runs_nothing(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await api.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": JANE_RETURN}, headers=auth
    )
    await api.settle()
    pending = (await history(api, cid, auth))["pending_confirmation"]
    cancelled = await api.client.post(
        f"/v1/conversations/{cid}/confirmations/{pending['confirmation_id']}",
        json={"approve": False},
        headers=auth,
    )
    assert cancelled.status_code == 202
    await api.settle()
    view = await history(api, cid, auth)
    assert view["messages"][-1]["text"].startswith("All right, I've cancelled that")
    assert await count(api, Return, Return.order_id == "482913") == 0
    again = await api.client.post(
        f"/v1/conversations/{cid}/confirmations/{pending['confirmation_id']}",
        json={"approve": True},
        headers=auth,
    )
    assert again.status_code == 409
    assert error_of(again) == "no_pending_confirmation"


async def test_a_policy_answer_carries_its_citation(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await api.client.post(
        f"/v1/conversations/{cid}/messages",
        json={"text": "How long do I have to return something?"},
        headers=auth,
    )
    await api.settle()
    reply = (await history(api, cid, auth))["messages"][-1]
    assert reply["citations"] == [
        {
            "anchor": "returns#return-window",
            "document": "Returns policy",
            "section": "Return window",
        }
    ]


async def test_a_signed_customer_starts_verified(api: Api) -> None:
    secret = identity_secret(api.settings)
    created = await api.client.post(
        "/v1/conversations", json={"customer_token": sign_customer("cust_jane", secret)}
    )
    assert created.status_code == 201
    assert created.json()["verified"] is True
    cid = created.json()["conversation_id"]
    auth = {"Authorization": f"Bearer {created.json()['token']}"}
    await api.client.post(
        f"/v1/conversations/{cid}/messages",
        json={"text": "Has order 482913 arrived?"},
        headers=auth,
    )
    await api.settle()
    assert (await history(api, cid, auth))["messages"][-1]["text"].startswith("Order 482913 is")
    async with api.backend.sessions() as session:
        conversation = await session.get(Conversation, cid)
        assert conversation is not None
        assert (conversation.customer_id, conversation.proven_by) == ("cust_jane", "token")


def claims(**changes: Any) -> dict[str, Any]:
    """What `sign_customer` signs for Jane now, with `changes` (None drops a claim)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "cust_jane",
        "aud": AUDIENCE,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(16),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


BAD_IDENTITIES: dict[str, Callable[[str], str]] = {
    "malformed": lambda _secret: "bm90.YS10b2tlbg",
    "forged": lambda _secret: sign_customer("cust_jane", "another-secret"),
    "placeholder-secret": lambda _secret: sign_customer("cust_jane", "change-me-in-production"),
    "expired": lambda secret: sign_customer("cust_jane", secret, ttl_seconds=-10),
    "unknown-customer": lambda secret: sign_customer("cust_nobody", secret),
    "exp-1e30": lambda secret: sign(claims(exp=10**30), secret.encode()),
    "lives-a-day": lambda secret: sign(claims(exp=int(time.time()) + 86400), secret.encode()),
    "no-exp": lambda secret: sign(claims(exp=None), secret.encode()),
    "no-audience": lambda secret: sign(claims(aud=None), secret.encode()),
    "other-audience": lambda secret: sign(claims(aud="shop-newsletter"), secret.encode()),
    "no-jti": lambda secret: sign(claims(jti=None), secret.encode()),
}


@pytest.mark.parametrize("make", BAD_IDENTITIES.values(), ids=BAD_IDENTITIES.keys())
async def test_a_bad_customer_identity_is_refused(api: Api, make: Callable[[str], str]) -> None:
    token = make(identity_secret(api.settings))
    response = await api.client.post("/v1/conversations", json={"customer_token": token})
    assert response.status_code == 401
    assert error_of(response) == "invalid_identity"
    assert await count(api, Conversation) == 0
    assert await count(api, UsedIdentityToken) == 0


async def test_an_identity_token_opens_one_conversation_only(api: Api) -> None:
    token = sign_customer("cust_jane", identity_secret(api.settings))
    first = await api.client.post("/v1/conversations", json={"customer_token": token})
    assert first.status_code == 201
    assert first.json()["verified"] is True
    again = await api.client.post("/v1/conversations", json={"customer_token": token})
    assert again.status_code == 401
    assert error_of(again) == "invalid_identity"
    assert "used" in again.json()["error"]["message"]
    assert await count(api, Conversation) == 1
    racing = [sign_customer("cust_jane", identity_secret(api.settings))] * 4
    answers = await asyncio.gather(
        *(api.client.post("/v1/conversations", json={"customer_token": t}) for t in racing)
    )
    assert sorted(a.status_code for a in answers) == [201, 401, 401, 401]
    assert await count(api, Conversation) == 2


async def test_spent_identity_tokens_are_pruned_once_expired(api: Api) -> None:
    async with api.backend.sessions() as session:
        session.add(
            UsedIdentityToken(jti="spent-long-ago-0000", expires_at=utcnow() - timedelta(1))
        )
        await session.commit()
    token = sign_customer("cust_jane", identity_secret(api.settings))
    assert (await api.client.post("/v1/conversations", json={"customer_token": token})).is_success
    async with api.backend.sessions() as session:
        kept = (await session.scalars(select(UsedIdentityToken.jti))).all()
    assert len(kept) == 1
    assert kept[0] != "spent-long-ago-0000"


async def test_a_customer_token_off_the_format_is_a_validation_error(api: Api) -> None:
    response = await api.client.post("/v1/conversations", json={"customer_token": "not a token"})
    assert response.status_code == 422
    assert error_of(response) == "validation_error"


async def test_a_token_opens_its_own_conversation_only(api: Api) -> None:
    a, auth_a = await create_conversation(api.client)
    b, auth_b = await create_conversation(api.client)
    assert (await api.client.get(f"/v1/conversations/{a}", headers=auth_a)).status_code == 200
    for path, method in [
        (f"/v1/conversations/{b}", "GET"),
        (f"/v1/conversations/{b}/messages", "POST"),
        (f"/v1/conversations/{b}/events", "GET"),
        (f"/v1/conversations/{b}/confirmations/x", "POST"),
    ]:
        response = await api.client.request(
            method, path, headers=auth_a, json={"text": "hi"} if "messages" in path else None
        )
        assert response.status_code == 401, path
        assert error_of(response) == "invalid_token"
    for headers in [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": auth_b["Authorization"] + "x"},
    ]:
        response = await api.client.get(f"/v1/conversations/{b}", headers=headers)
        assert response.status_code == 401
        assert error_of(response) == "invalid_token"


async def test_an_expired_conversation_token_is_refused(settings: Settings) -> None:
    async for api in open_api(
        settings, TEST_WEB.model_copy(update={"conversation_token_ttl_seconds": 60})
    ):
        cid, auth = await create_conversation(api.client)
        api.backend.tokens.clock = lambda: 10**10
        response = await api.client.get(f"/v1/conversations/{cid}", headers=auth)
        assert response.status_code == 401
        assert "expired" in response.json()["error"]["message"]


async def test_one_turn_at_a_time_even_across_workers(settings: Settings) -> None:
    """Two apps on one database are two workers: the lease in the database serializes them."""
    slow = ShopModel(delay=0.3)
    first = create_app(settings, model=slow, services=services_for_tests, web=TEST_WEB)
    second = create_app(settings, model=ShopModel(), services=services_for_tests, web=TEST_WEB)
    async with (
        first.router.lifespan_context(first),
        second.router.lifespan_context(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(first), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(second), base_url="http://b") as b,
    ):
        cid, auth = await create_conversation(a)
        started = await a.post(
            f"/v1/conversations/{cid}/messages", json={"text": JANE_RETURN}, headers=auth
        )
        assert started.status_code == 202
        for client in (a, b):
            busy = await client.post(
                f"/v1/conversations/{cid}/messages", json={"text": "hello?"}, headers=auth
            )
            assert busy.status_code == 409
            assert error_of(busy) == "conversation_busy"
        view = (await b.get(f"/v1/conversations/{cid}", headers=auth)).json()
        assert view["busy"] is True
        while view["busy"]:
            await asyncio.sleep(0.05)
            view = (await b.get(f"/v1/conversations/{cid}", headers=auth)).json()
        later = await b.post(
            f"/v1/conversations/{cid}/messages", json={"text": "thanks"}, headers=auth
        )
        assert later.status_code == 202
        assert later.json()["turn"] == 2
        runner = first.state.backend.runner
        await asyncio.gather(*runner.running, *second.state.backend.runner.running)
    assert slow.conversations == {cid}


async def test_a_message_too_long_is_refused_and_not_stored(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    text = "x" * (api.settings.max_message_chars + 1)
    response = await api.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": text}, headers=auth
    )
    assert response.status_code == 413
    assert error_of(response) == "message_too_long"
    assert await count(api, Message, Message.conversation_id == cid) == 0
    assert await count(api, Event, Event.conversation_id == cid) == 0


async def test_a_body_too_large_is_refused_before_it_is_read(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    huge = "y" * (TEST_WEB.max_body_bytes + 10)
    response = await api.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": huge}, headers=auth
    )
    assert response.status_code == 413
    assert error_of(response) == "payload_too_large"

    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(20):
            yield b"z" * 1024
        yield b'"}'

    response = await api.client.post(
        f"/v1/conversations/{cid}/messages",
        content=chunked(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert error_of(response) == "payload_too_large"


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   \n "}, {"text": 5}, {"text": "hi", "extra": 1}, None],
    ids=["missing", "empty", "blank", "number", "extra-field", "no-body"],
)
async def test_invalid_messages_are_validation_errors(api: Api, body: Any) -> None:
    cid, auth = await create_conversation(api.client)
    response = await api.client.post(f"/v1/conversations/{cid}/messages", json=body, headers=auth)
    assert response.status_code == 422
    assert error_of(response) == "validation_error"


@pytest.mark.parametrize(
    "text",
    ["hi\u0000there", "\u0000", "hi\u0000", "\u0000 "],
    ids=["inside", "alone", "end", "blank"],
)
async def test_a_nul_in_a_message_is_a_validation_error_and_nothing_is_stored(
    api: Api, text: str
) -> None:
    # Issue #18: this was a 404 not_found, from the loop's refusal mapped as a missing
    # conversation; the schema's pattern let it through (NUL is not white space).
    cid, auth = await create_conversation(api.client)
    response = await api.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": text}, headers=auth
    )
    assert response.status_code == 422, response.text
    assert error_of(response) == "validation_error"
    # In words: the message quoted the schema's regular expression.
    message = response.json()["error"]["message"]
    assert "NUL character" in message and "[^" not in message and "\\x00" not in message
    await api.settle()
    assert await count(api, Message, Message.conversation_id == cid) == 0
    assert await count(api, Event, Event.conversation_id == cid) == 0
    assert (await history(api, cid, auth))["turns"] == 0


async def test_a_lone_surrogate_in_a_message_is_a_validation_error_in_words(api: Api) -> None:
    """JSON may escape half a UTF-16 pair; no database stores it (it raised out of the
    loop's lease), so it is refused as a NUL is."""
    cid, auth = await create_conversation(api.client)
    response = await api.client.post(
        f"/v1/conversations/{cid}/messages",
        content='{"text": "hi \\ud800 there"}',
        headers=auth | {"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert error_of(response) == "validation_error"
    assert "cannot be stored" in response.json()["error"]["message"]
    await api.settle()
    assert await count(api, Message, Message.conversation_id == cid) == 0


async def test_a_nul_in_any_text_parameter_is_a_validation_error(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    answer = await api.client.post(
        f"/v1/conversations/{cid}/confirmations/abc%00", json={"approve": True}, headers=auth
    )
    stream = await api.client.get(f"/v1/conversations/{cid}/events?access_token=a%00b")
    read = await api.client.get("/v1/conversations/a%00b", headers=auth)
    for response in (answer, stream, read):
        assert response.status_code == 422, response.text
        assert error_of(response) == "validation_error"
    openapi = (await api.client.get("/openapi.json")).json()
    text = openapi["components"]["schemas"]["CustomerMessageIn"]["properties"]["text"]
    assert "\\x00" in text["pattern"]


def test_conversation_errors_map_to_their_status() -> None:
    assert from_shopbot_error(ConversationNotFound("No conversation x.")).status == 404
    refused = from_shopbot_error(ConversationError("A character that cannot be stored."))
    assert (refused.status, refused.code) == (422, "validation_error")


async def test_unknown_routes_and_methods_answer_in_the_error_shape(api: Api) -> None:
    missing = await api.client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert error_of(missing) == "not_found"
    wrong = await api.client.delete("/v1/conversations")
    assert wrong.status_code == 405
    assert error_of(wrong) == "method_not_allowed"


async def test_new_conversations_are_limited_per_address(settings: Settings) -> None:
    web = TEST_WEB.model_copy(update={"conversations_per_ip_per_minute": 2})
    async for api in open_api(settings, web):
        for _ in range(2):
            await create_conversation(api.client)
        refused = await api.client.post("/v1/conversations", json={})
        assert refused.status_code == 429
        assert error_of(refused) == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        other = await api.client.post(
            "/v1/conversations", json={}, headers={"X-Forwarded-For": "203.0.113.9"}
        )
        # Forwarded-For is trusted only from the configured proxies (by uvicorn): not here.
        assert other.status_code == 429


async def test_messages_are_limited_per_conversation(settings: Settings) -> None:
    web = TEST_WEB.model_copy(update={"messages_per_conversation_per_minute": 2})
    ahead = [timedelta(0)]
    async for api in open_api(settings, web, clock=lambda: utcnow() + ahead[0]):
        cid, auth = await create_conversation(api.client)
        for text in ("hello", "anyone there?"):
            sent = await api.client.post(
                f"/v1/conversations/{cid}/messages", json={"text": text}, headers=auth
            )
            assert sent.status_code == 202
            await api.settle()
        refused = await api.client.post(
            f"/v1/conversations/{cid}/messages", json={"text": "third"}, headers=auth
        )
        assert refused.status_code == 429
        assert error_of(refused) == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        other, other_auth = await create_conversation(api.client)
        fine = await api.client.post(
            f"/v1/conversations/{other}/messages", json={"text": "hi"}, headers=other_auth
        )
        assert fine.status_code == 202
        await api.settle()
        # The count comes from the database, in the statement that starts the turn: an hour
        # later (by the app's clock) the window is empty again.
        ahead[0] = timedelta(hours=1)
        later = await api.client.post(
            f"/v1/conversations/{cid}/messages", json={"text": "back again"}, headers=auth
        )
        assert later.status_code == 202
        await api.settle()


async def test_cors_allows_the_shops_origin_only(settings: Settings) -> None:
    web = TEST_WEB.model_copy(update={"cors_origins": ["https://shop.example"]})
    async for api in open_api(settings, web):
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        ok = await api.client.options(
            "/v1/conversations", headers={"Origin": "https://shop.example", **preflight}
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://shop.example"
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        bad = await api.client.options(
            "/v1/conversations", headers={"Origin": "https://evil.example", **preflight}
        )
        assert bad.status_code == 400
        assert "access-control-allow-origin" not in bad.headers
        created = await api.client.post(
            "/v1/conversations", json={}, headers={"Origin": "https://shop.example"}
        )
        assert created.headers["access-control-allow-origin"] == "https://shop.example"
        foreign = await api.client.post(
            "/v1/conversations", json={}, headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in foreign.headers


async def test_the_openapi_document_describes_routes_and_errors(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths) == {
        "/v1/conversations",
        "/v1/conversations/{conversation_id}",
        "/v1/conversations/{conversation_id}/messages",
        "/v1/conversations/{conversation_id}/confirmations/{confirmation_id}",
        "/v1/conversations/{conversation_id}/events",
        "/v1/staff/conversations/{conversation_id}",
        "/v1/staff/conversations/{conversation_id}/events",
        "/healthz",
    }
    post = paths["/v1/conversations/{conversation_id}/messages"]["post"]
    assert {"202", "401", "409", "413", "422", "429"} <= set(post["responses"])
    codes = spec["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
    assert {"conversation_busy", "confirmation_withdrawn"} <= set(codes)
    assert {"ConversationToken", "StaffToken"} <= set(spec["components"]["securitySchemes"])

    def stream_of(path: str) -> dict[str, Any]:
        ok = paths[path]["get"]["responses"]["200"]["content"]
        assert set(ok) == {"text/event-stream"}, path
        event: dict[str, Any] = ok["text/event-stream"]["schema"]
        return event

    customer = stream_of("/v1/conversations/{conversation_id}/events")
    kinds = customer["properties"]["event"]["enum"]
    assert set(kinds) == {
        "customer_message",
        "reply_chunk",
        "draft_dropped",
        "working",
        "reply",
        "confirmation_requested",
        "confirmation_decided",
        "confirmation_withdrawn",
        "escalated",
        "staff_joined",
        "staff_message",
        "staff_left",
        "turn_ended",
    }
    data = customer["properties"]["data"]
    assert data["contentMediaType"] == "application/json"
    shapes = data["contentSchema"]["oneOf"]
    assert sorted(shape["properties"]["kind"]["const"] for shape in shapes) == sorted(kinds)
    assert all(shape["additionalProperties"] is False for shape in shapes)
    escalated = next(s for s in shapes if s["properties"]["kind"]["const"] == "escalated")
    assert set(escalated["properties"]) == {"seq", "turn", "kind"}, "no reason for the customer"
    joined = next(s for s in shapes if s["properties"]["kind"]["const"] == "staff_joined")
    assert set(joined["properties"]) == {"seq", "turn", "kind", "name", "shop"}, "no staff id"
    staff = stream_of("/v1/staff/conversations/{conversation_id}/events")
    assert {"thought", "action", "verdict", "observation"} <= set(
        staff["properties"]["event"]["enum"]
    )


async def test_the_widget_and_demo_are_served(api: Api) -> None:
    js = await api.client.get("/widget.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "attachShadow" in js.text
    css = await api.client.get("/widget.css")
    assert css.headers["content-type"].startswith("text/css")
    demo = await api.client.get("/demo")
    assert '<script src="/widget.js"' in demo.text
    assert (await api.client.get("/")).status_code == 307
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}


async def test_only_a_serving_worker_tunes_the_garbage_collector(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tuning changes the whole process: `shopbot serve`'s workers ask for it, at the end
    of start-up; a test or a program embedding the app does not get it."""
    settled: list[str] = []
    monkeypatch.setattr(web_app, "_settle_gc", lambda: settled.append("settled"))
    for tune_gc in (False, True):
        app = create_app(settings, model=ShopModel(), services=services_for_tests, tune_gc=tune_gc)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://shopbot.test") as client,
        ):
            # Served, as every other test's app is before it stops.
            assert (await client.get("/healthz")).status_code == 200
            assert settled == (["settled"] if tune_gc else [])
    asked: list[bool] = []

    def create(_settings: Settings, **options: Any) -> None:
        asked.append(options["tune_gc"])

    monkeypatch.setattr(web_app, "create_app", create)
    monkeypatch.setenv(web_app.SETTINGS_ENV, web_app.settings_json(settings))
    web_app.app_from_env()  # what each worker of `shopbot serve` runs
    assert asked == [True]


def test_the_garbage_collector_is_settled_once_per_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []
    fake = SimpleNamespace(
        collect=lambda: calls.append("collect"),
        freeze=lambda: calls.append("freeze"),
        get_threshold=lambda: (700, 10, 10),
        set_threshold=lambda *t: calls.append(t),  # type: ignore[misc]
    )
    monkeypatch.setattr(web_app, "gc", fake)
    monkeypatch.setattr(web_app, "_gc_settled", False)
    web_app._settle_gc()
    web_app._settle_gc()
    assert calls == ["collect", "freeze", (web_app.YOUNG_GC_THRESHOLD, 10, 10)]


async def test_the_demo_page_can_be_switched_off(settings: Settings) -> None:
    async for api in open_api(settings, TEST_WEB.model_copy(update={"demo": False})):
        assert (await api.client.get("/demo")).status_code == 404
        assert (await api.client.get("/widget.js")).status_code == 200


async def test_state_lives_in_the_database_only(api: Api, db_url: str) -> None:
    """A conversation started on one app continues on a fresh one (a restarted worker)."""
    cid, auth = await create_conversation(api.client)
    await api.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": JANE_RETURN}, headers=auth
    )
    await api.settle()
    engine = create_engine(db_url)
    try:
        fresh = create_app(
            api.settings,
            model=ShopModel(),
            sessions=session_factory(engine),
            services=services_for_tests,
            web=WebConfig(),
        )
        async with (
            fresh.router.lifespan_context(fresh),
            httpx.AsyncClient(transport=httpx.ASGITransport(fresh), base_url="http://c") as c,
        ):
            view = (await c.get(f"/v1/conversations/{cid}", headers=auth)).json()
            pending = view["pending_confirmation"]["confirmation_id"]
            done = await c.post(
                f"/v1/conversations/{cid}/confirmations/{pending}",
                json={"approve": True},
                headers=auth,
            )
            assert done.status_code == 202
            await asyncio.gather(*fresh.state.backend.runner.running)
            view = (await c.get(f"/v1/conversations/{cid}", headers=auth)).json()
            assert view["messages"][-1]["text"] == LABEL_EMAILED
    finally:
        await engine.dispose()
