"""Conversation tokens: signed, scoped to one conversation, expiring.

    <base64url {"cnv": conversation_id, "exp": unix_time}>.<base64url HMAC-SHA256>

The key is derived from the configured secret for this purpose alone, so a customer identity
token (`shopbot.identity`) signed with the same secret never passes as a conversation token.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shopbot.errors import ShopBotError
from shopbot.signing import BadSignature, sign, unsign

PURPOSE = b"shopbot/conversation-token/v1"


class InvalidToken(ShopBotError):
    """The conversation token is missing, forged, expired or for another conversation."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


class ConversationTokens:
    """Issues and checks the tokens that open one conversation each."""

    def __init__(
        self, secret: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def issue(self, conversation_id: str) -> IssuedToken:
        exp = int(self.clock()) + self.ttl_seconds
        token = sign({"cnv": conversation_id, "exp": exp}, self._key)
        return IssuedToken(token, datetime.fromtimestamp(exp, UTC))

    def check(self, token: str | None, conversation_id: str) -> None:
        """Return quietly if `token` opens `conversation_id`; `InvalidToken` otherwise."""
        try:
            claims = unsign(token or "", self._key)
            scoped, exp = str(claims["cnv"]), int(claims["exp"])
        except BadSignature as exc:
            raise InvalidToken("The conversation token is missing or not valid.") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidToken("The conversation token is malformed.") from exc
        if not hmac.compare_digest(scoped.encode(), conversation_id.encode()):
            raise InvalidToken("The conversation token is missing or not valid.")
        if exp < self.clock():
            raise InvalidToken("The conversation token has expired; start a new conversation.")
