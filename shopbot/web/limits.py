"""Rate limits: fixed windows of counted hits per key.

Per conversation, the limit is counted from the conversation's own messages in the database,
so it holds on every worker with no extra state (`shopbot.web.api`). Per client address,
new conversations are counted by a `Limiter`: `MemoryLimiter` (this worker only: with N
workers an address gets up to N times the limit) or `SqlLimiter`, which keeps the counters in
the `rate_limits` table that every worker shares. Failed staff sign-ins are counted the same
way, per account and per address (`shopbot.web.signin`): each attempt is a `hit` before its
password is checked, so parallel guesses cannot all pass before their failures count, and a
successful one is taken back (`forgive`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

RATE_LIMITS = Table(
    "rate_limits",
    MetaData(),
    Column("key", String(120), nullable=False),
    Column("window_start", Integer, nullable=False),
    Column("hits", Integer, nullable=False),
    PrimaryKeyConstraint("key", "window_start", name="pk_rate_limits"),
)
"""Shared counters for `SqlLimiter` (its migration is in the web README section)."""


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> float | None:
        """Count one hit; None when within the limit, else seconds until the window resets."""
        ...

    async def forgive(self, key: str, window_seconds: int) -> None:
        """Take back one hit of `key` in this window (none below zero)."""
        ...


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._counts: dict[tuple[str, int], int] = {}

    async def hit(self, key: str, limit: int, window_seconds: int) -> float | None:
        now = self.clock()
        start = int(now // window_seconds) * window_seconds
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= start}
        hits = self._counts[key, start] = self._counts.get((key, start), 0) + 1
        return None if hits <= limit else start + window_seconds - now

    async def forgive(self, key: str, window_seconds: int) -> None:
        start = int(self.clock() // window_seconds) * window_seconds
        if self._counts.get((key, start), 0) > 0:
            self._counts[key, start] -= 1


class SqlLimiter:
    """Counters in the `rate_limits` table: one upsert per hit, on SQLite and PostgreSQL."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], float] = time.time
    ) -> None:
        self.sessions = sessions
        self.clock = clock

    async def hit(self, key: str, limit: int, window_seconds: int) -> float | None:
        now = self.clock()
        start = int(now // window_seconds) * window_seconds
        async with self.sessions() as session:
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            statement = insert(RATE_LIMITS).values(key=key, window_start=start, hits=1)
            statement = statement.on_conflict_do_update(
                index_elements=["key", "window_start"],
                set_={"hits": RATE_LIMITS.c.hits + 1},
            ).returning(RATE_LIMITS.c.hits)
            hits = int((await session.execute(statement)).scalar_one())
            if random.random() < 0.01:
                # Old windows are of no use; sweep them now and then.
                await session.execute(
                    delete(RATE_LIMITS).where(RATE_LIMITS.c.window_start < start - window_seconds)
                )
            await session.commit()
        return None if hits <= limit else start + window_seconds - now

    async def forgive(self, key: str, window_seconds: int) -> None:
        start = int(self.clock() // window_seconds) * window_seconds
        statement = (
            update(RATE_LIMITS)
            .where(
                RATE_LIMITS.c.key == key,
                RATE_LIMITS.c.window_start == start,
                RATE_LIMITS.c.hits > 0,
            )
            .values(hits=RATE_LIMITS.c.hits - 1)
        )
        async with self.sessions() as session:
            await session.execute(statement)
            await session.commit()


def retry_after(oldest: float, window_seconds: float, now: float) -> float:
    """Seconds until the oldest hit of a sliding window leaves it."""
    return max(1.0, math.ceil(oldest + window_seconds - now))
