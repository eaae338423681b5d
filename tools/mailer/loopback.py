"""A real SMTP server on loopback that keeps what it receives (aiosmtpd), for replays,
demos and tests: the mailer talks to it exactly as it would to a relay."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Keep:
    received: list[EmailMessage] = field(default_factory=list[EmailMessage])

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 2.0.0 accepted"


class LoopbackInbox:
    """`start()` to listen on 127.0.0.1:`port`, `stop()` to go down; `received` keeps all."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._keep = _Keep()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[EmailMessage]:
        return self._keep.received

    def start(self) -> None:
        self._controller = Controller(self._keep, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            stop_controller(controller)


def stop_controller(controller: Controller) -> None:
    """Stop aiosmtpd after closing its connections: `Controller.stop()` alone can leave a
    just-closed connection's transport open, and a ResourceWarning surfaces later."""

    async def close_connections() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(close_connections(), controller.loop).result(timeout=10)
    controller.stop()
