"""How ShopBot reaches the carrier: the embedded sandbox in process, or a URL; and serving it.

    http = carrier_http_client(settings.carrier_url)  # None: the sandbox, in process
    server = sandbox_server(port=8040)                # `shopbot sandbox carrier --port 8040`

In process, requests go through `httpx.ASGITransport` straight into the sandbox app: no
socket, no port, the same HTTP semantics. Served, the same app runs under uvicorn on
loopback, so the same client code is tested over real HTTP.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from tools.carrier.faults import ConnectionDropped, Faults
from tools.carrier.sandbox import SANDBOX_API_KEY, create_sandbox_app

SANDBOX_BASE_URL = "http://parcelo.sandbox"
"""The base URL of the in-process sandbox (never resolved: no request leaves the process)."""
DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
"""Per-request socket timeouts; `LabelClient` also bounds each attempt and the whole call."""


class SandboxTransport(httpx.ASGITransport):
    """`httpx.ASGITransport` that turns the sandbox's dropped connections into httpx's error."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc


def carrier_http_client(
    carrier_url: str | None,
    *,
    sandbox: FastAPI | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> httpx.AsyncClient:
    """An AsyncClient for the carrier at `carrier_url`, or for an in-process sandbox if None.

    `sandbox` is the app to embed (default: a fresh `create_sandbox_app()`, labels in
    memory). The caller owns the client: `async with` it or `await client.aclose()`.
    """
    if carrier_url is None:
        transport = SandboxTransport(app=sandbox or create_sandbox_app())
        return httpx.AsyncClient(transport=transport, base_url=SANDBOX_BASE_URL, timeout=timeout)
    return httpx.AsyncClient(base_url=carrier_url, timeout=timeout)


def sandbox_server(
    port: int = 8040,
    host: str = "127.0.0.1",
    *,
    faults: Faults | None = None,
    api_key: str = SANDBOX_API_KEY,
    data_dir: Path | None = None,
    app: FastAPI | None = None,
    log_level: str = "info",
) -> uvicorn.Server:
    """A uvicorn server for the sandbox (`app`, or a new one); `port=0` picks a free port.

    Run it with `server.run()` (blocking) or `await server.serve()`; stop it by setting
    `server.should_exit = True`. With `data_dir`, labels survive a restart.
    """
    app = app or create_sandbox_app(faults, api_key=api_key, data_dir=data_dir)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        ws="none",
        log_level=log_level,
        timeout_graceful_shutdown=2,
    )
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDroppedConnections) for f in error_log.filters):
        error_log.addFilter(_HideDroppedConnections())
    return uvicorn.Server(config)


async def serve_sandbox(
    port: int = 8040,
    host: str = "127.0.0.1",
    *,
    faults: Faults | None = None,
    api_key: str = SANDBOX_API_KEY,
    data_dir: Path | None = None,
) -> None:
    """Serve the sandbox until interrupted (what `shopbot sandbox carrier` runs)."""
    server = sandbox_server(port, host, faults=faults, api_key=api_key, data_dir=data_dir)
    await server.serve()


class _HideDroppedConnections(logging.Filter):
    """Keep the `disconnect` fault, which is on purpose, out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def bound_port(server: uvicorn.Server) -> int:
    """The port a started server listens on (useful with `port=0`)."""
    for listener in server.servers:
        for sock in listener.sockets:
            port: int = sock.getsockname()[1]
            return port
    raise RuntimeError("the server is not listening yet")


__all__ = [
    "DEFAULT_TIMEOUT",
    "SANDBOX_BASE_URL",
    "SandboxTransport",
    "bound_port",
    "carrier_http_client",
    "sandbox_server",
    "serve_sandbox",
]
