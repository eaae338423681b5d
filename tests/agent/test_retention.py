"""`shopbot purge`: conversations idle past the cutoff go, with everything recorded of them;
their counts stay, and so do the shop's returns. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from agent_support import act, add_staff, turn
from sqlalchemy import func, select, update

from db import (
    ActionLog,
    Confirmation,
    Conversation,
    ConversationStats,
    Event,
    Message,
    Return,
    ReturnItem,
    utcnow,
)
from db.engine import bound_engine
from shopbot.app import start_conversation
from shopbot.errors import ConfigError, ConversationNotFound
from shopbot.events import ConfirmationRequested
from shopbot.handoff import Handoff
from shopbot.loop import Agent, ConfirmationAnswer, CustomerText
from shopbot.retention import COUNTS, PurgeReport, parse_age, purge
from shopbot.web.numbers import read_numbers

MONTH = timedelta(days=30)
TABLES = (Conversation, Message, Event, ActionLog, Confirmation, Return, ConversationStats)


def reply(message: str) -> dict[str, Any]:
    return act("reply", message=message)


RETURN_JEANS = act("create_return", order_id="482913", lines=[1], reason="too small")


async def a_return(agent: Agent) -> str:
    """A conversation with a denial, a failed identity check, a confirmation and a return."""
    cid = await start_conversation(agent.sessions, agent.settings)
    await turn(
        agent,
        cid,
        CustomerText("Where is 482913? I'm jane.d@example.com"),
        act("lookup_order", order_id="482913"),  # denied: not verified yet
        act("verify_identity", order_id="482913", email="jane.d@example.com"),
        reply("That did not match our records."),
    )
    events = await turn(
        agent,
        cid,
        CustomerText("Sorry, jane.doe@example.com: the jeans from 482913 go back"),
        act("verify_identity", order_id="482913", email="jane.doe@example.com"),
        RETURN_JEANS,
    )
    asked = next(e for e in events if isinstance(e, ConfirmationRequested))
    await turn(
        agent,
        cid,
        ConfirmationAnswer(asked.confirmation_id, True),
        RETURN_JEANS,
        reply("Done."),
    )
    return cid


async def a_hello(agent: Agent, channel: str = "cli") -> str:
    cid = await start_conversation(agent.sessions, agent.settings, channel=channel)
    await turn(agent, cid, CustomerText("hello"), reply("Hello! How can I help?"))
    return cid


async def idle(agent: Agent, cid: str, since: datetime, **also: Any) -> None:
    """Make the conversation's last activity (and its start) `since`."""
    async with agent.sessions() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == cid)
            .values(updated_at=since, created_at=since, **also)
        )
        await session.commit()


async def counts(agent: Agent) -> dict[str, int]:
    async with agent.sessions() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in TABLES
        }


RECORDED = {
    "messages": Message.conversation_id,
    "events": Event.conversation_id,
    "action_log": ActionLog.conversation_id,
    "confirmations": Confirmation.conversation_id,
    "returns": Return.conversation_id,
    "conversations": Conversation.id,
}


async def kept(agent: Agent, cid: str) -> dict[str, int]:
    """What the database still holds of one conversation, by table."""
    async with agent.sessions() as session:
        return {
            table: int(await session.scalar(select(func.count()).where(column == cid)) or 0)
            for table, column in RECORDED.items()
        }


async def stats(agent: Agent) -> dict[tuple[date, str], dict[str, int]]:
    async with agent.sessions() as session:
        rows = await session.scalars(select(ConversationStats))
        return {(r.day, r.channel): {name: getattr(r, name) for name in COUNTS} for r in rows}


def day_of(agent: Agent, when: datetime) -> date:
    return when.astimezone(agent.settings.policy.zone).date()


async def run_purge(agent: Agent, now: datetime, *, dry_run: bool = False) -> PurgeReport:
    return await purge(agent.sessions, MONTH, agent.settings.policy.zone, dry_run=dry_run, now=now)


