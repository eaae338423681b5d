"""The chat-widget backend (`shopbot serve`): conversations over HTTP, replies as resumable
server-sent events, the embeddable widget and a demo shop page.

    create_app(settings) -> FastAPI        one per worker process
    serve(settings, host, port, workers)   uvicorn with N workers

`WebConfig` imports nothing else of ShopBot, so `shopbot.config` can nest it as
`Settings.web`; the app and the server load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopbot.web.config import WebConfig, web_config

if TYPE_CHECKING:
    from shopbot.web.app import create_app
    from shopbot.web.server import serve


def __getattr__(name: str) -> object:
    if name == "create_app":
        from shopbot.web.app import create_app

        return create_app
    if name == "serve":
        from shopbot.web.server import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["WebConfig", "create_app", "serve", "web_config"]
