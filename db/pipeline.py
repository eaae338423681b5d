"""A commit's writes in one statement: the hot path of a turn commits several times a turn.

A `Batch` is rows to insert, rows to update (matched by equality) and, on PostgreSQL, a
NOTIFY. On PostgreSQL the whole batch is one SQL statement, its rows passed as JSON
(`json_to_recordset`) and its parts as data-modifying CTEs, run by the driver as a prepared
statement: with the COMMIT in one round trip when a transaction is open, alone in autocommit
when none is (a single statement is atomic by itself; that spares psycopg's BEGIN, which it
sends apart). Elsewhere (SQLite, in process, where a statement costs little) the same writes
run as Core statements one after the other, then the commit.

Both paths store the same rows: an insert names every column but an autoincrement key (so
no Python-side default is needed), and None in a JSON column is SQL NULL, as the ORM wrote
it. (Only the PostgreSQL path refuses NaN in a float column, and lets a datetime nested in a
JSON column through as text.) A statement that fails aborts the transaction, and the error
is raised as SQLAlchemy's `DBAPIError`; nothing of the batch is committed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import JSON, Table, insert, null, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable


@dataclass(frozen=True)
class Update:
    """UPDATE `table` SET `values` WHERE each `match` column equals its value (not None)."""

    table: Table
    match: Mapping[str, Any]
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Notify:
    """`pg_notify(channel, payload)`, delivered at the commit: PostgreSQL only."""

    channel: str
    payload: str


@dataclass
class Batch:
    """What one commit writes: inserts, updates, the notification.

    On PostgreSQL the parts run on one snapshot, so an update sees no row the same batch
    inserts, and of two updates of one row only one would take place: two with the same
    match are refused."""

    inserts: list[tuple[Table, list[dict[str, Any]]]] = field(
        default_factory=list[tuple[Table, list[dict[str, Any]]]]
    )
    updates: list[Update] = field(default_factory=list[Update])
    notify: Notify | None = None

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates or self.notify)

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.inserts.append((table, rows))


async def commit_batch(session: AsyncSession, batch: Batch) -> None:
    """Write `batch` in the session's transaction after its pending ORM changes, and commit."""
    if batch:
        await session.flush()  # changed ORM objects (rare on the hot path) go first, apart
    conn = await session.connection()
    if not batch or conn.dialect.name != "postgresql":
        for statement, params in core_statements(batch):
            await conn.execute(statement, params)
        await session.commit()
        return
    sql, params = _postgres(batch)
    driver = await psycopg_of(conn)
    try:
        async with alone_if_idle(driver) as alone:
            if alone:
                await driver.execute(sql, params, prepare=True)
            else:
                async with driver.pipeline():
                    await driver.execute(sql, params, prepare=True)
                    # Queued with it: `driver.commit()` would wait for its own reply first.
                    await driver.execute("COMMIT")
    except psycopg.Error as exc:
        # Callers expect SQLAlchemy's error, and a lost connection must be thrown away, as
        # SQLAlchemy does when it sees one itself.
        lost = driver.broken or driver.closed
        if lost:
            await conn.invalidate(exc)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from exc
    # SQLAlchemy's bookkeeping: the driver has no transaction left, so this sends nothing.
    await session.commit()


