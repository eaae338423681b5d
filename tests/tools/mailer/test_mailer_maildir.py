"""The embedded default: a Maildir the user can open, fed by the same dispatcher."""

from __future__ import annotations

import mailbox
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from mailer_support import MAIL_FROM, PDF
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shopbot.config import Settings
from tools.mailer import (
    Dispatcher,
    DispatchReport,
    MaildirSender,
    SmtpSender,
    TemporaryMailError,
    enqueue_email,
    sender_from_settings,
)


def _settings(data_dir: Path, smtp_url: str | None = None) -> Settings:
    return Settings(data_dir=data_dir, smtp_url=smtp_url, mail_from=MAIL_FROM)


async def test_dispatcher_delivers_into_the_maildir(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions.begin() as session:
        row = enqueue_email(
            session,
            to="ada@example.com",
            subject="Your return label",
            text="Print it.",
            html="<p>Print it.</p>",
            attachment=("label.pdf", PDF),
        )
    dispatcher = Dispatcher.from_settings(_settings(tmp_path / "data"), sessions)

    assert await dispatcher.deliver_due() == DispatchReport(sent=1)

    [file] = list((tmp_path / "data" / "maildir" / "new").iterdir())
    parsed = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == row.message_id
    assert parsed["From"] == MAIL_FROM
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF
    # And a mail reader sees one message in it.
    assert len(mailbox.Maildir(tmp_path / "data" / "maildir", create=False)) == 1


async def test_unwritable_maildir_is_temporary(tmp_path: Path) -> None:
    (tmp_path / "maildir").write_text("a file where the folder should be")
    message = EmailMessage()
    message.set_content("hi")

    with pytest.raises(TemporaryMailError, match="cannot write to Maildir"):
        await MaildirSender(tmp_path / "maildir").send(message)


def test_sender_follows_the_settings(tmp_path: Path) -> None:
    maildir = sender_from_settings(_settings(tmp_path))
    smtp = sender_from_settings(_settings(tmp_path, "smtp://relay.example:2525"))

    assert isinstance(maildir, MaildirSender)
    assert maildir.path == tmp_path / "maildir"
    assert isinstance(smtp, SmtpSender)
    assert smtp.port == 2525
