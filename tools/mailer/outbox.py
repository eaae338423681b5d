"""Writing an email into the outbox, inside the caller's transaction.

The row commits or rolls back with the return and label rows it reports on: a customer is
never told about a return that did not happen, and a return never lacks its email. The
dispatcher sends it after the commit.
"""

from __future__ import annotations

import uuid
from email.headerregistry import Address

from sqlalchemy.ext.asyncio import AsyncSession

from db import EmailStatus, OutboxEmail, utcnow

__all__ = ["DEFAULT_DOMAIN", "enqueue_email", "new_message_id"]

DEFAULT_DOMAIN = "shopbot.localhost"
"""Message-ID domain when the caller has none; pass `mail_domain(settings.mail_from)`."""


def new_message_id(domain: str = DEFAULT_DOMAIN) -> str:
    """A globally unique RFC 5322 Message-ID, `<hex@domain>`."""
    return f"<{uuid.uuid4().hex}@{domain}>"


def enqueue_email(
    session: AsyncSession,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachment: tuple[str, bytes] | None = None,
    return_id: int | None = None,
    domain: str = DEFAULT_DOMAIN,
) -> OutboxEmail:
    """Add a pending email to `session` without committing; the caller's commit sends it.

    Raises ValueError for an address or subject that could not go into a header, so a bad
    email fails the caller's transaction instead of failing later in the dispatcher.
    """
    _check_address(to)
    if "\r" in subject or "\n" in subject:
        raise ValueError("subject must be one line")
    name, data = attachment if attachment is not None else (None, None)
    row = OutboxEmail(
        message_id=new_message_id(domain),
        to_address=to,
        subject=subject,
        body_text=text,
        body_html=html,
        attachment_name=name,
        attachment=data,
        return_id=return_id,
        status=EmailStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    return row


def _check_address(to: str) -> None:
    try:
        address = Address(addr_spec=to)
    except Exception as exc:  # the email package raises several unrelated types here
        raise ValueError(f"not an email address: {to!r}") from exc
    if not address.domain:
        raise ValueError(f"not an email address: {to!r}")
