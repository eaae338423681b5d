"""Signed customer identities: how the shop's website tells ShopBot who is signed in.

The site signs `{"sub": customer_id, "exp": unix_time}` with HMAC-SHA256 under the secret it
shares with ShopBot (`SHOPBOT_IDENTITY_SECRET`). A valid token counts as proven identity.
"""

from __future__ import annotations

import time

from shopbot.errors import ShopBotError
from shopbot.signing import BadSignature, sign, unsign


class InvalidIdentity(ShopBotError):
    """The token is malformed, forged or expired."""


def sign_customer(
    customer_id: str, secret: str, *, ttl_seconds: int = 3600, now: float | None = None
) -> str:
    """What the shop's backend does for a signed-in customer (a reference implementation)."""
    exp = int((now if now is not None else time.time()) + ttl_seconds)
    return sign({"sub": customer_id, "exp": exp}, secret.encode())


def verify_customer(token: str, secret: str, *, now: float | None = None) -> str:
    """The customer id in a valid token; `InvalidIdentity` otherwise."""
    try:
        claims = unsign(token, secret.encode())
        customer_id, exp = str(claims["sub"]), int(claims["exp"])
    except BadSignature as exc:
        raise InvalidIdentity("The customer identity is not signed by the shop.") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidIdentity("The customer identity is malformed.") from exc
    if exp < (now if now is not None else time.time()):
        raise InvalidIdentity("The customer identity has expired.")
    return customer_id
