"""Backoff with full jitter and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tools.carrier import Backoff
from tools.carrier.retry import parse_retry_after

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def test_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=0.25, cap=2.0)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert backoff.ceiling(10_000) == 2.0


def test_delay_is_full_jitter_within_the_ceiling() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    rng = random.Random(3)
    for attempt in range(1, 6):
        draws = [backoff.delay(attempt, rng) for _ in range(500)]
        assert all(0.0 <= d <= backoff.ceiling(attempt) for d in draws)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(draws) < 0.1 * backoff.ceiling(attempt)
        assert max(draws) > 0.9 * backoff.ceiling(attempt)


def test_delay_is_reproducible_with_a_seed() -> None:
    backoff = Backoff()
    first = [backoff.delay(n, random.Random(5)) for n in range(1, 5)]
    assert first == [backoff.delay(n, random.Random(5)) for n in range(1, 5)]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("3", 3.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        (format_datetime(NOW + timedelta(seconds=7), usegmt=True), 7.0),
        ("Sat, 21 Nov 2026 11:59:00 GMT", 0.0),  # in the past: go now
        (None, None),
        ("", None),
        ("soon", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("Sat, 21 Nov 2026 12:00:10 -0000", None),  # RFC 9110 dates are GMT
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds
