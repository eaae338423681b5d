"""The owner's numbers: per shop day, over the last 7, 30 or 90 days.

Every number is counted on the day a conversation started, in the shop's time zone
(`PolicyConfig.timezone`), as `shopbot purge` counts what it deletes into
`conversation_stats`: a day is the sum of its purged conversations (that table) and the ones
still held (read live), so purging changes no day's count. What each number means:

- conversations: conversations started that day (in the widget or a chat), whether or not the
  customer went on to write;
- escalated: those that needed a person: escalated, or taken over by a staff member, even
  when later handed back (`shopbot.retention.needed_a_person`, as purge counts them);
- resolved without a person: the others, as a share of the day's conversations;
- denials: the model's steps the guard denied, in those conversations;
- median turn time: the middle of the day's turn times, from the customer's message to the
  end of ShopBot's turn (`turn_ended`'s ms: model, guard, tools and storage). Purging keeps no
  turn times, so it covers the conversations still held; a day with none has no median.

Three reads: the stats rows of the period, the held conversations started in it (by
`ix_conversations_created_at`, each with its denials counted through its audit rows' index),
and their turns' ends (through the events' `(conversation_id, seq)` index). Days are cut in
Python: SQLite has no time zones.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db import ActionLog, Conversation, ConversationStats
from db import Event as EventRow
from shopbot.retention import needed_a_person

__all__ = [
    "DEFAULT_PERIOD",
    "PERIODS",
    "BadPeriod",
    "DayNumbers",
    "Numbers",
    "parse_period",
    "read_numbers",
]

PERIODS = (7, 30, 90)
"""The periods the page offers, in days (today included)."""
DEFAULT_PERIOD = 30


class BadPeriod(ValueError):
    """The page's parameters ask for no period it offers; the message says which it does."""


def parse_period(params: list[tuple[str, str]]) -> int:
    """`days=7|30|90` (default 30), and nothing else."""
    offered = ", ".join(map(str, PERIODS))
    days = [value for name, value in params if name == "days"]
    unknown = [name for name, _ in params if name != "days"]
    if unknown:
        raise BadPeriod(f"The numbers page has no parameter {unknown[0][:40]!r}: it takes days.")
    if len(days) > 1:
        raise BadPeriod("The parameter 'days' is given twice: give it once.")
    if not days:
        return DEFAULT_PERIOD
    if days[0] not in {str(p) for p in PERIODS}:
        raise BadPeriod(f"days={days[0][:20]!r} is not a period the page shows: {offered}.")
    return int(days[0])


@dataclass
class DayNumbers:
    day: date
    conversations: int = 0
    escalated: int = 0
    denials: int = 0
    purged: int = 0
    """How many of the day's conversations are counted from `conversation_stats`."""
    turn_ms: list[float] = field(default_factory=list[float])
    """The turn times of the day's conversations still held."""

    @property
    def resolved(self) -> int:
        return self.conversations - self.escalated

    @property
    def resolved_share(self) -> float | None:
        """Resolved without a person, of the day's conversations; None with none."""
        return self.resolved / self.conversations if self.conversations else None

    @property
    def median_turn_ms(self) -> float | None:
        return statistics.median(self.turn_ms) if self.turn_ms else None


@dataclass(frozen=True)
class Numbers:
    period: int
    zone: str
    days: list[DayNumbers]
    """Oldest first, one per day of the period, today last."""

    @property
    def total(self) -> DayNumbers:
        """The period as one day (its `day` is the first)."""
        whole = DayNumbers(self.days[0].day)
        for d in self.days:
            whole.conversations += d.conversations
            whole.escalated += d.escalated
            whole.denials += d.denials
            whole.purged += d.purged
            whole.turn_ms.extend(d.turn_ms)
        return whole


async def read_numbers(engine: AsyncEngine, period: int, zone: ZoneInfo, now: datetime) -> Numbers:
    """The numbers of the `period` days up to `now`'s day (shop time), today included."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=period - 1)
    since = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    days = {first + timedelta(days=i): DayNumbers(first + timedelta(days=i)) for i in range(period)}

    def day_of(moment: datetime) -> DayNumbers | None:
        return days.get(moment.astimezone(zone).date())

    denials = (
        select(func.count())
        .where(ActionLog.conversation_id == Conversation.id, ActionLog.verdict == "deny")
        .scalar_subquery()
    )
    held = select(Conversation.created_at, needed_a_person(Conversation.id), denials).where(
        Conversation.created_at >= since
    )
    stats = (
        select(
            ConversationStats.day,
            func.sum(ConversationStats.conversations),
            func.sum(ConversationStats.escalated),
            func.sum(ConversationStats.denials),
        )
        .where(ConversationStats.day >= first, ConversationStats.day <= today)
        .group_by(ConversationStats.day)
    )
    turns = (
        select(Conversation.created_at, EventRow.payload["ms"].as_float())
        .join(EventRow, EventRow.conversation_id == Conversation.id)
        .where(Conversation.created_at >= since, EventRow.kind == "turn_ended")
    )
    async with engine.connect() as conn:
        for day, conversations, escalated, denied in await conn.execute(stats):
            counted = days[day]
            counted.conversations += int(conversations)
            counted.purged += int(conversations)
            counted.escalated += int(escalated)
            counted.denials += int(denied)
        for created_at, person, denied in await conn.execute(held):
            found = day_of(created_at)
            if found is None:
                continue  # started after `now`: a clock a little ahead
            found.conversations += 1
            found.escalated += bool(person)
            found.denials += int(denied)
        for created_at, ms in await conn.execute(turns):
            found = day_of(created_at)
            if found is not None and ms is not None:
                found.turn_ms.append(float(ms))
    return Numbers(period, zone.key, list(days.values()))
