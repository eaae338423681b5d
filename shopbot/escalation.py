"""What an escalation sets going: the support address emailed, the customer told honestly.

The escalation itself (the conversation's status, the `escalated` event) is the loop's. Here,
in the same transaction: an email to `Settings.support_email` through the outbox, when one is
configured, with the reason and the link to the conversation's staff page (no customer data:
the page has it, behind sign-in); and the reply, which promises a colleague here shortly
only while a staff member is present (signed in and seen in the last `PRESENT` minutes),
else says when the shop answers (`Settings.support_hours`), and asks a customer who has not
proven who they are for an address to answer at.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import StaffSession
from shopbot.config import Settings
from tools.mailer.message import mail_domain
from tools.mailer.outbox import enqueue_email

__all__ = ["PRESENT", "hand_to_a_person", "staff_page", "support_email_text"]

PRESENT = timedelta(minutes=15)
"""A staff member counts as present when their session was used this recently (a session
records use at most once a minute; an open staff page's stream reconnects every few)."""


def staff_page(settings: Settings, conversation_id: str) -> str:
    """The conversation's page on the staff side, as a link from outside."""
    return f"{settings.public_url.rstrip('/')}/staff/conversations/{conversation_id}"


def support_email_text(settings: Settings, conversation_id: str, reason: str) -> str:
    return (
        f"A conversation with ShopBot was handed to a person.\n\n"
        f"Reason: {reason}\n\n"
        f"Read it and take it over (sign-in needed):\n{staff_page(settings, conversation_id)}\n"
    )


async def staff_present(session: AsyncSession, now: datetime) -> bool:
    """Whether a staff member is signed in and has used their session lately."""
    live = select(StaffSession.id).where(
        StaffSession.expires_at > now, StaffSession.last_seen_at > now - PRESENT
    )
    return bool(await session.scalar(select(exists(live))))


async def hand_to_a_person(
    session: AsyncSession,
    settings: Settings,
    conversation_id: str,
    reason: str,
    now: datetime,
    *,
    known: bool,
) -> str:
    """Email support (when configured) in the caller's transaction; the customer's reply.

    `reason` as it may be stored: minimised by the caller (`shopbot.pii`). `known`: the
    customer has proven who they are, so the shop has an address to answer at; an anonymous
    one is asked for one rather than promised an email nobody can send."""
    if settings.support_email:
        enqueue_email(
            session,
            to=settings.support_email,
            subject=f"Escalated: conversation {conversation_id[:8]} needs a person",
            text=support_email_text(settings, conversation_id, reason),
            domain=mail_domain(settings.mail_from),
        )
    if await staff_present(session, now):
        return "I've passed our conversation to a colleague, who will join you here shortly."
    offline = (
        "I've passed our conversation to a colleague. Nobody from our team is online right now"
    )
    if known:
        return f"{offline}; you'll hear from us {settings.support_hours}."
    return (
        f"{offline}. So that we can answer you {settings.support_hours}, write the email "
        "address we can reach you at here."
    )
