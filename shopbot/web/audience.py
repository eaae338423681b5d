"""Two audiences for a conversation's events: its customer, and the shop's staff.

The customer's stream carries the conversation as the customer lives it: their messages,
ShopBot's replies (and the pieces of a reply while it is written), confirmation requests,
answers and withdrawals, a hand-over to a colleague, and where turns end. Nothing of the
agent's work reaches them: thoughts, proposed actions, the guard's verdicts and reasons,
observations (tool output), parse errors, an escalation's reason, timings and raw model
output are for staff (`shopbot.web.staff`). A parse failure or a denial becomes
`draft_dropped {step}` for the customer, so the widget removes the pieces of a reply that
turned out not to be one; nothing else of it goes out.

Projection, not trust: a kind passes with exactly the fields its customer model names
(`shopbot.web.schemas.CUSTOMER_STREAM`); a kind without one is dropped, so an event added
later stays internal until someone decides the customer may see it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel

from shopbot.web.schemas import CUSTOMER_STREAM
from shopbot.web.store import StoredEvent

Wire = dict[str, Any]


def _kind(model: type[BaseModel]) -> str:
    return str(get_args(model.model_fields["kind"].annotation)[0])


SHOWN: dict[str, tuple[str, ...]] = {
    _kind(model): tuple(name for name in model.model_fields if name not in ("seq", "turn"))
    for model in CUSTOMER_STREAM
}
"""Each kind a customer may receive, with the fields they receive of it."""
CUSTOMER_KINDS = tuple(SHOWN)


def for_customer(stored: StoredEvent) -> Wire | None:
    """A stored event as its conversation's customer receives it; None: not theirs to see."""
    kind, payload = stored.kind, stored.payload
    if kind == "parse_failed" or (kind == "verdict" and payload.get("decision") == "deny"):
        kind, payload = "draft_dropped", {"step": payload.get("step", 0)}
    fields = SHOWN.get(kind)
    if fields is None:
        return None
    shown = {name: payload[name] for name in fields if name in payload}
    return {"seq": stored.seq, "turn": stored.turn, **shown, "kind": kind}


def draft_for_customer(draft: Wire) -> Wire:
    """A piece of a reply being written (never stored), as the customer receives it."""
    return {name: draft[name] for name in SHOWN["reply_chunk"] if name in draft}


@dataclass(frozen=True)
class Audience:
    """Who a stream is for: what they receive of each stored event and of each draft."""

    stored: Callable[[StoredEvent], Wire | None]
    draft: Callable[[Wire], Wire]


CUSTOMER = Audience(for_customer, draft_for_customer)
STAFF = Audience(StoredEvent.wire, dict)
"""Everything as stored, drafts included."""

__all__ = ["CUSTOMER", "CUSTOMER_KINDS", "SHOWN", "STAFF", "Audience", "for_customer"]
