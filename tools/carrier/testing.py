"""Helpers for tests that involve the carrier: a fake clock, example data, a served sandbox.

with serve_in_thread(create_sandbox_app(faults)) as url:
    async with carrier_http_client(url) as http: ...

time = FakeTime()
client = LabelClient(http, api_key=SANDBOX_API_KEY, sleep=time.sleep, clock=time.clock)
...
assert time.sleeps == [2.0]        # the client waited Retry-After, without sleeping
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from tools.carrier.contract import Address, LabelRequest
from tools.carrier.transport import bound_port, sandbox_server


@dataclass
class FakeTime:
    """A monotonic clock that moves only when someone sleeps on it; records every sleep."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list[float])
    """Every sleep, in order, in seconds."""

    def clock(self) -> float:
        """The current fake time, for `LabelClient(clock=...)`."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Record the sleep and advance the clock, at once; for `LabelClient(sleep=...)`."""
        self.sleeps.append(seconds)
        self.now += seconds


def example_label_request(reference: str = "R-1042", **changes: Any) -> LabelRequest:
    """A valid label request from a London customer to a Bristol returns centre."""
    values: dict[str, Any] = {
        "return_reference": reference,
        "from_address": Address(
            name="Ada Lovelace",
            line1="12 Analytical Row",
            city="London",
            postal_code="N1 9GU",
            country="GB",
        ),
        "to_address": Address(
            name="Shop Returns Centre",
            line1="Unit 4, Dock Road",
            line2="Gate B",
            city="Bristol",
            postal_code="BS1 4XX",
            country="GB",
        ),
        "weight_grams": 800,
    }
    return LabelRequest(**(values | changes))


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1") -> Generator[str, None, None]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yield its base URL."""
    server = sandbox_server(port=0, host=host, app=app, log_level="warning")
    thread = threading.Thread(target=server.run, name="carrier-sandbox", daemon=True)
    thread.start()
    give_up = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > give_up:
            server.should_exit = True
            raise RuntimeError("the carrier sandbox did not start")
        time.sleep(0.01)
    url = f"http://{host}:{bound_port(server)}"
    # FastAPI builds its routes at the first request under `warnings.catch_warnings()`, which
    # is not thread-safe: build them now, before a test's threads make requests.
    httpx.get(f"{url}/-/warm-up", timeout=10)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


__all__ = ["FakeTime", "example_label_request", "serve_in_thread"]
