"""Building the message from an outbox row, and what enqueue_email accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mailer_support import MAIL_FROM, PDF
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import EmailStatus, OutboxEmail
from tools.mailer import build_message, enqueue_email, mail_domain, new_message_id


def _row(**kw: object) -> OutboxEmail:
    fields: dict[str, object] = {
        "message_id": "<abc123@shop.example>",
        "to_address": "ada@example.com",
        "subject": "Your return label for order 123456",
        "body_text": "Print the label and drop the parcel off.",
        "body_html": "<p>Print the label and drop the parcel off.</p>",
        "attachment_name": "label-123456.pdf",
        "attachment": PDF,
        "created_at": datetime(2026, 11, 21, 12, 30, tzinfo=UTC),
    }
    return OutboxEmail(**(fields | kw))


def test_message_has_text_html_and_the_pdf() -> None:
    message = build_message(_row(), mail_from=MAIL_FROM)

    assert message["Message-ID"] == "<abc123@shop.example>"
    assert message["From"] == MAIL_FROM
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your return label for order 123456"
    assert message["Date"] == "Sat, 21 Nov 2026 12:30:00 +0000"
    assert message.get_content_type() == "multipart/mixed"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert "drop the parcel off" in plain.get_content()
    assert html is not None
    assert html.get_content().strip().startswith("<p>")
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "label-123456.pdf"
    assert attachment.get_content() == PDF


def test_text_only_message_is_single_part() -> None:
    message = build_message(
        _row(body_html=None, attachment=None, attachment_name=None), mail_from=MAIL_FROM
    )

    assert message.get_content_type() == "text/plain"


def test_every_build_has_the_same_identity() -> None:
    row = _row()
    first, second = (build_message(row, mail_from=MAIL_FROM) for _ in range(2))

    assert (first["Message-ID"], first["Date"]) == (second["Message-ID"], second["Date"])


def test_unknown_attachment_type_is_octet_stream() -> None:
    message = build_message(_row(attachment_name="notes.zzz"), mail_from=MAIL_FROM)

    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/octet-stream"


@pytest.mark.parametrize(
    ("address", "domain"),
    [
        ("ShopBot Returns <returns@shop.example>", "shop.example"),
        ("returns@shop.example", "shop.example"),
        ("nobody", "localhost"),
    ],
)
def test_mail_domain(address: str, domain: str) -> None:
    assert mail_domain(address) == domain


def test_message_ids_are_unique_and_well_formed() -> None:
    first, second = new_message_id("shop.example"), new_message_id("shop.example")

    assert first != second
    assert first.startswith("<")
    assert first.endswith("@shop.example>")


async def test_enqueue_adds_a_pending_row_that_commits_with_the_caller(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        row = enqueue_email(
            session,
            to="ada@example.com",
            subject="Label",
            text="hi",
            attachment=("label.pdf", PDF),
            domain="shop.example",
        )
        assert row in session.new
        assert await _outbox_size(sessions) == 0  # not committed by enqueue_email
        await session.commit()

    assert await _outbox_size(sessions) == 1
    assert row.status is EmailStatus.PENDING
    assert row.attempts == 0
    assert row.message_id.endswith("@shop.example>")
    assert (row.attachment_name, row.attachment) == ("label.pdf", PDF)


async def _outbox_size(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as other:
        return len((await other.scalars(select(OutboxEmail.id))).all())


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("not-an-address", "Label"),
        ("", "Label"),
        ("ada@example.com\r\nBcc: eve@example.com", "Label"),
        ("ada@example.com", "Label\r\nBcc: eve@example.com"),
    ],
)
async def test_enqueue_rejects_what_cannot_be_a_header(
    sessions: async_sessionmaker[AsyncSession], to: str, subject: str
) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match=r"address|one line"):
            enqueue_email(session, to=to, subject=subject, text="hi")
        assert not session.new
