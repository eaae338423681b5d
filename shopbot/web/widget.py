"""The embeddable widget (one script tag) and the demo shop page, served as static files.

<script src="https://shopbot.example/widget.js" data-shopbot-url="https://shopbot.example"
        data-customer-token="(optional, signed by the shop's backend)" defer></script>
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).parent / "static"
CACHE = {"Cache-Control": "public, max-age=300"}


def static_file(name: str, media_type: str) -> FileResponse:
    """A file of `static/`, cacheable for a few minutes."""
    return FileResponse(STATIC / name, media_type=media_type, headers=CACHE)


def widget_router(*, demo: bool) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/widget.js")
    async def widget_js() -> FileResponse:
        return FileResponse(
            STATIC / "widget.js", media_type="text/javascript; charset=utf-8", headers=CACHE
        )

    @router.get("/widget.css")
    async def widget_css() -> FileResponse:
        return FileResponse(STATIC / "widget.css", media_type="text/css", headers=CACHE)

    if demo:

        @router.get("/demo")
        async def demo_page() -> FileResponse:
            return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8")

        @router.get("/")
        async def home() -> RedirectResponse:
            return RedirectResponse("/demo")

    return router
