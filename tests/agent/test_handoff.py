"""Human handoff and escalation's consequences, against a real database on both backends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from agent_support import act, add_staff, turn
from sqlalchemy import func, select, update

from db import (
    Confirmation,
    ConfirmationStatus,
    Conversation,
    ConversationStatus,
    Event,
    Message,
    OutboxEmail,
    Role,
    StaffSession,
)
from shopbot.app import start_conversation
from shopbot.errors import AlreadyHeld, ConversationClosed, NotHolder, WithdrawnConfirmation
from shopbot.events import ConfirmationRequested, Reply
from shopbot.handoff import Handoff
from shopbot.loop import Agent, ConfirmationAnswer, CustomerText
from shopbot.models.scripted import ScriptedModel

JANE = "Return the jeans from 482913 please, jane.doe@example.com"


async def kinds(agent: Agent, cid: str) -> list[str]:
    async with agent.sessions() as s:
        found = await s.scalars(
            select(Event.kind).where(Event.conversation_id == cid).order_by(Event.seq)
        )
        return list(found)


async def payloads(agent: Agent, cid: str, kind: str) -> list[dict[str, Any]]:
    async with agent.sessions() as s:
        found = await s.scalars(
            select(Event.payload)
            .where(Event.conversation_id == cid, Event.kind == kind)
            .order_by(Event.seq)
        )
        return list(found)


async def test_a_person_takes_over_writes_and_hands_back_and_shopbot_reads_it(
    agent: Agent,
) -> None:
    sam = await add_staff(agent, "Sam")
    handoff = Handoff(agent)
    cid = await start_conversation(agent.sessions, agent.settings)
    await turn(agent, cid, CustomerText("Hello"), act("reply", message="Hi! How can I help?"))

    await handoff.take(cid, sam)
    # Held: the customer's message is stored and streamed, and no model step runs.
    events = await turn(agent, cid, CustomerText("Is anyone there?"))
    assert [e.kind for e in events] == ["customer_message", "turn_ended"]
    await handoff.say(cid, sam, "Sam here: your parcel left this morning.")
    await handoff.hand_back(cid, sam)

    model = agent.model
    assert isinstance(model, ScriptedModel)
    await turn(agent, cid, CustomerText("Thanks!"), act("reply", message="You're welcome."))
    prompt = str(model.calls[-1].messages[-1].content)
    assert "Customer: Is anyone there?\nStaff: Sam here: your parcel left this morning." in prompt

    stored = await kinds(agent, cid)
    joined, said, left = (stored.index(k) for k in ("staff_joined", "staff_message", "staff_left"))
    assert joined < said < left
    message = (await payloads(agent, cid, "staff_message"))[0]
    assert message == {
        "kind": "staff_message",
        "name": "Sam",
        "shop": agent.settings.shop_name,
        "text": "Sam here: your parcel left this morning.",
        "staff_id": sam.id,
    }
    async with agent.sessions() as s:
        row = await s.get_one(Conversation, cid)
        assert row.held_by is None and row.turn_lease_until is None
        roles = list(await s.scalars(select(Message.role).where(Message.conversation_id == cid)))
    assert Role.STAFF in roles


async def test_two_people_taking_over_at_once_one_wins_the_other_is_told(agent: Agent) -> None:
    sam, alex = await add_staff(agent, "Sam"), await add_staff(agent, "Alex")
    handoff = Handoff(agent)
    cid = await start_conversation(agent.sessions, agent.settings)
    results = await asyncio.gather(
        handoff.take(cid, sam), handoff.take(cid, alex), return_exceptions=True
    )
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(lost) == 1 and isinstance(lost[0], AlreadyHeld)
    async with agent.sessions() as s:
        holder = (await s.get_one(Conversation, cid)).held_by
    winner = sam if holder == sam.id else alex
    assert lost[0].holder == winner.name
    assert f"{winner.name} has already taken this conversation over" in str(lost[0])
    assert (await kinds(agent, cid)).count("staff_joined") == 1


async def test_refused_staff_actions_change_nothing(agent: Agent) -> None:
    sam, alex = await add_staff(agent, "Sam"), await add_staff(agent, "Alex")
    handoff = Handoff(agent)
    cid = await start_conversation(agent.sessions, agent.settings)

    with pytest.raises(NotHolder, match="take it over first"):
        await handoff.say(cid, sam, "Hello from nobody")
    await handoff.take(cid, sam)
    with pytest.raises(NotHolder, match="Sam holds it"):
        await handoff.say(cid, alex, "Hello from Alex")
    with pytest.raises(NotHolder):
        await handoff.hand_back(cid, alex)
    with pytest.raises(AlreadyHeld, match="You have already"):
        await handoff.take(cid, sam)
    with pytest.raises(ValueError, match="visible text"):
        await handoff.say(cid, sam, "   ")
    before = await kinds(agent, cid)
    assert before == ["staff_joined"]

    async with agent.sessions() as s:
        await s.execute(
            update(Conversation)
            .where(Conversation.id == cid)
            .values(status=ConversationStatus.CLOSED)
        )
        await s.commit()
    with pytest.raises(ConversationClosed, match="closed"):
        await handoff.say(cid, sam, "Still there?")
    assert await kinds(agent, cid) == before
    async with agent.sessions() as s:
        assert (await s.get_one(Conversation, cid)).turn_lease_until is None


async def test_taking_over_withdraws_the_pending_confirmation(agent: Agent) -> None:
    sam = await add_staff(agent, "Sam")
    cid = await start_conversation(agent.sessions, agent.settings)
    verify = act("verify_identity", order_id="482913", email="jane.doe@example.com")
    jeans = act("create_return", order_id="482913", lines=[1], reason="too small")
    events = await turn(agent, cid, CustomerText(JANE), verify, jeans)
    asked = next(e for e in events if isinstance(e, ConfirmationRequested))
    await Handoff(agent).take(cid, sam)
    with pytest.raises(WithdrawnConfirmation):
        await turn(agent, cid, ConfirmationAnswer(asked.confirmation_id, True))
    async with agent.sessions() as s:
        status = await s.scalar(
            select(Confirmation.status).where(Confirmation.id == asked.confirmation_id)
        )
    assert status is ConfirmationStatus.WITHDRAWN


async def test_an_escalation_emails_support_and_says_when_to_expect_an_answer(
    agent: Agent,
) -> None:
    agent = replace(
        agent,
        settings=agent.settings.model_copy(
            update={
                "support_email": "support@shop.example",
                "support_hours": "by email within one business day",
                "public_url": "https://help.shop.example/",
            }
        ),
    )
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(
        agent, cid, CustomerText("A human please"), act("escalate", reason="asked for a person")
    )
    reply = next(e for e in events if isinstance(e, Reply))
    assert "Nobody from our team is online right now" in reply.text
    # Not proven: the shop has no address to answer at, so the customer is asked for one.
    assert "by email within one business day, write the email address" in reply.text
    proven = await start_conversation(agent.sessions, agent.settings)
    verify = act("verify_identity", order_id="482913", email="jane.doe@example.com")
    await turn(agent, proven, CustomerText(JANE), verify, act("reply", message="Verified."))
    events = await turn(
        agent, proven, CustomerText("A human please"), act("escalate", reason="asked")
    )
    reply = next(e for e in events if isinstance(e, Reply))
    assert reply.text.endswith("you'll hear from us by email within one business day.")
    async with agent.sessions() as s:
        email = await s.scalar(select(OutboxEmail).order_by(OutboxEmail.id).limit(1))
    assert email is not None and email.to_address == "support@shop.example"
    assert "Reason: asked for a person" in email.body_text
    assert f"https://help.shop.example/staff/conversations/{cid}" in email.body_text
    assert "A human please" not in email.body_text  # the customer's words stay on the page

    # A staff member signed in and active: the customer is told someone joins shortly.
    sam = await add_staff(agent, "Sam")
    now = agent.clock()
    async with agent.sessions() as s:
        s.add(
            StaffSession(
                id="a" * 64,
                staff_id=sam.id,
                csrf_token="b" * 64,
                last_seen_at=now - timedelta(minutes=2),
                expires_at=now + timedelta(hours=1),
            )
        )
        await s.commit()
    other = await start_conversation(agent.sessions, agent.settings)
    events = await turn(
        agent, other, CustomerText("A human please"), act("escalate", reason="asked again")
    )
    reply = next(e for e in events if isinstance(e, Reply))
    assert reply.text.endswith("who will join you here shortly.")
    async with agent.sessions() as s:
        assert (
            await s.scalar(select(func.count()).select_from(OutboxEmail)) == 3
        )  # each escalation once
