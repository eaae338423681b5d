"""What ShopBot itself records: conversations, their messages and events, the action audit
log, confirmations, the email outbox, the customer identity tokens already used, and the
counts that stay of purged conversations."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, utcnow
from db.shop import enum_column


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    CLOSED = "closed"


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), default="cli")
    status: Mapped[ConversationStatus] = enum_column(
        ConversationStatus, default=ConversationStatus.OPEN
    )
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"))
    """Set once the customer has proven who they are; never changes afterwards."""
    proven_by: Mapped[str | None] = mapped_column(String(20))
    """How: "email" (order number + the order's email) or "token" (signed by the shop)."""
    proven_order_id: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200), default="")
    turns: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    """The owner's numbers read a period's conversations by it (`shopbot.web.numbers`)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    turn_owner: Mapped[str | None] = mapped_column(String(36))
    """Who runs this conversation's turn now: turns are serialized across workers."""
    turn_lease_until: Mapped[datetime | None]
    """A crashed worker's turn frees the conversation when its lease runs out."""
    held_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    """The staff member who has taken the conversation over (`shopbot.handoff`): while set,
    the customer's messages are stored and no model turn runs. Freed when they hand it back
    (or their account is removed)."""
    held_since: Mapped[datetime | None]
    """When `held_by` took it over."""


class UsedIdentityToken(Base):
    """A customer identity token that has opened its one conversation (`shopbot.identity`)."""

    __tablename__ = "used_identity_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The token's nonce: a second conversation with it is refused."""
    expires_at: Mapped[datetime] = mapped_column(index=True)
    """The token's own expiry: past it the token is refused anyway, and the row may go."""
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    ASSISTANT = "assistant"
    STAFF = "staff"
    """A staff member who took the conversation over wrote it (`shopbot.handoff`)."""


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    turn: Mapped[int]
    role: Mapped[Role] = enum_column(Role)
    content: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """One entry of a conversation's event stream, numbered so a client can resume from it."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("conversation_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    seq: Mapped[int]
    turn: Mapped[int]
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ActionLog(Base):
    """The audit log: every proposed action, the guard's verdict, the observation, timings."""

    __tablename__ = "action_log"
    __table_args__ = (Index("ix_action_log_conversation", "conversation_id", "turn", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    turn: Mapped[int]
    step: Mapped[int]
    raw_output: Mapped[str] = mapped_column(Text)
    thought: Mapped[str] = mapped_column(Text, default="")
    tool: Mapped[str | None] = mapped_column(String(60))
    args: Mapped[dict[str, Any] | None]
    parse_error: Mapped[str | None] = mapped_column(Text)
    verdict: Mapped[str | None] = mapped_column(String(20))
    """allow, deny or confirm (needs the customer's confirmation first)."""
    reason: Mapped[str | None] = mapped_column(Text)
    observation: Mapped[dict[str, Any] | None]
    flags: Mapped[list[str]] = mapped_column(default=list)
    model_ms: Mapped[float] = mapped_column(default=0.0)
    guard_ms: Mapped[float] = mapped_column(default=0.0)
    tool_ms: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfirmationStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CONSUMED = "consumed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    """The customer wrote something other than a yes or a no while it was pending."""


class Confirmation(Base):
    """A side effect the customer was asked to approve, bound to the exact tool and arguments."""

    __tablename__ = "confirmations"
    __table_args__ = (Index("ix_confirmations_conversation", "conversation_id", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    tool: Mapped[str] = mapped_column(String(60))
    args: Mapped[dict[str, Any]]
    digest: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    """What the customer was shown, in words."""
    status: Mapped[ConfirmationStatus] = enum_column(
        ConfirmationStatus, default=ConfirmationStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    consumed_at: Mapped[datetime | None]


class EmailStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxEmail(Base):
    """An email written in the same transaction as the change it reports, sent later, once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    """The RFC 5322 Message-ID, stable across retries so receivers can drop duplicates."""
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[EmailStatus] = enum_column(EmailStatus, default=EmailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    return_id: Mapped[int | None] = mapped_column(ForeignKey("returns.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class ConversationStats(Base):
    """What stays of purged conversations (`shopbot purge`): counts per shop day and channel,
    nothing about anyone. A day's row grows as later purges reach more of its conversations."""

    __tablename__ = "conversation_stats"

    day: Mapped[date] = mapped_column(primary_key=True)
    """The shop's calendar day the conversations started on (`PolicyConfig.timezone`)."""
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    conversations: Mapped[int]
    verified: Mapped[int]
    """Conversations whose customer proved who they are (order and email, or a signed token)."""
    escalated: Mapped[int]
    """Conversations handed to a person; the others were resolved without one."""
    turns: Mapped[int]
    steps: Mapped[int]
    """Model steps: rows of the audit log."""
    denials: Mapped[int]
    """Steps the guard denied."""
    failed_verifications: Mapped[int]
    confirmations: Mapped[int]
    """Side effects the customer was asked to confirm."""
    returns_created: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    """When a purge last added to the row."""
