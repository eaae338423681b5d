"""How the staff pages are rendered: Jinja2 templates, one stylesheet, strict headers.

Templates live in `shopbot/web/templates/staff/`; each extends `base.html` (the header with
who is signed in, the pages' navigation and the sign-out form) and autoescapes everything it
is given. Pages are server-rendered HTML; a page that needs a script loads a static file of
this server (the inbox's `inbox.js`, which follows its event stream). The
Content-Security-Policy allows this server's stylesheet, scripts and event streams, forms
posting back to it, and nothing else: no inline script or style, no other origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.templating import Jinja2Templates

from shopbot.web.charts import seconds, share

__all__ = [
    "HOME_PATH",
    "PAGE_HEADERS",
    "SIGNIN_PATH",
    "PageRefused",
    "SignInFirst",
    "duration",
    "fragment",
    "install_page_handlers",
    "page",
]

TEMPLATES = Path(__file__).parent / "templates"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
"""Every staff page: never cached (they show customers' data), never framed."""


def duration(delta: timedelta) -> str:
    """A wait in the largest two units that matter: `40 s`, `12 min`, `3 h 5 min`, `2 d 4 h`."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["duration"] = duration
_env.filters["ms"] = seconds
_env.filters["share"] = share
templates = Jinja2Templates(env=_env)


def fragment(name: str, context: Mapping[str, Any]) -> str:
    """The template `staff/<name>` rendered alone: a part of a page, to send in its place."""
    return _env.get_template(f"staff/{name}").render(context)


def page(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The template `staff/<name>` rendered with `context`, with the staff pages' headers."""
    backend = getattr(request.app.state, "backend", None)
    shop = backend.settings.shop_name if backend is not None else "ShopBot"
    return templates.TemplateResponse(
        request,
        f"staff/{name}",
        {"shop": shop, **context},
        status_code=status,
        headers={**PAGE_HEADERS, **(headers or {})},
    )


class PageRefused(Exception):
    """A staff page's request refused with a page that says why (`refused.html`)."""

    def __init__(
        self, status: int, title: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = dict(headers or {})


class SignInFirst(Exception):
    """The request needs a signed-in staff member: off to the sign-in page, then back."""

    def __init__(self, back_to: str, *, expired: bool = False) -> None:
        super().__init__(back_to)
        self.back_to = back_to
        self.expired = expired


SIGNIN_PATH = "/staff/login"
HOME_PATH = "/staff"


def install_page_handlers(app: FastAPI) -> None:
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefused)
        context = {"title": exc.title, "message": exc.message, "staff": None}
        return page(request, "refused.html", context, status=exc.status, headers=exc.headers)

    async def sign_in_first(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInFirst)
        query: dict[str, str] = {}
        if exc.back_to != HOME_PATH:
            query["next"] = exc.back_to
        if exc.expired:
            query["notice"] = "expired"
        target = f"{SIGNIN_PATH}?{urlencode(query)}" if query else SIGNIN_PATH
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})

    app.add_exception_handler(PageRefused, refused)
    app.add_exception_handler(SignInFirst, sign_in_first)
