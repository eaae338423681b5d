"""Signed customer identities: how the shop's website tells ShopBot who is signed in.

The site signs `{"sub": customer_id, "exp": unix_time}` with HMAC-SHA256 under the secret it
shares with ShopBot (`SHOPBOT_IDENTITY_SECRET`). A valid token counts as proven identity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from shopbot.errors import ShopBotError


class InvalidIdentity(ShopBotError):
    """The token is malformed, forged or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(payload: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign_customer(
    customer_id: str, secret: str, *, ttl_seconds: int = 3600, now: float | None = None
) -> str:
    """What the shop's backend does for a signed-in customer (a reference implementation)."""
    exp = int((now if now is not None else time.time()) + ttl_seconds)
    payload = _b64(json.dumps({"sub": customer_id, "exp": exp}, separators=(",", ":")).encode())
    return f"{payload}.{_mac(payload, secret)}"


def verify_customer(token: str, secret: str, *, now: float | None = None) -> str:
    """The customer id in a valid token; `InvalidIdentity` otherwise."""
    payload, _, mac = token.partition(".")
    # Bytes, not str: compare_digest refuses non-ASCII strings with a TypeError.
    expected = _mac(payload, secret).encode()
    if not payload or not mac or not hmac.compare_digest(mac.encode(), expected):
        raise InvalidIdentity("The customer identity is not signed by the shop.")
    try:
        claims = json.loads(_unb64(payload))
        customer_id, exp = str(claims["sub"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidIdentity("The customer identity is malformed.") from exc
    if exp < (now if now is not None else time.time()):
        raise InvalidIdentity("The customer identity has expired.")
    return customer_id
