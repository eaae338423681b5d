"""Conversation tokens: signed, scoped to one conversation, expiring.

    <base64url {"cnv": conversation_id, "exp": unix_time}>.<base64url HMAC-SHA256>

The key is derived from the configured secret for this purpose alone, so a customer identity
token (`shopbot.identity`) signed with the same secret never passes as a conversation token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shopbot.errors import ShopBotError

PURPOSE = b"shopbot/conversation-token/v1"


class InvalidToken(ShopBotError):
    """The conversation token is missing, forged, expired or for another conversation."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ConversationTokens:
    """Issues and checks the tokens that open one conversation each."""

    def __init__(
        self, secret: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, conversation_id: str) -> IssuedToken:
        exp = int(self.clock()) + self.ttl_seconds
        claims = {"cnv": conversation_id, "exp": exp}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return IssuedToken(f"{payload}.{self._mac(payload)}", datetime.fromtimestamp(exp, UTC))

    def check(self, token: str | None, conversation_id: str) -> None:
        """Return quietly if `token` opens `conversation_id`; `InvalidToken` otherwise."""
        payload, _, mac = (token or "").partition(".")
        # Bytes, not str: compare_digest refuses non-ASCII text, and a header may carry any.
        expected = self._mac(payload).encode()
        if not payload or not mac or not hmac.compare_digest(mac.encode(), expected):
            raise InvalidToken("The conversation token is missing or not valid.")
        try:
            claims = json.loads(_unb64(payload))
            scoped, exp = str(claims["cnv"]), int(claims["exp"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidToken("The conversation token is malformed.") from exc
        if not hmac.compare_digest(scoped.encode(), conversation_id.encode()):
            raise InvalidToken("The conversation token is missing or not valid.")
        if exp < self.clock():
            raise InvalidToken("The conversation token has expired; start a new conversation.")
