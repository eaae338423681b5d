"""One write path for a commit: a `Batch` of rows, written by the database's `Writer`.

A `Batch` is rows to insert, rows to update (matched by equality) and, on PostgreSQL, a
NOTIFY; the hot path of a turn commits several times a turn. `writer_for(session)` gives the
one interface both dialects use: `commit` writes a batch and commits, `execute` runs a
statement that may commit alone. Every statement is SQLAlchemy Core, built once per table or
batch shape.

`Writer` (SQLite, in process, where a statement costs little) runs a batch as plain inserts
and updates one after the other, then the commit. `PostgresWriter` keeps a commit to one
round trip: the batch is one statement, its rows passed as JSON (`json_to_recordset`) and its
parts as data-modifying CTEs, compiled once per shape and run by the driver as a prepared
statement, with the COMMIT in one pipeline when a transaction is open, alone in autocommit
when none is (a single statement is atomic by itself; that spares psycopg's BEGIN, which it
sends apart).

Both store the same rows: an insert names every column but an autoincrement key (so no
Python-side default is needed), and None in a JSON column is SQL NULL, as the ORM wrote it.
(Only PostgreSQL's refuses NaN in a float column, and lets a datetime nested in a JSON column
through as text.) A statement that fails aborts the transaction, and the error is raised as
SQLAlchemy's `DBAPIError`; nothing of the batch is committed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import (
    CTE,
    JSON,
    ColumnElement,
    CursorResult,
    Executable,
    Table,
    TableValuedAlias,
    bindparam,
    column,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.functions import Function


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
    match are refused on every database."""

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


class Writer:
    """Writes through SQLAlchemy Core, a statement at a time: SQLite's, or any database's."""

    returning_reads: ClassVar[bool] = False
    """Whether a RETURNING clause may hold correlated subqueries (SQLite writes RETURNING
    without table names, which breaks them)."""

    async def commit(self, session: AsyncSession, batch: Batch) -> None:
        """Write `batch` in the session's transaction after its pending ORM changes, and
        commit."""
        if batch:
            await session.flush()  # changed ORM objects (rare on the hot path) go first, apart
        conn = await session.connection()
        if batch.notify is not None:
            raise ValueError("NOTIFY is PostgreSQL's")
        for table, rows in batch.inserts:
            _check_insert(table, rows)
            await conn.execute(_insert(table), [_core_values(table, row) for row in rows])
        _check_updates(batch.updates)
        for change in batch.updates:
            statement = _update(change.table, tuple(change.values), tuple(change.match))
            params = {f"set_{k}": v for k, v in _core_values(change.table, change.values).items()}
            params |= {f"match_{k}": v for k, v in change.match.items()}
            await conn.execute(statement, params)
        await session.commit()

    async def execute(
        self,
        session: AsyncSession,
        statement: Executable,
        params: Mapping[str, Any],
        *,
        alone: bool = False,
    ) -> CursorResult[Any]:
        """Run `statement` in the session's transaction. With `alone`, a writer that can
        spare the round trips commits it at once when no transaction is open; this one
        leaves it to the caller's commit."""
        return await (await session.connection()).execute(statement, params)


class PostgresWriter(Writer):
    """A commit in one round trip: the batch as one statement on the driver, with its COMMIT."""

    returning_reads = True

    async def commit(self, session: AsyncSession, batch: Batch) -> None:
        if not batch:
            await session.commit()
            return
        await session.flush()
        conn = await session.connection()
        sql, params = _one_statement(batch)
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
            # Callers expect SQLAlchemy's error, and a lost connection must be thrown away,
            # as SQLAlchemy does when it sees one itself.
            lost = driver.broken or driver.closed
            if lost:
                await conn.invalidate(exc)
            raise DBAPIError.instance(
                None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
            ) from exc
        # SQLAlchemy's bookkeeping: the driver has no transaction left, so this sends nothing.
        await session.commit()

    async def execute(
        self,
        session: AsyncSession,
        statement: Executable,
        params: Mapping[str, Any],
        *,
        alone: bool = False,
    ) -> CursorResult[Any]:
        """Run `statement`; with `alone` and no transaction open, committed at once in
        autocommit (one round trip, not BEGIN apart), else in the session's transaction."""
        conn = await session.connection()
        if not alone:
            return await conn.execute(statement, params)
        async with alone_if_idle(await psycopg_of(conn)):
            return await conn.execute(statement, params)


