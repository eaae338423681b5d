"""CSRF protection for the staff pages' forms.

Every form of a signed-in staff member carries the synchronizer token kept in their session
row (`StaffSession.csrf_token`), and every POST is refused (403) unless it sends it back
(`token_matches`): another site can make a browser post, but cannot read the token.

The sign-in form comes before any session, so it is protected by a signed double submit
(`SignInNonces`): the page sets a cookie with a fresh signed nonce and puts the same nonce in
the form; the POST must carry both, equal, signed by this server and unexpired. Both cookies
are SameSite=Strict as well, so a cross-site POST arrives without them anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from shopbot.signing import sign, unsign

__all__ = ["FIELD", "HEADER", "SIGNIN_COOKIE", "SignInNonces", "token_matches"]

FIELD = "csrf"
"""The form field every staff form posts its token in."""
HEADER = "X-CSRF-Token"
"""Where a script of the staff pages sends it instead (`fetch` POSTs)."""
SIGNIN_COOKIE = "shopbot_staff_signin"
PURPOSE = b"shopbot/staff-signin-csrf/v1"


def token_matches(expected: str, given: str | None) -> bool:
    """Whether `given` is the session's token, compared in constant time."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class SignInNonces:
    """Signed, expiring nonces for the sign-in form's double submit."""

    def __init__(
        self, secret: str, ttl_seconds: int = 3600, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def issue(self) -> str:
        claims = {"n": secrets.token_urlsafe(16), "exp": int(self.clock()) + self.ttl_seconds}
        return sign(claims, self._key)

    def valid(self, cookie: str | None, field: str | None) -> bool:
        """Whether the form's nonce is the cookie's, signed here and unexpired."""
        if not cookie or not field or not token_matches(cookie, field):
            return False
        try:
            exp = int(unsign(cookie, self._key)["exp"])
        except (ValueError, KeyError, TypeError):
            return False
        return exp > self.clock()
