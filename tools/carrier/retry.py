"""When to try the carrier again: exponential backoff with full jitter, and `Retry-After`.

Full jitter (a delay drawn uniformly from 0 to the exponential ceiling) spreads the retries
of many clients that failed together, so they do not hit a recovering carrier in waves.
A `Retry-After` from the carrier overrides the drawn delay: it knows best.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits U(0, min(cap, base * 2**(n-1)))."""

    base: float = 0.25
    """Ceiling of the first wait, in seconds."""
    cap: float = 4.0
    """No wait is drawn above this, however many attempts failed."""

    def ceiling(self, attempt: int) -> float:
        """The most the wait after failed attempt `attempt` (1-based) may be."""
        return min(self.cap, self.base * 2 ** min(attempt - 1, 62))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """A wait after failed attempt `attempt`, drawn from `rng`."""
        return rng.uniform(0.0, self.ceiling(attempt))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or an HTTP date).

    Returns None when the header is absent or unparsable (the caller falls back to backoff),
    and 0 for a date in the past. `now` must be timezone-aware.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        seconds = float(value)  # lenient: some servers send "1.5"
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means "-0000"
        return None
    return max(0.0, (when - now).total_seconds())


__all__ = ["Backoff", "parse_retry_after"]
