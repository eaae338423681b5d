"""The RFC 5322 message for an outbox row: text with an HTML alternative, one attachment."""

from __future__ import annotations

import mimetypes
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from db import OutboxEmail, utcnow

__all__ = ["build_message", "mail_domain"]


def build_message(row: OutboxEmail, *, mail_from: str) -> EmailMessage:
    """The message to send for `row`, From `mail_from`.

    Built from the row alone, so every retry sends the same Message-ID and Date: a receiver
    that sees it twice can tell it is one message.
    """
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at or utcnow())
    message["Message-ID"] = row.message_id
    message.set_content(row.body_text)
    if row.body_html is not None:
        message.add_alternative(row.body_html, subtype="html")
    if row.attachment is not None:
        name = row.attachment_name or "attachment"
        maintype, subtype = _content_type(name).split("/", 1)
        message.add_attachment(row.attachment, maintype=maintype, subtype=subtype, filename=name)
    return message


def mail_domain(address: str) -> str:
    """The domain of a From address such as `Shop <returns@shop.example>`, for Message-IDs."""
    _, addr = parseaddr(address)
    _, at, domain = addr.rpartition("@")
    return domain if at and domain else "localhost"


def _content_type(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename, strict=True)
    return guessed or "application/octet-stream"
