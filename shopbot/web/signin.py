"""Signing in to and out of the staff pages, and who is signed in.

    GET  /staff/login    the form; a fresh sign-in CSRF nonce in a cookie
    POST /staff/login    name, password, csrf[, next]: 303 to `next` (a /staff page) with the
                         session cookie; 401 wrong name or password; 403 the CSRF nonce is
                         missing or stale; 429 too many failures (Retry-After)
    POST /staff/logout   csrf: the session ends; 303 to the sign-in page

Failed sign-ins are counted per account and per client address (`staff_signin_failures` in
`staff_signin_window_seconds`, by the app's `Limiter`); past either limit the form answers
429 before any password is checked, even the right one. Each attempt counts before its
password is checked, and a successful one is taken back: a burst of parallel guesses gets
no more through than one at a time would. A wrong password and an unknown name read the same
and cost the same (`shopbot.web.accounts`). Nothing changes on a failure but the counters:
no session, no cookie.

Pages and forms of the staff side take their signed-in member from `StaffMember`, and their
POSTed fields from `StaffForm`, which refuses a POST without the session's CSRF token (403).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from shopbot.errors import StaffAccountError
from shopbot.signing_keys import is_loopback
from shopbot.web.accounts import clean_name
from shopbot.web.backend import Backend, BackendDep
from shopbot.web.csrf import FIELD, HEADER, SIGNIN_COOKIE, token_matches
from shopbot.web.pages import HOME_PATH, SIGNIN_PATH, PageRefused, SignInFirst, page
from shopbot.web.sessions import COOKIE, Expired, SignedIn

__all__ = ["StaffForm", "StaffMember", "current_staff", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/staff", include_in_schema=False)

NOTICES = {
    "signed-out": "You have signed out.",
    "expired": "Your session has ended. Please sign in again.",
}
WRONG = "That name and password do not match a staff account. Check both and try again."
STALE_FORM = (
    "This sign-in form had expired or did not come from this site, so nothing was checked. "
    "Please sign in again."
)
MAX_FIELDS = 20


async def current_staff(request: Request) -> SignedIn | Expired | None:
    """The staff session the request's cookie opens (`Expired`: it has ended by time)."""
    backend: Backend = request.app.state.backend
    return await backend.staff_sessions.find(request.cookies.get(COOKIE))


async def _signed_in(request: Request) -> SignedIn:
    found = await current_staff(request)
    if isinstance(found, SignedIn):
        return found
    back_to = HOME_PATH
    if request.method == "GET":
        back_to = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise SignInFirst(back_to, expired=isinstance(found, Expired))


StaffMember = Annotated[SignedIn, Depends(_signed_in)]
"""The signed-in staff member; anyone else is sent to the sign-in page."""


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the last of repeated names); {} for anything else."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError:
        return {}


@dataclass(frozen=True)
class _Posted:
    staff: SignedIn
    fields: dict[str, str]


async def _posted(request: Request, staff: StaffMember) -> _Posted:
    fields = await read_form(request)
    given = fields.get(FIELD) or request.headers.get(HEADER)
    if not token_matches(staff.csrf_token, given):
        raise PageRefused(
            403,
            "Refused: the form's security token is missing",
            "This request did not carry the CSRF token of your session, so nothing was done. "
            "Go back, reload the page and try again.",
        )
    return _Posted(staff, fields)


