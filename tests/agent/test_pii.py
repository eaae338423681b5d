"""Once checked, a typed email is stored masked (and, as an argument, as a keyed hash); the
check itself compares the real address."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from agent_support import act, turn
from sqlalchemy import select

from db import ActionLog, Conversation, Event
from shopbot.app import start_conversation
from shopbot.events import ActionProposed
from shopbot.loop import Agent, CustomerText
from shopbot.pii import VERBATIM_KINDS, Minimiser
from shopbot.signing_keys import pii_secret
from shopbot.state import FAILED_CHECK

KEY = "k" * 32
JANE = "jane.doe@example.com"


def keyed(address: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), address.encode(), hashlib.sha256).hexdigest()[:16]


def test_an_address_argument_is_masked_and_hashed_with_the_key() -> None:
    pii = Minimiser(lambda: KEY)
    stored = pii.args({"order_id": "482913", "email": " Jane.Doe@Example.com "})
    assert stored == {
        "order_id": "482913",
        "email": "J***@Example.com",
        "email_hash": keyed("jane.doe@example.com"),
    }
    # Compared as the check compares it: the same address, however it was typed.
    assert pii.email_hash("jane.doe@example.com") == stored["email_hash"]
    assert pii.email_hash("jane.d@example.com") != stored["email_hash"]
    assert Minimiser(lambda: "other" * 8).email_hash("jane.doe@example.com") != keyed(
        "jane.doe@example.com"
    )


def test_text_masks_every_address_also_as_the_models_json_writes_it() -> None:
    pii = Minimiser(lambda: KEY)
    typed = "jöhn@exämple.com"
    raw = json.dumps({"thought": f"{typed} given", "action": {"args": {"email": typed}}})
    assert "\\u00f6" in raw
    assert "hn@" not in pii.text(raw, [typed])
    # Shaped like an address but not one the pattern finds: masked as an argument of the turn.
    odd = "jane@example.c0m"
    assert pii.text(f"has not written the email {odd}.", [odd]) == (
        "has not written the email j***@example.c0m."
    )
    assert pii.args({"email": odd})["email"] == "j***@example.c0m"


def test_the_customers_kinds_are_stored_as_written_and_the_agents_work_masked() -> None:
    pii = Minimiser(lambda: KEY)
    said = "My email is jane.doe@example.com"
    assert "customer_message" in VERBATIM_KINDS and "reply" in VERBATIM_KINDS
    for kind in VERBATIM_KINDS:
        assert pii.event({"kind": kind, "text": said}) == {"kind": kind, "text": said}
    for kind in ("thought", "verdict", "observation", "parse_failed", "escalated", "new_kind"):
        stored = pii.event({"kind": kind, "text": said, "data": {"to": ["tom@example.org"]}})
        assert stored == {
            "kind": kind,
            "text": "My email is j***@example.com",
            "data": {"to": ["t***@example.org"]},
        }


def step(tool: str, thought: str, **args: Any) -> dict[str, Any]:
    return act(tool, **args) | {"thought": thought}


async def stored_rows(agent: Agent, cid: str) -> tuple[str, list[Any], list[dict[str, Any]]]:
    """The conversation's title, events (payloads) and audit rows, as stored."""
    async with agent.sessions() as session:
        title = await session.scalar(select(Conversation.title).where(Conversation.id == cid))
        events = await session.scalars(
            select(Event.payload).where(Event.conversation_id == cid).order_by(Event.seq)
        )
        audit = await session.execute(
            select(ActionLog.__table__)
            .where(ActionLog.conversation_id == cid)
            .order_by(ActionLog.turn, ActionLog.step)
        )
        return title or "", list(events), [dict(row._mapping) for row in audit]


async def test_a_checked_email_is_stored_masked_and_hashed_and_compared_in_full(
    agent: Agent,
) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    said = "jane.doe@example.com, order 482913: the jeans go back"
    first = await turn(
        agent,
        cid,
        CustomerText(f"{said} JANE.D@example.com?"),
        # An address the customer never wrote: denied, and the reason names it.
        step(
            "verify_identity", "Try jane@example.c0m.", order_id="482913", email="jane@example.c0m"
        ),
        step("verify_identity", "Wrong case?", order_id="482913", email="JANE.D@example.com"),
        act("reply", message="That did not match. Could you check the address?"),
    )
    second = await turn(
        agent,
        cid,
        CustomerText(said),
        step("verify_identity", "Check jane.doe@example.com.", order_id="482913", email=JANE),
        act("reply", message="Thanks Jane, you're verified."),
    )

    # The check compared the real address: the second attempt verified the customer.
    async with agent.sessions() as session:
        conversation = await session.get_one(Conversation, cid)
        failed = await session.scalar(
            select(ActionLog.id).where(ActionLog.conversation_id == cid, FAILED_CHECK)
        )
    assert conversation.customer_id == "cust_jane"
    assert failed is not None, "a failed check is still counted from the stored row"
    # What the turn yields (the terminal chat shows it live) keeps the address as proposed.
    proposed = [
        e.args["email"]
        for e in first + second
        if isinstance(e, ActionProposed) and e.tool == "verify_identity"
    ]
    assert proposed == ["jane@example.c0m", "JANE.D@example.com", "jane.doe@example.com"]

    title, events, audit = await stored_rows(agent, cid)
    customers = [e for e in events if e["kind"] == "customer_message"]
    assert [e["text"] for e in customers] == [f"{said} JANE.D@example.com?", said]
    rest = [e for e in events if e["kind"] != "customer_message"]
    dump = json.dumps([title, rest, audit], default=str)
    for address in ("jane.doe@example.com", "jane.d@example.com", "jane@example.c0m"):
        assert address not in dump.lower(), address
    assert "j***@example.com" in dump and "j***@example.c0m" in dump
    key = pii_secret(agent.settings)
    hashes = [
        keyed(a, key) for a in ("jane@example.c0m", "jane.d@example.com", "jane.doe@example.com")
    ]
    actions = [e for e in events if e["kind"] == "action" and e["tool"] == "verify_identity"]
    assert [e["args"]["email_hash"] for e in actions] == hashes
    checks = [row for row in audit if row["tool"] == "verify_identity"]
    assert [row["args"]["email_hash"] for row in checks] == hashes, "audit and events alike"
