"""`shopbot purge`: conversations go after a while; their counts stay.

A conversation whose last activity (the start of its last turn, `conversations.updated_at`)
is older than the cutoff goes, with everything ShopBot recorded of it: messages, events, the
audit log, confirmations. Before it goes it is counted into `conversation_stats`, one row per
shop day (the day it started, in the shop's time zone) and channel: conversations, verified,
escalated, turns, model steps, denials, failed identity checks, confirmation requests, returns
created. The shop's own records stay: orders, returns with their items and labels, the
outbox's emails. A return loses only its link to the conversation (`returns.conversation_id`
becomes null).

One transaction: a purge that fails changes nothing, and a second run finds nothing left to
purge (idempotent; a day's counts grow only by conversations not counted before). Safe beside
running workers: a conversation whose turn is running (a live lease) is left for the next
purge; on PostgreSQL the purged rows are locked first (`FOR UPDATE SKIP LOCKED`), so a turn
that starts on one meanwhile waits, then finds no conversation; on SQLite the purge holds the
write lock, as a turn does, and turns wait for it (up to the 5 s busy timeout: purge at a quiet
hour). A dry run reads the same and writes nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Exists, Row, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from db import (
    ActionLog,
    Base,
    Confirmation,
    Conversation,
    ConversationStats,
    Event,
    Message,
    Return,
    utcnow,
)
from shopbot.errors import ConfigError
from shopbot.state import FAILED_CHECK

__all__ = ["COUNTS", "PurgeReport", "parse_age", "purge"]

COUNTS = (
    "conversations",
    "verified",
    "escalated",
    "turns",
    "steps",
    "denials",
    "failed_verifications",
    "confirmations",
    "returns_created",
)
"""The columns of `conversation_stats` a purge adds to."""
RECORDS = {
    "events": Event,
    "messages": Message,
    "action_log": ActionLog,
    "confirmations": Confirmation,
}
"""What ShopBot recorded of a conversation, by table: it goes with the conversation."""
STATS = Base.metadata.tables[ConversationStats.__tablename__]
CHUNK = 500
"""Conversations per statement: SQLite caps a statement's parameters."""

Chosen = Row[str, str, datetime, str | None, int]
"""A conversation to purge: id, channel, created_at, customer_id, turns."""