StaffForm = Annotated[_Posted, Depends(_posted)]
"""A POST of a signed-in staff member that carried their session's CSRF token, and its
fields; 403 without it."""


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure except over plain http to a loopback address (a developer's
    machine), where a browser would not send them back."""
    return request.url.scheme == "https" or not is_loopback(request.url.hostname or "")


_BACK_TO = re.compile(r"/staff(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?(?:\?[\w.~%&=+-]*)?")
"""A staff page of this site: no other host, no dot segments, no escapes in the path."""


def _back_to(candidate: str | None) -> str:
    """Where to go after signing in: a staff page of this site (not sign-in), else home."""
    if candidate and _BACK_TO.fullmatch(candidate) and not candidate.startswith(SIGNIN_PATH):
        return candidate
    return HOME_PATH


def _form(
    request: Request,
    backend: Backend,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    name: str = "",
    back_to: str = HOME_PATH,
    headers: dict[str, str] | None = None,
) -> Response:
    nonce = backend.signin_nonces.issue()
    context: dict[str, Any] = {
        "staff": None,
        "title": "Sign in",
        "csrf": nonce,
        "error": error,
        "notice": notice,
        "name": name,
        "back_to": back_to,
    }
    response = page(request, "signin.html", context, status=status, headers=headers)
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=backend.signin_nonces.ttl_seconds,
        path=SIGNIN_PATH,
        secure=secure_cookies(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login")
async def signin_page(request: Request, backend: BackendDep) -> Response:
    back_to = _back_to(request.query_params.get("next"))
    if isinstance(await current_staff(request), SignedIn):
        return RedirectResponse(back_to, status_code=303)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return _form(request, backend, notice=notice, back_to=back_to)


def _limit_keys(request: Request, name: str) -> list[str]:
    try:
        login = clean_name(name)[1]
    except StaffAccountError:
        login = name
    account = hashlib.sha256(login.encode()).hexdigest()[:40]
    address = request.client.host if request.client else "unknown"
    return [f"staff-signin:account:{account}", f"staff-signin:address:{address}"]


@router.post("/login")
async def sign_in(request: Request, backend: BackendDep) -> Response:
    fields = await read_form(request)
    name, password = fields.get("name", ""), fields.get("password", "")
    back_to = _back_to(fields.get("next"))
    if not backend.signin_nonces.valid(request.cookies.get(SIGNIN_COOKIE), fields.get(FIELD)):
        return _form(request, backend, status=403, error=STALE_FORM, name=name, back_to=back_to)
    limit, window = backend.web.staff_signin_failures, backend.web.staff_signin_window_seconds
    keys = _limit_keys(request, name)
    waits = [await backend.limiter.hit(key, limit, window) for key in keys]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        minutes = max(1, math.ceil(wait / 60))
        error = (
            f"Too many failed sign-ins for this account or from this address. "
            f"Try again in {minutes} min."
        )
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        return _form(
            request, backend, status=429, error=error, name=name, back_to=back_to, headers=headers
        )
    account = await backend.accounts.authenticate(name, password)
    if account is None:
        log.warning("staff sign-in failed (wrong name or password)")
        return _form(request, backend, status=401, error=WRONG, name=name, back_to=back_to)
    for key in keys:
        await backend.limiter.forgive(key, window)
    previous = await current_staff(request)
    if isinstance(previous, SignedIn):
        await backend.staff_sessions.end(previous)
    cookie, _ = await backend.staff_sessions.start(account.id, account.name)
    log.info("staff sign-in: %s", account.name)
    response = RedirectResponse(back_to, status_code=303, headers={"Cache-Control": "no-store"})
    secure = secure_cookies(request)
    response.set_cookie(COOKIE, cookie, secure=secure, httponly=True, samesite="strict")
    response.delete_cookie(
        SIGNIN_COOKIE, path=SIGNIN_PATH, secure=secure, httponly=True, samesite="strict"
    )
    return response


@router.post("/logout")
async def sign_out(request: Request, posted: StaffForm, backend: BackendDep) -> Response:
    await backend.staff_sessions.end(posted.staff)
    log.info("staff sign-out: %s", posted.staff.name)
    response = RedirectResponse(
        f"{SIGNIN_PATH}?notice=signed-out", status_code=303, headers={"Cache-Control": "no-store"}
    )
    response.delete_cookie(COOKIE, secure=secure_cookies(request), httponly=True, samesite="strict")
    return response
