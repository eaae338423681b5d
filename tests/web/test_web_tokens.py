"""Conversation tokens and rate limiters, on their own."""

from __future__ import annotations

import httpx
import pytest
from web_support import TEST_WEB, ShopModel, create_conversation, services_for_tests

from db.engine import create_engine, session_factory
from shopbot.config import Settings
from shopbot.identity import sign_customer
from shopbot.web import create_app
from shopbot.web.limits import RATE_LIMITS, Limiter, MemoryLimiter, SqlLimiter
from shopbot.web.tokens import ConversationTokens, InvalidToken

SECRET = "s3cret"


def test_a_token_opens_its_conversation_until_it_expires() -> None:
    now = [1_000_000.0]
    tokens = ConversationTokens(SECRET, 60, clock=lambda: now[0])
    issued = tokens.issue("conv-a")
    tokens.check(issued.token, "conv-a")
    assert issued.expires_at.timestamp() == 1_000_060
    now[0] += 61
    with pytest.raises(InvalidToken, match="expired"):
        tokens.check(issued.token, "conv-a")


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "abc",
        "abc.def",
        "é.ü",
        ConversationTokens("other-secret", 60).issue("conv-a").token,
        ConversationTokens(SECRET, 60).issue("conv-b").token,
        sign_customer("conv-a", SECRET),
    ],
    ids=["none", "empty", "no-mac", "bad-mac", "non-ascii", "other-key", "other-conv", "identity"],
)
def test_anything_else_is_refused(token: str | None) -> None:
    with pytest.raises(InvalidToken):
        ConversationTokens(SECRET, 60).check(token, "conv-a")


def test_a_tampered_payload_is_refused() -> None:
    tokens = ConversationTokens(SECRET, 60)
    payload, _, mac = tokens.issue("conv-a").token.partition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    with pytest.raises(InvalidToken):
        tokens.check(f"{forged}.{mac}", "conv-a")


async def test_the_memory_limiter_counts_fixed_windows() -> None:
    now = [120.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    assert [await limiter.hit("k", 2, 60) for _ in range(2)] == [None, None]
    assert await limiter.hit("k", 2, 60) == 60.0
    assert await limiter.hit("other", 2, 60) is None
    now[0] = 180.0
    assert await limiter.hit("k", 2, 60) is None


@pytest.mark.parametrize("store", ["memory", "database"])
async def test_forgive_takes_back_a_hit(settings: Settings, store: str) -> None:
    """A staff sign-in counts as a hit before its password is checked; a success is forgiven."""
    now = [125.0]
    engine = create_engine(settings.db_url)
    if store == "database":
        async with engine.begin() as conn:
            await conn.run_sync(RATE_LIMITS.create)
    limiter: Limiter = (
        SqlLimiter(session_factory(engine), clock=lambda: now[0])
        if store == "database"
        else MemoryLimiter(clock=lambda: now[0])
    )
    await limiter.forgive("k", 60)  # nothing to take back: no credit either
    assert [await limiter.hit("k", 2, 60) for _ in range(2)] == [None, None]
    await limiter.forgive("k", 60)
    assert await limiter.hit("k", 2, 60) is None
    assert await limiter.hit("k", 2, 60) == 55.0
    assert await limiter.hit("other", 2, 60) is None
    now[0] = 180.0
    await limiter.forgive("k", 60)
    assert await limiter.hit("k", 2, 60) is None
    await engine.dispose()


async def test_database_limits_hold_across_workers(settings: Settings) -> None:
    """With `rate_limit_store=database` the per-address count lives in `rate_limits`."""
    engine = create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(RATE_LIMITS.create)
    await engine.dispose()
    web = TEST_WEB.model_copy(
        update={"rate_limit_store": "database", "conversations_per_ip_per_minute": 3}
    )
    apps = [
        create_app(settings, model=ShopModel(), services=services_for_tests, web=web)
        for _ in range(2)
    ]
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
        httpx.AsyncClient(transport=httpx.ASGITransport(apps[0]), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(apps[1]), base_url="http://b") as b,
    ):
        for client in (a, b, a):
            await create_conversation(client)
        for client in (a, b):
            refused = await client.post("/v1/conversations", json={})
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
