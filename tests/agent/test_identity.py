from __future__ import annotations

import pytest

from shopbot.identity import InvalidIdentity, sign_customer, verify_customer


def test_round_trip() -> None:
    assert verify_customer(sign_customer("cust_tom", "s3cret"), "s3cret") == "cust_tom"


@pytest.mark.parametrize(
    "token",
    [
        sign_customer("cust_tom", "other-secret"),
        sign_customer("cust_tom", "s3cret", ttl_seconds=-1),
        "garbage",
        "",
        "a.b.c",
        "ünïcode.tökén",
    ],
)
def test_forged_expired_or_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidIdentity):
        verify_customer(token, "s3cret")


def test_tampered_payload_is_refused() -> None:
    payload, mac = sign_customer("cust_tom", "s3cret").split(".")
    forged = sign_customer("cust_jane", "s3cret").split(".")[0]
    with pytest.raises(InvalidIdentity):
        verify_customer(f"{forged}.{mac}", "s3cret")
    assert payload != forged
