"""Write-and-commit in fewer round trips: the hot path of a turn commits several times.

On PostgreSQL the statements and the COMMIT go to the server together in psycopg's pipeline
mode: one round trip inside an open transaction, two when the batch also begins it (psycopg
sends BEGIN apart), where there were one per statement plus one or two. Elsewhere (SQLite, in
process, where a round trip costs nothing) they run one after the other.

Only statements whose rows nobody reads can go this way (a `SELECT pg_notify(...)` is fine:
its row is dropped): in pipeline mode a result arrives at the end, after SQLAlchemy has
looked for it. A statement that fails aborts the transaction, and the error is raised, as
SQLAlchemy's `DBAPIError`, when the batch is sent; nothing of it is committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

Write = tuple[Executable, Mapping[str, Any] | Sequence[Mapping[str, Any]] | None]
"""A statement returning no rows, with its parameters (a list for executemany)."""


async def commit_writes(session: AsyncSession, writes: Sequence[Write]) -> None:
    """Run `writes` in the session's transaction, then commit it: on PostgreSQL, the pending
    ORM changes aside, in one round trip (two if the transaction begins here)."""
    if writes:
        await session.flush()  # changed ORM objects (rare on the hot path) go first, apart
    conn = await session.connection()
    if not writes or conn.dialect.name != "postgresql":
        for statement, params in writes:
            await conn.execute(statement, params)
        await session.commit()
        return
    driver: psycopg.AsyncConnection[Any] = (await conn.get_raw_connection()).driver_connection  # type: ignore[assignment]
    try:
        async with driver.pipeline():
            for statement, params in writes:
                await conn.execute(statement, params)
            # Queued with the rest: `driver.commit()` would wait for its own reply first.
            await driver.execute("COMMIT")
    except psycopg.Error as exc:
        # The pipeline raises the driver's own error; callers expect SQLAlchemy's, and a
        # lost connection must be thrown away, as SQLAlchemy does when it sees one itself.
        lost = driver.broken or driver.closed
        if lost:
            await conn.invalidate(exc)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from exc
    # SQLAlchemy's bookkeeping: the driver has no transaction left, so this sends nothing.
    await session.commit()
