"""Signed claims: `<base64url JSON>.<base64url HMAC-SHA256>`, the one scheme behind customer
identities (`shopbot.identity`) and conversation tokens (`shopbot.web.tokens`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class BadSignature(ValueError):
    """The token is not signed with this key."""


class MalformedClaims(ValueError):
    """The signature holds, but the claims are not a JSON object."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(payload: str, key: bytes) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def sign(claims: dict[str, Any], key: bytes) -> str:
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_mac(payload, key)}"


def unsign(token: str, key: bytes) -> dict[str, Any]:
    """The claims of a token signed with `key`; `BadSignature` or `MalformedClaims` if not."""
    payload, _, mac = token.partition(".")
    # Bytes, not str: compare_digest refuses non-ASCII text with a TypeError.
    if not payload or not mac or not hmac.compare_digest(mac.encode(), _mac(payload, key).encode()):
        raise BadSignature("not signed with this key")
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError as exc:
        raise MalformedClaims("the claims are not JSON") from exc
    if not isinstance(claims, dict):
        raise MalformedClaims("the claims are not an object")
    return claims  # pyright: ignore[reportUnknownVariableType]
