"""`shopbot serve`: uvicorn with N worker processes, each running `create_app`."""

from __future__ import annotations

import os

import uvicorn

from shopbot.config import Settings
from shopbot.web.app import SETTINGS_ENV, settings_json
from shopbot.web.config import web_config


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    *,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Serve the widget backend until interrupted.

    Workers share nothing but the database: with `workers > 1` use PostgreSQL (SQLite works,
    but its single writer caps throughput). Settings reach the workers through the
    environment, secrets included, so every worker runs with exactly these.
    """
    web = web_config(settings)
    os.environ[SETTINGS_ENV] = settings_json(settings)
    uvicorn.run(
        "shopbot.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=web.forwarded_allow_ips,
        timeout_graceful_shutdown=int(web.shutdown_grace_seconds) + 5,
        log_level=log_level,
        access_log=access_log,
    )