_AGE = re.compile(r"(\d+)\s*([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """`12h`, `30d`, `2w` as a timedelta; a `ConfigError` saying what is accepted otherwise."""
    found = _AGE.fullmatch(text.strip().lower())
    if found is None:
        raise ConfigError(
            f"--older-than {text!r} is not an age: a whole number and h, d or w (12h, 30d, 2w)"
        )
    amount, unit = int(found.group(1)), _UNITS[found.group(2)]
    if amount == 0:
        raise ConfigError("--older-than must be more than zero: 0 would purge every conversation")
    try:
        return timedelta(**{unit: amount})
    except OverflowError:
        raise ConfigError(f"--older-than {text!r} is too long ago") from None


@dataclass(frozen=True)
class DayCounts:
    """What a purge adds to one row of `conversation_stats`."""

    day: date
    channel: str
    counts: Counter[str]

    def line(self) -> str:
        said = ", ".join(f"{self.counts[name]} {name.replace('_', ' ')}" for name in COUNTS)
        return f"{self.day.isoformat()} {self.channel}: {said}"


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    dry_run: bool
    rows: dict[str, int]
    """Rows deleted, or that a dry run would delete, by table (`conversations` included)."""
    returns_unlinked: int
    """Returns that keep everything but their link to a purged conversation."""
    days: list[DayCounts]

    def lines(self) -> list[str]:
        """The report as `shopbot purge` prints it."""
        since = f"last active before {self.cutoff:%Y-%m-%d %H:%M} UTC"
        if not self.rows["conversations"]:
            return [f"no conversations {since}: nothing to purge"]
        verb = "would delete" if self.dry_run else "deleted"
        records = ", ".join(f"{table} {n}" for table, n in self.rows.items())
        kept = "would add" if self.dry_run else "added"
        return [
            f"{verb} the conversations {since}: {records}",
            f"returns kept, unlinked from their conversation: {self.returns_unlinked}",
            f"{kept} to conversation_stats (day the conversations started, shop time):",
            *(f"  {day.line()}" for day in self.days),
        ]


async def purge(
    sessions: async_sessionmaker[AsyncSession],
    older_than: timedelta,
    zone: ZoneInfo,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PurgeReport:
    """Purge the conversations idle for longer than `older_than`, in one transaction."""
    now = now or utcnow()
    cutoff = now - older_than
    async with sessions() as session:
        chosen = (
            select(
                Conversation.id,
                Conversation.channel,
                Conversation.created_at,
                Conversation.customer_id,
                Conversation.turns,
            )
            .where(
                Conversation.updated_at < cutoff,
                or_(Conversation.turn_lease_until.is_(None), Conversation.turn_lease_until < now),
            )
            .order_by(Conversation.id)
        )
        if not dry_run:
            chosen = chosen.with_for_update(skip_locked=True)
        conversations = (await session.execute(chosen)).all()
        ids = [c.id for c in conversations]
        tally = {cid: Counter[str]() for cid in ids}
        rows = Counter[str]({"conversations": len(ids)} | dict.fromkeys(RECORDS, 0))
        unlinked = 0
        for chunk in _chunks(ids):
            unlinked += await _count(session, chunk, tally, rows)
        report = PurgeReport(
            cutoff, dry_run, dict(rows), unlinked, _days(conversations, tally, zone)
        )
        if dry_run or not ids:
            return report
        await _add_stats(session, report.days, now)
        for chunk in _chunks(ids):
            for model in RECORDS.values():
                table = Base.metadata.tables[model.__tablename__]
                await session.execute(delete(table).where(table.c.conversation_id.in_(chunk)))
            await session.execute(
                update(Return).where(Return.conversation_id.in_(chunk)).values(conversation_id=None)
            )
            await session.execute(delete(Conversation).where(Conversation.id.in_(chunk)))
        await session.commit()
        return report


PERSON_EVENTS = ("escalated", "staff_joined")
"""A conversation with one of these needed a person: escalated, or taken over by staff (a
hand-back settles its status, so the status alone would forget it)."""


def needed_a_person(conversation_id: ColumnElement[str] | InstrumentedAttribute[str]) -> Exists:
    """Whether the conversation has an escalation or a staff member's take-over."""
    return (
        select(Event.id)
        .where(Event.conversation_id == conversation_id, Event.kind.in_(PERSON_EVENTS))
        .exists()
    )


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _sum(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


async def _count(
    session: AsyncSession,
    chunk: Sequence[str],
    tally: dict[str, Counter[str]],
    rows: Counter[str],
) -> int:
    """Count the chunk's records into `tally` (per conversation) and `rows` (per table);
    the number of its returns."""
    steps = (
        select(
            ActionLog.conversation_id,
            func.count(),
            _sum(ActionLog.verdict == "deny"),
            _sum(FAILED_CHECK),
        )
        .where(ActionLog.conversation_id.in_(chunk))
        .group_by(ActionLog.conversation_id)
    )
    for cid, n, denied, failed in await session.execute(steps):
        tally[cid].update(steps=n, denials=denied or 0, failed_verifications=failed or 0)
    people = (
        select(Event.conversation_id)
        .where(Event.conversation_id.in_(chunk), Event.kind.in_(PERSON_EVENTS))
        .distinct()
    )
    for (cid,) in await session.execute(people):
        tally[cid]["escalated"] = 1
    for name, model in RECORDS.items():
        column = model.conversation_id
        counted = select(column, func.count()).where(column.in_(chunk)).group_by(column)
        for cid, n in await session.execute(counted):
            rows[name] += n
            if model is Confirmation:
                tally[cid]["confirmations"] += n
    returns = (
        select(Return.conversation_id, func.count())
        .where(Return.conversation_id.in_(chunk))
        .group_by(Return.conversation_id)
    )
    found = 0
    for cid, n in await session.execute(returns):
        tally[str(cid)]["returns_created"] += n
        found += n
    return found


def _days(
    conversations: Sequence[Chosen], tally: dict[str, Counter[str]], zone: ZoneInfo
) -> list[DayCounts]:
    days: dict[tuple[date, str], Counter[str]] = {}
    for c in conversations:
        counts = days.setdefault((c.created_at.astimezone(zone).date(), c.channel), Counter())
        counts.update(tally[c.id])
        counts.update(
            conversations=1,
            verified=c.customer_id is not None,
            turns=c.turns,
        )
    return [DayCounts(day, channel, counts) for (day, channel), counts in sorted(days.items())]


async def _add_stats(session: AsyncSession, days: list[DayCounts], now: datetime) -> None:
    """Add the counts to their days' rows, created as needed (one upsert per row)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(STATS)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "channel"],
        set_={name: STATS.c[name] + statement.excluded[name] for name in COUNTS}
        | {"updated_at": statement.excluded.updated_at},
    )
    await session.execute(
        statement,
        [
            {"day": d.day, "channel": d.channel, "updated_at": now}
            | {name: d.counts[name] for name in COUNTS}
            for d in days
        ],
    )
