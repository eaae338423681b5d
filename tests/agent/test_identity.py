from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shopbot.identity import (
    AUDIENCE,
    MAX_TTL_SECONDS,
    InvalidIdentity,
    sign_customer,
    verify_customer,
)
from shopbot.signing import sign

NOW = 1_900_000_000


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims as the shop's backend signs them, with `changes` (None drops a claim)."""
    base: dict[str, Any] = {
        "sub": "cust_tom",
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + 300,
        "jti": "n0nce-0123456789abcdef",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def signed(**changes: Any) -> str:
    return sign(claims(**changes), b"s3cret")


def test_round_trip() -> None:
    identity = verify_customer(sign_customer("cust_tom", "s3cret", now=NOW), "s3cret", now=NOW)
    assert identity.customer_id == "cust_tom"
    assert identity.expires_at == datetime.fromtimestamp(NOW + 300, UTC)
    assert len(identity.token_id) >= 16


def test_every_token_has_its_own_nonce() -> None:
    first, second = (
        verify_customer(sign_customer("cust_tom", "s3cret"), "s3cret") for _ in range(2)
    )
    assert first.token_id != second.token_id


def test_the_longest_lifetime_is_accepted_and_no_longer_one_is_signed() -> None:
    token = sign_customer("cust_tom", "s3cret", ttl_seconds=MAX_TTL_SECONDS, now=NOW)
    assert verify_customer(token, "s3cret", now=NOW).customer_id == "cust_tom"
    with pytest.raises(ValueError, match="at most"):
        sign_customer("cust_tom", "s3cret", ttl_seconds=MAX_TTL_SECONDS + 1)


@pytest.mark.parametrize(
    "token",
    [
        sign_customer("cust_tom", "other-secret", now=NOW),
        sign_customer("cust_tom", "s3cret", ttl_seconds=-1, now=NOW),
        "garbage",
        "",
        "a.b.c",
        "ünïcode.tökén",
        signed(exp=None),
        signed(exp=1e30),
        signed(exp=10**30),
        signed(exp=NOW + MAX_TTL_SECONDS + 3600),
        signed(exp=str(NOW + 60)),
        signed(exp=True),
        signed(aud=None),
        signed(aud="another-service"),
        signed(aud=[AUDIENCE]),
        signed(jti=None),
        signed(jti="short"),
        signed(jti="x" * 65),
        signed(sub=None),
        signed(sub=""),
        signed(sub=42),
        sign(["not", "an", "object"], b"s3cret"),  # type: ignore[arg-type]
    ],
    ids=[
        "forged",
        "expired",
        "garbage",
        "empty",
        "three-parts",
        "non-ascii",
        "no-exp",
        "exp-float-1e30",
        "exp-int-1e30",
        "lives-an-hour",
        "exp-text",
        "exp-bool",
        "no-aud",
        "other-aud",
        "aud-list",
        "no-jti",
        "short-jti",
        "long-jti",
        "no-sub",
        "empty-sub",
        "sub-number",
        "not-an-object",
    ],
)
def test_forged_expired_long_lived_or_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidIdentity):
        verify_customer(token, "s3cret", now=NOW)


def test_the_shops_clock_may_run_a_little_ahead() -> None:
    ahead = sign_customer("cust_tom", "s3cret", ttl_seconds=MAX_TTL_SECONDS, now=NOW + 30)
    assert verify_customer(ahead, "s3cret", now=NOW).customer_id == "cust_tom"


def test_tampered_payload_is_refused() -> None:
    payload, mac = sign_customer("cust_tom", "s3cret").split(".")
    forged = sign_customer("cust_jane", "s3cret").split(".")[0]
    with pytest.raises(InvalidIdentity):
        verify_customer(f"{forged}.{mac}", "s3cret")
    assert payload != forged
