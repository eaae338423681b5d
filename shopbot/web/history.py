"""A conversation's history as its customer sees it, folded from the stored events.

Built from events rather than the messages table so that history and stream agree: the view
covers exactly the events up to `last_seq`, and the stream resumes after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shopbot.events import (
    EVENT_ADAPTER,
    ConfirmationDecided,
    ConfirmationRequested,
    ConfirmationWithdrawn,
    CustomerMessage,
    Reply,
    StaffJoined,
    StaffLeft,
    StaffMessage,
)
from shopbot.web.schemas import HistoryMessage, PendingConfirmation
from shopbot.web.store import StoredEvent


def fold_history(
    events: list[StoredEvent], now: datetime
) -> tuple[list[HistoryMessage], PendingConfirmation | None, str | None]:
    """The messages shown, the confirmation still waiting for an answer (if any), and the
    person of the shop who holds the conversation ("Sam from Harbor & Pine"; None: ShopBot)."""
    messages: list[HistoryMessage] = []
    person: str | None = None
    requested: dict[str, ConfirmationRequested] = {}
    pending: ConfirmationRequested | None = None
    for stored in events:
        event = EVENT_ADAPTER.validate_python(stored.payload)
        match event:
            case CustomerMessage(text=text):
                messages.append(_message("customer", text, stored))
            case Reply(text=text, citations=citations):
                messages.append(_message("assistant", text, stored, citations))
            case StaffMessage(text=text, name=name, shop=shop):
                messages.append(
                    _message("staff", text, stored).model_copy(update={"name": name, "shop": shop})
                )
            case StaffJoined(name=name, shop=shop):
                person = f"{name} from {shop}"
            case StaffLeft():
                person = None
            case ConfirmationRequested(confirmation_id=cid):
                requested[cid] = pending = event  # a new request supersedes the last one
            case ConfirmationDecided(confirmation_id=cid, approved=approved):
                asked = requested.get(cid)
                what = f": {asked.summary}" if asked else ""
                said = f"{'Yes, go ahead' if approved else 'No, cancel'}{what}"
                messages.append(_message("customer", said, stored))
                if pending is not None and pending.confirmation_id == cid:
                    pending = None
            case ConfirmationWithdrawn(confirmation_id=cid):
                # The customer's message that withdrew it is in `messages` already.
                if pending is not None and pending.confirmation_id == cid:
                    pending = None
            case _:
                pass
    if pending is None or pending.expires_at <= now:
        return messages, None, person
    return (
        messages,
        PendingConfirmation(
            confirmation_id=pending.confirmation_id,
            tool=pending.tool,
            args=pending.args,
            summary=pending.summary,
            expires_at=pending.expires_at,
        ),
        person,
    )


def _message(
    role: str, text: str, stored: StoredEvent, citations: Sequence[object] = ()
) -> HistoryMessage:
    return HistoryMessage.model_validate(
        {
            "role": role,
            "text": text,
            "turn": stored.turn,
            "seq": stored.seq,
            "citations": list(citations),
        }
    )
