"""Conversation state: what the guard and the prompt know, rebuilt from the database.

Any process can continue any conversation: nothing lives in memory between turns. Within a
turn the loop keeps the state up to date as steps run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import (
    ActionLog,
    Confirmation,
    ConfirmationStatus,
    Conversation,
    Customer,
    Message,
    Role,
)
from shopbot.events import Citation
from tools.facts import OrderFacts, ReturnFacts

LIVE_CONFIRMATIONS = (ConfirmationStatus.PENDING, ConfirmationStatus.APPROVED)
_ORDER_ID = re.compile(r"(?<![\w])(#?(?:[0-9]{6}|W[0-9]{7}))(?![\w])")
_EMAIL = re.compile(r"[^@\s<>(),;:\"']+@[^@\s<>(),;:\"']+\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class LiveConfirmation:
    """A confirmation the customer was asked for (pending) or has just given (approved)."""

    id: str
    tool: str
    arguments: dict[str, object]
    digest: str
    summary: str
    status: ConfirmationStatus
    expires_at: datetime

    @classmethod
    def of(cls, row: Confirmation) -> LiveConfirmation:
        return cls(row.id, row.tool, row.args, row.digest, row.summary, row.status, row.expires_at)


@dataclass(frozen=True)
class HistoryLine:
    role: Role
    text: str


@dataclass
class ConversationState:
    conversation_id: str
    now: datetime
    turn: int = 0
    customer_id: str | None = None
    customer_name: str | None = None
    proven_by: str | None = None
    failed_verifications: int = 0
    confirmation: LiveConfirmation | None = None
    customer_texts: list[str] = field(default_factory=list[str])
    history: list[HistoryLine] = field(default_factory=list[HistoryLine])
    retrieved: dict[str, Citation] = field(default_factory=dict[str, Citation])
    """Policy anchors retrieved in this turn: a reply may cite only these."""
    done: set[str] = field(default_factory=set[str])
    """Digests of the tool actions run in this turn: running one again repeats its result."""
    sources: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    """The policy sections retrieved in this turn, as the tool returned them."""
    orders: dict[str, OrderFacts] = field(default_factory=dict[str, OrderFacts])
    """Facts of the orders the current step touches."""
    returns: dict[int, ReturnFacts] = field(default_factory=dict[int, ReturnFacts])
    """Facts of the returns the current step touches."""

    @property
    def proven(self) -> bool:
        return self.customer_id is not None

    def customer_wrote_email(self, email: str) -> bool:
        """The customer typed exactly this address (case and surrounding space ignored)."""
        wanted = email.strip().casefold()
        return any(found.casefold() == wanted for found in self.mentioned_emails)

    def customer_wrote_order(self, order_id: str) -> bool:
        return order_id.lstrip("#") in {o.lstrip("#") for o in self.mentioned_order_ids}

    @property
    def mentioned_order_ids(self) -> list[str]:
        found = (m.group(1) for text in self.customer_texts for m in _ORDER_ID.finditer(text))
        return list(dict.fromkeys(found))

    @property
    def mentioned_emails(self) -> list[str]:
        found = (m.group(0) for text in self.customer_texts for m in _EMAIL.finditer(text))
        return list(dict.fromkeys(found))


async def load_state(
    session: AsyncSession, conversation: Conversation, now: datetime, *, history: int = 12
) -> ConversationState:
    """Rebuild a conversation's state: identity, failed checks, live confirmation, messages."""
    cid = conversation.id
    messages = list(
        await session.scalars(
            select(Message).where(Message.conversation_id == cid).order_by(Message.id)
        )
    )
    failed = await session.scalar(
        select(func.count())
        .select_from(ActionLog)
        .where(
            ActionLog.conversation_id == cid,
            ActionLog.tool == "verify_identity",
            ActionLog.verdict == "allow",
            ActionLog.observation["verified"].as_boolean().is_(False),
        )
    )
    live = await session.scalar(
        select(Confirmation)
        .where(Confirmation.conversation_id == cid, Confirmation.status.in_(LIVE_CONFIRMATIONS))
        .order_by(Confirmation.created_at.desc())
        .limit(1)
    )
    name = None
    if conversation.customer_id is not None:
        customer = await session.get(Customer, conversation.customer_id)
        name = customer.first_name if customer else None
    return ConversationState(
        conversation_id=cid,
        now=now,
        turn=conversation.turns,
        customer_id=conversation.customer_id,
        customer_name=name,
        proven_by=conversation.proven_by,
        failed_verifications=failed or 0,
        confirmation=LiveConfirmation.of(live) if live and live.expires_at > now else None,
        customer_texts=[m.content for m in messages if m.role is Role.CUSTOMER],
        history=[HistoryLine(m.role, m.content) for m in messages[-history:]],
    )
