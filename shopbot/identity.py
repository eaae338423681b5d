"""Signed customer identities: how the shop's website tells ShopBot who is signed in.

The shop's backend signs, with HMAC-SHA256 under the secret it shares with ShopBot
(`SHOPBOT_IDENTITY_SECRET`), the claims

    {"sub": customer_id, "aud": "shopbot-widget", "iat": now, "exp": now + ttl, "jti": nonce}

as `<base64url JSON>.<base64url MAC>` (`shopbot.signing`; `sign_customer` is the reference
implementation). A valid token counts as proven identity, so it is kept narrow:

- `aud` must be `AUDIENCE`: a token the shop signs for something else never passes here;
- `exp` is required, and at most `MAX_TTL_SECONDS` (15 minutes, plus `CLOCK_SKEW_SECONDS`
  for the shop's clock) ahead: a token that lives for ever is refused, not trusted;
- `jti`, a nonce of 16 to 64 characters, is spent by the first conversation it opens
  (`spend_identity`, the `used_identity_tokens` table); a second use is refused. Spent rows
  are pruned once their token has expired, since an expired token is refused anyway.

So the shop renders a fresh token on each page view that shows the widget.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeGuard

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db import UsedIdentityToken
from shopbot.errors import ShopBotError
from shopbot.signing import BadSignature, MalformedClaims, sign, unsign

__all__ = [
    "AUDIENCE",
    "CLOCK_SKEW_SECONDS",
    "MAX_TTL_SECONDS",
    "InvalidIdentity",
    "VerifiedIdentity",
    "sign_customer",
    "spend_identity",
    "verify_customer",
]

AUDIENCE = "shopbot-widget"
MAX_TTL_SECONDS = 15 * 60
"""The longest a customer identity token may live."""
CLOCK_SKEW_SECONDS = 60
"""How far the shop's clock may run ahead of ShopBot's when it sets `exp`."""
DEFAULT_TTL_SECONDS = 5 * 60
JTI_LENGTH = (16, 64)


class InvalidIdentity(ShopBotError):
    """The token is malformed, forged, expired, too long-lived, for another audience or
    already used."""


@dataclass(frozen=True)
class VerifiedIdentity:
    customer_id: str
    token_id: str
    """The token's `jti`: spent by the first conversation it opens."""
    expires_at: datetime


def sign_customer(
    customer_id: str,
    secret: str,
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: float | None = None,
) -> str:
    """What the shop's backend does for a signed-in customer (a reference implementation):
    a token for one conversation, valid `ttl_seconds` (at most `MAX_TTL_SECONDS`)."""
    if ttl_seconds > MAX_TTL_SECONDS:
        raise ValueError(f"identity tokens live at most {MAX_TTL_SECONDS} s, not {ttl_seconds}")
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": customer_id,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
    }
    return sign(claims, secret.encode())


def verify_customer(token: str, secret: str, *, now: float | None = None) -> VerifiedIdentity:
    """Who a valid token proves; `InvalidIdentity` otherwise. Does not spend the token."""
    try:
        claims = unsign(token, secret.encode())
    except BadSignature as exc:
        raise InvalidIdentity("The customer identity is not signed by the shop.") from exc
    except MalformedClaims as exc:
        raise InvalidIdentity("The customer identity is malformed.") from exc
    customer_id, audience = claims.get("sub"), claims.get("aud")
    exp, jti = claims.get("exp"), claims.get("jti")
    if not _text(customer_id, 1, 64) or not _text(jti, *JTI_LENGTH) or not _integer(exp):
        raise InvalidIdentity("The customer identity is malformed.")
    if audience != AUDIENCE:
        raise InvalidIdentity("The customer identity is not meant for ShopBot's widget.")
    current = now if now is not None else time.time()
    if exp < current:
        raise InvalidIdentity("The customer identity has expired.")
    if exp > current + MAX_TTL_SECONDS + CLOCK_SKEW_SECONDS:
        raise InvalidIdentity(f"The customer identity lives over {MAX_TTL_SECONDS} s.")
    return VerifiedIdentity(customer_id, jti, datetime.fromtimestamp(exp, UTC))


async def spend_identity(
    session: AsyncSession, identity: VerifiedIdentity, now: datetime | None = None
) -> None:
    """Record the token as used in `session`'s transaction; `InvalidIdentity` if it was.

    The primary key decides between two requests racing with one token: one commits, the
    other's insert fails. Tokens expired by `now` are pruned in the same transaction."""
    await session.execute(
        delete(UsedIdentityToken).where(UsedIdentityToken.expires_at < (now or datetime.now(UTC)))
    )
    session.add(UsedIdentityToken(jti=identity.token_id, expires_at=identity.expires_at))
    try:
        await session.flush()
    except IntegrityError as exc:
        raise InvalidIdentity("The customer identity has been used already.") from exc


def _text(value: object, shortest: int, longest: int) -> TypeGuard[str]:
    return isinstance(value, str) and shortest <= len(value) <= longest


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
