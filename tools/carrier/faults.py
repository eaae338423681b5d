"""Faults the carrier sandbox can inject, like a payment provider's test mode.

Two kinds, both deterministic so tests can rely on them:

- **Rates**, drawn from a seeded RNG for every API request: `latency` (seconds added),
  `error_rate` (500 or 503), `rate_limit_rate` (429 with `Retry-After`).
- **A script**, consumed in order before any rate applies:

      faults = Faults()
      faults.fail_next(2)                          # the next 2 requests get 503
      faults.rate_limit_next(1, retry_after=3)     # then one 429 with Retry-After: 3
      faults.fail_after_create(mode="hang")        # the next create stores its label and
                                                   # then never answers

`fail_after_create` is the fault idempotency keys exist for: the label is bought, but the
client doesn't learn it. Modes: `error` answers 500, `disconnect` sends the status line and
drops the connection, `hang` answers nothing for `hang_seconds` (until the client times out).

A `Faults` object is shared by the sandbox and the test (or CLI) that scripts it; it is
thread-safe, so a test can script a sandbox served by uvicorn in another thread.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Literal, Self

AfterCreate = Literal["error", "disconnect", "hang"]


class ConnectionDropped(Exception):
    """Raised inside the sandbox to drop the connection after the response has started.

    uvicorn closes the socket; the in-process transport (`tools.carrier.transport`) turns it
    into `httpx.RemoteProtocolError`, what a client sees on a real network.
    """


@dataclass(frozen=True)
class InjectedFault:
    """An error response the sandbox sends instead of handling the request."""

    status: int
    retry_after: str | None = None
    """The `Retry-After` header value, if any."""


@dataclass
class Faults:
    """Configurable, seeded faults for the carrier sandbox."""

    latency: float = 0.0
    """Seconds added before every API request is handled."""
    error_rate: float = 0.0
    """Probability that an API request fails with 500 or 503 before it is handled."""
    rate_limit_rate: float = 0.0
    """Probability that an API request is refused with 429."""
    retry_after: int = 1
    """The `Retry-After` seconds sent with random 429s and 503s."""
    hang_seconds: float = 30.0
    """How long a `hang` fault keeps the request open (the client's timeout is shorter)."""
    seed: int | None = 0
    """Seed of the RNG behind the rates; None for a different sequence every run."""
    injected: list[str] = field(default_factory=list[str], init=False)
    """A log of every fault injected, e.g. `["503", "429", "after-create:hang"]`."""

    _script: deque[InjectedFault] = field(
        default_factory=deque[InjectedFault], init=False, repr=False
    )
    _after_create: deque[AfterCreate] = field(
        default_factory=deque[AfterCreate], init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("error_rate", "rate_limit_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency < 0 or self.hang_seconds < 0 or self.retry_after < 0:
            raise ValueError("latency, hang_seconds and retry_after must not be negative")
        self._rng = random.Random(self.seed)

    def fail_next(
        self, n: int = 1, *, status: int = 503, retry_after: int | datetime | str | None = None
    ) -> Self:
        """Fail the next `n` API requests with `status` (a 5xx), optionally with Retry-After."""
        if not 500 <= status <= 599:
            raise ValueError("fail_next takes a 5xx status; use rate_limit_next for 429")
        return self._push(n, InjectedFault(status, _header(retry_after)))

    def rate_limit_next(self, n: int = 1, *, retry_after: int | datetime | str = 1) -> Self:
        """Refuse the next `n` API requests with 429 and `Retry-After` (seconds or a date)."""
        return self._push(n, InjectedFault(429, _header(retry_after)))

    def fail_after_create(self, n: int = 1, *, mode: AfterCreate = "error") -> Self:
        """Make the next `n` label creations store the label, then fail in `mode`."""
        _check_count(n)
        with self._lock:
            self._after_create.extend(mode for _ in range(n))
        return self

    @property
    def pending(self) -> int:
        """Scripted faults not yet consumed."""
        with self._lock:
            return len(self._script) + len(self._after_create)

    def clear(self) -> None:
        """Forget the script and the log (rates stay as configured)."""
        with self._lock:
            self._script.clear()
            self._after_create.clear()
            self.injected.clear()

    def before_request(self) -> InjectedFault | None:
        """The sandbox asks this for every API request: the fault to send, if any."""
        with self._lock:
            if self._script:
                fault = self._script.popleft()
            elif self._rng.random() < self.error_rate:
                fault = InjectedFault(self._rng.choice((500, 503)), str(self.retry_after))
            elif self._rng.random() < self.rate_limit_rate:
                fault = InjectedFault(429, str(self.retry_after))
            else:
                return None
            self.injected.append(str(fault.status))
            return fault

    def after_create(self) -> AfterCreate | None:
        """The sandbox asks this after storing a new label: how to fail, if at all."""
        with self._lock:
            if not self._after_create:
                return None
            mode = self._after_create.popleft()
            self.injected.append(f"after-create:{mode}")
            return mode

    def _push(self, n: int, fault: InjectedFault) -> Self:
        _check_count(n)
        with self._lock:
            self._script.extend([fault] * n)
        return self


def _check_count(n: int) -> None:
    if n < 1:
        raise ValueError("n must be at least 1")


def _header(retry_after: int | datetime | str | None) -> str | None:
    if isinstance(retry_after, datetime):
        return format_datetime(retry_after, usegmt=True)
    return None if retry_after is None else str(retry_after)


__all__ = ["AfterCreate", "ConnectionDropped", "Faults", "InjectedFault"]