_POSTGRES, _CORE = PostgresWriter(), Writer()


def writer_for(session: AsyncSession) -> Writer:
    """The writer for the session's database."""
    return _POSTGRES if session.get_bind().dialect.name == "postgresql" else _CORE


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


# --- a statement at a time --------------------------------------------------------------


@cache
def _insert(table: Table) -> Executable:
    return insert(table).inline()


@cache
def _update(table: Table, values: tuple[str, ...], match: tuple[str, ...]) -> Executable:
    """UPDATE `table` SET each of `values` WHERE each of `match` equals its parameter
    (`set_<column>`, `match_<column>`)."""
    where = [table.c[k] == bindparam(f"match_{k}", type_=table.c[k].type) for k in match]
    sets = {k: bindparam(f"set_{k}", type_=table.c[k].type) for k in values}
    return update(table).where(*where).values(sets)


def _core_values(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """None in a JSON column is SQL NULL (Core would store JSON 'null')."""
    return {
        k: null() if v is None and isinstance(table.c[k].type, JSON) else v for k, v in row.items()
    }


# --- PostgreSQL: one statement ----------------------------------------------------------

_PG = postgresql_psycopg.dialect()
_SHAPES: dict[tuple[Any, ...], bytes] = {}
"""The statement of each batch shape (tables, columns, a notification or not), compiled once."""


def _one_statement(batch: Batch) -> tuple[bytes, dict[str, Any]]:
    """The batch as one statement with its parameters."""
    inserts: list[tuple[Table, tuple[str, ...]]] = []
    params: dict[str, Any] = {}
    for n, (table, rows) in enumerate(batch.inserts):
        inserts.append((table, _check_insert(table, rows)))
        params[f"rows{n}"] = _json(rows)
    _check_updates(batch.updates)
    updates: list[tuple[Table, tuple[str, ...], tuple[str, ...]]] = []
    for n, change in enumerate(batch.updates):
        updates.append((change.table, tuple(change.values), tuple(change.match)))
        params[f"set{n}"] = _json(change.values)
        params[f"match{n}"] = _json(change.match)
    if batch.notify is not None:
        params["channel"], params["payload"] = batch.notify.channel, batch.notify.payload
    key = (tuple(inserts), tuple(updates), batch.notify is not None)
    sql = _SHAPES.get(key)
    if sql is None:
        sql = _SHAPES[key] = _compiled(*key)
    return sql, params


def _compiled(
    inserts: Sequence[tuple[Table, tuple[str, ...]]],
    updates: Sequence[tuple[Table, tuple[str, ...], tuple[str, ...]]],
    notify: bool,
) -> bytes:
    """WITH insert<n> AS (INSERT ... SELECT FROM the rows), update<n> AS (UPDATE ... FROM the
    values and the match) SELECT pg_notify(...), or SELECT NULL."""
    parts: list[CTE] = []
    for n, (table, names) in enumerate(inserts):
        rows = _record(func.json_to_recordset, f"rows{n}", table, names, "r")
        parts.append(
            insert(table).from_select(names, select(*(rows.c[c] for c in names))).cte(f"insert{n}")
        )
    for n, (table, values, match) in enumerate(updates):
        new = _record(func.json_to_record, f"set{n}", table, values, "v")
        old = _record(func.json_to_record, f"match{n}", table, match, "m")
        where = [table.c[c] == old.c[c] for c in match]
        parts.append(
            update(table).where(*where).values({c: new.c[c] for c in values}).cte(f"update{n}")
        )
    result: ColumnElement[Any] = (
        func.pg_notify(bindparam("channel"), bindparam("payload")) if notify else null()
    )
    return str(select(result).add_cte(*parts).compile(dialect=_PG)).encode()


def _record(
    reader: Callable[..., Function[Any]],
    param: str,
    table: Table,
    columns: Sequence[str],
    name: str,
) -> TableValuedAlias:
    """`reader(:param::JSON) AS name(column type, ...)`: a JSON object or array read as rows
    of `table`'s `columns`."""
    typed = (column(c, table.c[c].type) for c in columns)
    return (
        reader(bindparam(param, type_=JSON))
        .table_valued(*typed)
        .render_derived(name=name, with_types=True)
    )


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