async def test_idle_conversations_go_their_counts_and_returns_stay(agent: Agent) -> None:
    now = utcnow()
    old, edge_out = await a_return(agent), await a_hello(agent)
    edge_in, busy, fresh = await a_hello(agent), await a_hello(agent), await a_hello(agent)
    await idle(agent, old, now - MONTH - timedelta(days=3))
    await idle(agent, edge_out, now - MONTH - timedelta(minutes=1))
    await idle(agent, edge_in, now - MONTH + timedelta(minutes=1))
    # A turn is running in this one (its lease is live): it is left for the next purge.
    await idle(agent, busy, now - 2 * MONTH, turn_lease_until=now + timedelta(minutes=1))
    before = await counts(agent)
    old_records = await kept(agent, old)
    assert old_records["returns"] == 1

    planned = await run_purge(agent, now, dry_run=True)
    assert await counts(agent) == before, "a dry run changes nothing"
    assert planned.lines()[0].startswith("would delete the conversations last active before")

    done = await run_purge(agent, now)
    assert (done.rows, done.returns_unlinked, done.days) == (
        planned.rows,
        planned.returns_unlinked,
        planned.days,
    )
    assert done.rows["conversations"] == 2 and done.returns_unlinked == 1
    assert done.rows["action_log"] == old_records["action_log"] + 1
    for purged in (old, edge_out):
        assert set((await kept(agent, purged)).values()) == {0}, purged
    for stays in (edge_in, busy, fresh):
        assert (await kept(agent, stays))["events"] > 0, stays
    after = await counts(agent)
    assert after["returns"] == before["returns"], "the shop's returns stay"
    async with agent.sessions() as session:
        returned = (await session.scalars(select(Return).order_by(Return.id.desc()))).first()
        assert returned is not None and returned.conversation_id is None
        items = await session.scalar(
            select(func.count()).where(ReturnItem.return_id == returned.id)
        )
        assert items == 1

    old_day = day_of(agent, now - MONTH - timedelta(days=3))
    edge_day = day_of(agent, now - MONTH - timedelta(minutes=1))
    expected = {
        (old_day, "cli"): {
            "conversations": 1,
            "verified": 1,
            "escalated": 0,
            "turns": 3,
            "steps": 7,
            "denials": 1,
            "failed_verifications": 1,
            "confirmations": 1,
            "returns_created": 1,
        },
        (edge_day, "cli"): dict.fromkeys(COUNTS, 0) | {"conversations": 1, "turns": 1, "steps": 1},
    }
    assert await stats(agent) == expected

    # Idempotent: a second run finds nothing, and the counts stay as they were.
    again = await run_purge(agent, now)
    assert again.rows["conversations"] == 0
    assert again.lines() == [
        f"no conversations last active before {now - MONTH:%Y-%m-%d %H:%M} UTC: nothing to purge"
    ]
    assert await stats(agent) == expected

    # A purged conversation is gone for good; the others go on.
    with pytest.raises(ConversationNotFound):
        await turn(agent, old, CustomerText("hello again"))
    await turn(agent, fresh, CustomerText("still there?"), reply("Yes!"))


async def test_a_days_counts_add_up_over_purges(agent: Agent) -> None:
    now = utcnow()
    started = now - 2 * MONTH
    first, second, web = await a_hello(agent), await a_hello(agent), await a_hello(agent, "web")
    await idle(agent, first, started)
    await idle(agent, web, started)
    await run_purge(agent, now)
    assert (await kept(agent, second))["conversations"] == 1
    await idle(agent, second, started)  # the same day, reached by a later purge
    await run_purge(agent, now)
    day = day_of(agent, started)
    found = await stats(agent)
    assert found[day, "cli"]["conversations"] == 2 and found[day, "cli"]["steps"] == 2
    assert found[day, "web"]["conversations"] == 1


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("12h", timedelta(hours=12)),
        ("30d", MONTH),
        ("2w", timedelta(weeks=2)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_ages_in_hours_days_and_weeks(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("30", "not an age"),
        ("30x", "not an age"),
        ("-1d", "not an age"),
        ("1.5d", "not an age"),
        ("", "not an age"),
        ("0d", "more than zero"),
        ("99999999999w", "too long ago"),
    ],
)
def test_a_bad_age_is_refused_with_what_is_accepted(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        parse_age(text)


async def test_a_conversation_handed_back_still_counts_as_needing_a_person(agent: Agent) -> None:
    now = utcnow()
    started = now - 2 * MONTH
    sam = await add_staff(agent, "Sam")
    held, alone = await a_hello(agent), await a_hello(agent)
    handoff = Handoff(agent)
    await handoff.take(held, sam)
    await handoff.hand_back(held, sam)  # settles the status: the events remember
    for cid in (held, alone):
        await idle(agent, cid, started)
    engine = bound_engine(agent.sessions)
    assert engine is not None
    zone, day = agent.settings.policy.zone, day_of(agent, started)

    async def escalated() -> int:
        numbers = await read_numbers(engine, 90, zone, now)
        return next(d.escalated for d in numbers.days if d.day == day)

    assert await escalated() == 1
    await run_purge(agent, now)
    assert (await stats(agent))[day, "cli"]["escalated"] == 1
    assert await escalated() == 1  # the same, now from what purge kept
