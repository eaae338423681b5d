"""A conversation's audit trail as the staff page shows it: its messages, and each turn's
steps (raw output, parsed action, verdict and reason, observation, citations, flags, timings).

Read in one connection of the app's read engine: the conversation row (with who holds it),
its stored events, and its audit rows. The page renders this; the staff stream then adds
what happens after `last_seq`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from db import ActionLog, Conversation, Customer, Staff
from db import Event as EventRow

__all__ = ["Line", "Step", "Trail", "TurnSteps", "read_trail"]


@dataclass(frozen=True)
class Line:
    """One line of the conversation as it was lived: who said what, or what happened."""

    seq: int
    who: str
    """`customer`, `assistant`, `staff` or `note`."""
    text: str
    author: str = ""
    """Who wrote it: the staff member's name and the shop's, or ShopBot's."""
    citations: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])


@dataclass(frozen=True)
class Step:
    """One model step of the audit log."""

    step: int
    raw_output: str
    thought: str
    tool: str | None
    args: str
    """The parsed action's arguments as indented JSON ("" when it did not parse)."""
    parse_error: str | None
    verdict: str | None
    reason: str | None
    observation: str
    """The tool's observation as indented JSON ("" when no tool ran)."""
    citations: list[str]
    """The policy anchors a reply cited."""
    flags: list[str]
    model_ms: float
    guard_ms: float
    tool_ms: float


@dataclass
class TurnSteps:
    turn: int
    steps: list[Step] = field(default_factory=list[Step])


@dataclass(frozen=True)
class Trail:
    id: str
    title: str
    status: str
    customer: str | None
    holder_id: int | None
    holder: str | None
    held_since: datetime | None
    turns: list[TurnSteps]
    lines: list[Line]
    last_seq: int


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, sort_keys=True, default=str)


def _line(seq: int, kind: str, payload: dict[str, Any]) -> Line | None:
    match kind:
        case "customer_message":
            return Line(seq, "customer", str(payload["text"]))
        case "reply":
            return Line(seq, "assistant", str(payload["text"]), "ShopBot", payload["citations"])
        case "staff_message":
            author = f"{payload['name']}, {payload['shop']}"
            return Line(seq, "staff", str(payload["text"]), author)
        case "staff_joined":
            return Line(seq, "note", f"{payload['name']} took the conversation over.")
        case "staff_left":
            return Line(seq, "note", f"{payload['name']} handed the conversation back to ShopBot.")
        case "staff_tool":
            how = "overriding a rule" if payload["decision"] == "override" else "allowed"
            outcome = "failed" if payload.get("error") else "done"
            text = (
                f"{payload['name']} ran {payload['tool']} ({how}): {outcome}. {payload['reason']}"
            )
            return Line(seq, "note", text)
        case "escalated":
            return Line(seq, "note", f"Escalated: {payload['reason']}")
        case "confirmation_decided":
            said = "Confirmed" if payload["approved"] else "Cancelled"
            return Line(seq, "note", f"The customer {said.lower()} the pending action.")
        case "confirmation_withdrawn":
            return Line(seq, "note", "The pending confirmation was withdrawn.")
        case _:
            return None


def _step(row: Any) -> Step:
    args: dict[str, Any] | None = row.args
    cited = args.get("citations") if args else None
    return Step(
        step=row.step,
        raw_output=row.raw_output,
        thought=row.thought,
        tool=row.tool,
        args=_pretty(args),
        parse_error=row.parse_error,
        verdict=row.verdict,
        reason=row.reason,
        observation=_pretty(row.observation),
        citations=[str(c) for c in cited] if isinstance(cited, list) else [],
        flags=list(row.flags or []),
        model_ms=row.model_ms,
        guard_ms=row.guard_ms,
        tool_ms=row.tool_ms,
    )


async def read_trail(engine: AsyncEngine, conversation_id: str) -> Trail | None:
    """The conversation's trail; None when there is no such conversation."""
    holder = aliased(Staff)
    head = (
        select(
            Conversation.title,
            Conversation.status,
            Conversation.held_by,
            Conversation.held_since,
            Customer.first_name,
            Customer.last_name,
            holder.name.label("holder"),
        )
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .outerjoin(holder, holder.id == Conversation.held_by)
        .where(Conversation.id == conversation_id)
    )
    events = (
        select(EventRow.seq, EventRow.kind, EventRow.payload)
        .where(EventRow.conversation_id == conversation_id)
        .order_by(EventRow.seq)
    )
    audit = (
        select(*ActionLog.__table__.c)
        .where(ActionLog.conversation_id == conversation_id)
        .order_by(ActionLog.turn, ActionLog.step)
    )
    async with engine.connect() as conn:
        found = (await conn.execute(head)).first()
        if found is None:
            return None
        stored = (await conn.execute(events)).all()
        rows = (await conn.execute(audit)).all()
    turns: dict[int, TurnSteps] = {}
    for row in rows:
        turns.setdefault(row.turn, TurnSteps(row.turn)).steps.append(_step(row))
    lines = [line for e in stored if (line := _line(e.seq, e.kind, e.payload)) is not None]
    return Trail(
        id=conversation_id,
        title=found.title,
        status=str(found.status),
        customer=f"{found.first_name} {found.last_name}" if found.first_name else None,
        holder_id=found.held_by,
        holder=found.holder,
        held_since=found.held_since,
        turns=list(turns.values()),
        lines=lines,
        last_seq=stored[-1].seq if stored else 0,
    )
