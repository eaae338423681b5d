"""A whole return through the API stores no typed email in ShopBot's records but the
customer's own words: the audit log, the agent's events and the staff view hold it masked."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from web_support import (
    JANE_RETURN,
    LABEL_EMAILED,
    STAFF_AUTH,
    Api,
    approve,
    create_conversation,
    history,
    say,
)

from db import ActionLog, Base, Confirmation, Conversation, Event, Message, Role
from shopbot.pii import Minimiser

WRONG = "I'd like to return the jeans from order 482913, my email is JANE.D@example.com"
TYPED = ("jane.d@example.com", "jane.doe@example.com")


async def rows_of(api: Api, cid: str) -> dict[str, list[dict[str, Any]]]:
    """Every row ShopBot keeps of the conversation, by table."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with api.backend.sessions() as session:
        for model in (Conversation, Message, Event, ActionLog, Confirmation):
            table = Base.metadata.tables[model.__tablename__]
            key = table.c.id if model is Conversation else table.c.conversation_id
            result = await session.execute(select(table).where(key == cid))
            found[table.name] = [dict(row._mapping) for row in result]
    return found


def holds_typed(value: Any) -> bool:
    text = json.dumps(value, default=str).lower()
    return any(address in text for address in TYPED)


async def test_a_whole_return_keeps_typed_emails_only_in_the_customers_words(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, WRONG)  # checked, and no match
    await say(api, cid, auth, JANE_RETURN)
    await approve(api, cid, auth)
    seen = await history(api, cid, auth)
    staff = (await api.client.get(f"/v1/staff/conversations/{cid}", headers=STAFF_AUTH)).json()
    stored = await rows_of(api, cid)

    # The customer's side: their words as they wrote them, and the label on its way.
    assert [m["text"] for m in seen["messages"] if m["role"] == "customer"][:2] == [
        WRONG,
        JANE_RETURN,
    ]
    assert seen["messages"][-1]["text"] == LABEL_EMAILED
    assert stored["conversations"][0]["customer_id"] == "cust_jane"

    # ShopBot's records: the addresses only in the customer's messages and their events.
    theirs = [m for m in stored["messages"] if m["role"] is Role.CUSTOMER]
    assert all(holds_typed(m) for m in theirs[:2])
    events = stored["events"]
    assert all(holds_typed(e) for e in events if e["kind"] == "customer_message")
    assert not holds_typed([m for m in stored["messages"] if m["role"] is not Role.CUSTOMER])
    assert not holds_typed([e for e in events if e["kind"] != "customer_message"])
    for table in ("conversations", "action_log", "confirmations"):
        assert stored[table] and not holds_typed(stored[table]), table
    agents_work = {
        **staff,
        "events": [e for e in staff["events"] if e["kind"] != "customer_message"],
    }
    assert not holds_typed(agents_work), "staff read the agent's work masked"

    # Staff can still tell the two attempts apart, and neither address from a hash alone.
    checks = [s for s in staff["steps"] if s["tool"] == "verify_identity"]
    assert [s["args"]["email"] for s in checks] == ["J***@example.com", "j***@example.com"]
    pii = Minimiser.of(api.settings)
    assert [s["args"]["email_hash"] for s in checks] == [pii.email_hash(a) for a in TYPED]
    assert [s["observation"]["verified"] for s in checks] == [False, True]
    label = next(s for s in staff["steps"] if s["tool"] == "send_return_label")
    assert label["observation"]["emailed_to"] == "j***@example.com"