async def psycopg_of(conn: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """The driver's connection under SQLAlchemy's (PostgreSQL)."""
    return (await conn.get_raw_connection()).driver_connection  # type: ignore[return-value]


@asynccontextmanager
async def alone_if_idle(driver: psycopg.AsyncConnection[Any]) -> AsyncGenerator[bool]:
    """In autocommit for the block if no transaction is open (True), else as it was (False).

    For one statement that is atomic by itself: psycopg would send BEGIN apart, a round trip
    of its own, then the statement, then the COMMIT. SQLAlchemy's commit after it sends
    nothing, since the driver has no transaction open. The connection leaves the block as it
    came (a pooled connection left in autocommit would break its next user's transactions),
    unless it was lost in the block: then there is nothing to restore, and the block's own
    error is the one raised."""
    if driver.autocommit:
        yield True
        return
    if driver.info.transaction_status is not TransactionStatus.IDLE:
        yield False
        return
    try:
        await driver.set_autocommit(True)
        yield True
    except BaseException:
        if not (driver.closed or driver.broken):
            try:
                await driver.set_autocommit(False)
            except psycopg.Error:
                # Not left in autocommit for the pool's next user: closed, the pool drops
                # it. The block's error is the one to see.
                await driver.close()
        raise
    await driver.set_autocommit(False)


@cache
def _inserted(table: Table) -> frozenset[str]:
    """The columns an insert names: all of the table's but an autoincrement key."""
    return frozenset(c.key for c in table.columns if c is not table.autoincrement_column)


def _check_insert(table: Table, rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The columns the rows name, once each row is found to name `_inserted(table)`."""
    first = rows[0].keys()
    if first != _inserted(table) or any(row.keys() != first for row in rows):
        raise ValueError(f"rows for {table.name} must each name exactly {sorted(_inserted(table))}")
    return tuple(first)


def _check_updates(updates: list[Update]) -> None:
    """Refuses an unsound update, or two with the same match (overlapping matches are the
    caller's to avoid)."""
    targets: set[tuple[str, str]] = set()
    for change in updates:
        name = change.table.name
        if not change.match or not change.values:
            raise ValueError(f"an update of {name} needs match and values")
        if any(v is None for v in change.match.values()):
            raise ValueError(f"an update of {name} matches None (= is never true)")
        if any(isinstance(change.table.c[k].type, JSON) for k in change.match):
            raise ValueError(f"an update of {name} matches a JSON column")
        target = (name, json.dumps(change.match, default=_encode, sort_keys=True))
        if target in targets:
            raise ValueError(f"two updates of one {name} row in one batch")
        targets.add(target)


# --- elsewhere: Core statements ---------------------------------------------------------


def core_statements(batch: Batch) -> list[tuple[Executable, Any]]:
    """The batch as Core statements with their parameters: what runs off PostgreSQL."""
    if batch.notify is not None:
        raise ValueError("NOTIFY is PostgreSQL's")
    out: list[tuple[Executable, Any]] = []
    for table, rows in batch.inserts:
        _check_insert(table, rows)
        out.append((insert(table).inline(), [_core_values(table, row) for row in rows]))
    _check_updates(batch.updates)
    for change in batch.updates:
        where = [change.table.c[k] == v for k, v in change.match.items()]
        statement = (
            update(change.table).where(*where).values(_core_values(change.table, change.values))
        )
        out.append((statement, None))
    return out


def _core_values(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """None in a JSON column is SQL NULL (Core would store JSON 'null')."""
    return {
        k: null() if v is None and isinstance(table.c[k].type, JSON) else v for k, v in row.items()
    }


# --- PostgreSQL: one statement ----------------------------------------------------------

_PG = postgresql.dialect()
_SHAPES: dict[tuple[Any, ...], bytes] = {}
"""The statement of each batch shape (tables, columns, a notification or not), built once."""


def _postgres(batch: Batch) -> tuple[bytes, list[Any]]:
    """The batch as one statement with its parameters."""
    shape: list[Any] = []
    params: list[Any] = []
    for table, rows in batch.inserts:
        shape.append(("insert", table, _check_insert(table, rows)))
        params.append(_json(rows))
    _check_updates(batch.updates)
    for change in batch.updates:
        shape.append(("update", change.table, tuple(change.values), tuple(change.match)))
        params += [_json(change.values), _json(change.match)]
    key = (*shape, batch.notify is not None)
    sql = _SHAPES.get(key)
    if sql is None:
        sql = _SHAPES[key] = _statement(shape, batch.notify is not None).encode()
    if batch.notify is not None:
        params += [batch.notify.channel, batch.notify.payload]
    return sql, params


def _statement(shape: list[Any], notify: bool) -> str:
    parts: list[str] = []
    for n, (kind, table, *columns) in enumerate(shape):
        if kind == "insert":
            names = ", ".join(f'"{c}"' for c in columns[0])
            parts.append(
                f'w{n} AS (INSERT INTO "{table.name}" ({names}) SELECT {names} '
                f"FROM json_to_recordset(%s::json) AS r({_record(table, columns[0])}))"
            )
        else:
            values, match = columns
            sets = ", ".join(f'"{c}" = v."{c}"' for c in values)
            where = " AND ".join(f'"{table.name}"."{c}" = m."{c}"' for c in match)
            parts.append(
                f'w{n} AS (UPDATE "{table.name}" SET {sets} '
                f"FROM json_to_record(%s::json) AS v({_record(table, values)}), "
                f"json_to_record(%s::json) AS m({_record(table, match)}) WHERE {where})"
            )
    head = f"WITH {', '.join(parts)} " if parts else ""
    return head + ("SELECT pg_notify(%s, %s)" if notify else "SELECT 1")


def _record(table: Table, columns: Sequence[str]) -> str:
    """The column definitions that read a JSON object as a row of `table`."""
    return ", ".join(f'"{c}" {table.c[c].type.compile(dialect=_PG)}' for c in columns)


def _json(value: Any) -> str:
    # NaN and infinities are no JSON: refused here rather than by the server. `_encode`
    # serves the columns' own values (nested ones in a JSON column too, where Core's
    # serializer would refuse them: the tests run on SQLite as well).
    return json.dumps(
        value, default=_encode, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")
