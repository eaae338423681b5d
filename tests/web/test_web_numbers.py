"""The owner's numbers: counted per shop day from held conversations and from what `shopbot
purge` kept, the same before and after a purge; the page, its charts and its parameters."""

from __future__ import annotations

import re
import statistics
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from test_web_staff import sign_in
from web_support import (
    ASKS_FOR_A_PERSON,
    JANE_RETURN,
    Api,
    create_conversation,
    say,
)

from db import ActionLog, ConversationStats, Event, utcnow
from shopbot.retention import purge
from shopbot.web.charts import bar_chart, nice_ceiling, seconds, share
from shopbot.web.numbers import DayNumbers, Numbers, read_numbers


async def three_conversations(staff_api: Api) -> list[str]:
    """Today: Jane's return (awaiting her yes), one escalated, one with a step denied."""
    made: list[str] = []
    for said in [JANE_RETURN, ASKS_FOR_A_PERSON, "Where is my parcel?"]:
        cid, auth = await create_conversation(staff_api.client)
        await say(staff_api, cid, auth, said)
        made.append(cid)
    async with staff_api.backend.sessions() as session:
        session.add(
            ActionLog(
                conversation_id=made[2], turn=1, step=9, raw_output="{}", verdict="deny", reason="x"
            )
        )
        await session.commit()
    return made


def stats_row(day: date, conversations: int, escalated: int, denials: int) -> ConversationStats:
    zeros = dict.fromkeys(["verified", "turns", "steps", "failed_verifications"], 0)
    return ConversationStats(
        day=day,
        channel="web",
        conversations=conversations,
        escalated=escalated,
        denials=denials,
        confirmations=0,
        returns_created=0,
        updated_at=utcnow(),
        **zeros,
    )


async def numbers(staff_api: Api, period: int) -> Numbers:
    zone = staff_api.settings.policy.zone
    return await read_numbers(staff_api.backend.store.engine, period, zone, utcnow())


async def test_each_day_adds_what_purge_kept_to_what_is_held(staff_api: Api) -> None:
    made = await three_conversations(staff_api)
    today = utcnow().astimezone(staff_api.settings.policy.zone).date()
    async with staff_api.backend.sessions() as session:
        session.add_all(
            [
                stats_row(today - timedelta(days=3), 10, 4, 2),
                stats_row(today - timedelta(days=10), 5, 5, 0),  # outside the last 7 days
                stats_row(today, 2, 1, 3),  # today's conversations purged already
            ]
        )
        ms = [
            float(e.payload["ms"])
            for e in await session.scalars(select(Event).where(Event.kind == "turn_ended"))
        ]
        await session.commit()
    assert len(ms) == len(made)

    week = await numbers(staff_api, 7)
    assert [d.day for d in week.days] == [today - timedelta(days=6 - i) for i in range(7)]
    now = week.days[-1]
    assert (now.conversations, now.escalated, now.denials, now.purged) == (5, 2, 4, 2)
    assert now.resolved_share == pytest.approx(3 / 5)
    assert now.median_turn_ms == pytest.approx(statistics.median(ms))
    earlier = week.days[-4]
    assert (earlier.conversations, earlier.escalated, earlier.denials) == (10, 4, 2)
    assert earlier.median_turn_ms is None, "a purged day keeps no turn times"
    assert all(d.conversations == 0 and d.resolved_share is None for d in week.days[:3])
    assert week.total.conversations == 15 and week.total.escalated == 6

    month = await numbers(staff_api, 30)
    assert month.total.conversations == 20 and month.total.escalated == 11


async def test_a_purge_changes_no_days_numbers_but_the_turn_times(staff_api: Api) -> None:
    await three_conversations(staff_api)
    before = await numbers(staff_api, 7)
    report = await purge(
        staff_api.backend.sessions,
        timedelta(days=30),
        staff_api.settings.policy.zone,
        now=utcnow() + timedelta(days=31),
    )
    assert report.rows["conversations"] == 3
    after = await numbers(staff_api, 7)

    def counts(d: DayNumbers) -> tuple[int, int, int]:
        return d.conversations, d.escalated, d.denials

    assert [counts(d) for d in after.days] == [counts(d) for d in before.days]
    assert after.total.purged == after.total.conversations == 3
    assert before.total.median_turn_ms is not None and after.total.median_turn_ms is None


async def test_the_numbers_page_draws_each_number_and_defines_it(staff_api: Api) -> None:
    await three_conversations(staff_api)
    assert (await staff_api.client.get("/staff/numbers")).status_code == 303, "sign in first"
    await sign_in(staff_api.client)
    page = await staff_api.client.get("/staff/numbers", params={"days": "7"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "style-src 'self'" in page.headers["content-security-policy"]
    assert '<a href="/staff/numbers" aria-current="page">Numbers</a>' in page.text
    assert '<a href="/staff/numbers?days=7" aria-current="page">Last 7 days</a>' in page.text
    assert page.text.count('<svg class="chart"') == 5
    for title in [
        "Conversations per day",
        "Resolved without a person",
        "Escalations",
        "Denials",
        "Median turn time",
    ]:
        assert f"<h2>{title}</h2>" in page.text
    assert "the share that were not escalated" in page.text
    assert len(re.findall(r'<tr data-day="', page.text)) == 7
    today = re.search(r'<tr data-day="[^"]+">\s*<td>[^<]+</td><td>(\d+)</td>', page.text)
    assert today is not None and today.group(1) == "3"
    assert "<style" not in page.text and "<script" not in page.text
    month = await staff_api.client.get("/staff/numbers")
    assert len(re.findall(r'<tr data-day="', month.text)) == 30, "30 days unless asked"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("days=14", "days=&#39;14&#39; is not a period the page shows: 7, 30, 90."),
        ("days=", "is not a period the page shows"),
        ("days=7&days=30", "is given twice"),
        ("period=7", "has no parameter &#39;period&#39;"),
    ],
)
async def test_a_period_it_does_not_offer_gets_a_clear_message(
    staff_api: Api, query: str, message: str
) -> None:
    await sign_in(staff_api.client)
    page = await staff_api.client.get(f"/staff/numbers?{query}")
    assert page.status_code == 400
    assert message in page.text
    assert '<svg class="chart"' not in page.text


def test_a_chart_draws_a_bar_per_measured_day_escaped() -> None:
    days = [date(2026, 12, 1) + timedelta(days=i) for i in range(3)]
    svg = bar_chart(
        list(zip(days, [0.5, None, 1.0], strict=True)), title="Share <resolved>", shown=share, top=1
    )
    assert svg.count("<rect") == 2, "no bar for a day with nothing to measure"
    assert "<title>Dec 1: 50%</title>" in svg and "<title>Dec 3: 100%</title>" in svg
    assert 'aria-label="Share &lt;resolved&gt;"' in svg
    heights = [float(h) for h in re.findall(r'height="([\d.]+)"><title>', svg)]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert [nice_ceiling(v) for v in (0, 3, 7, 12, 180, 0.3)] == [1, 5, 10, 20, 200, 0.5]
    whole = [nice_ceiling(v, whole=True) for v in (0, 1, 3, 7, 12, 180)]
    assert whole == [2, 2, 4, 10, 20, 200], "counts: a whole middle line"
    assert (seconds(850), seconds(1234)) == ("850 ms", "1.2 s")
