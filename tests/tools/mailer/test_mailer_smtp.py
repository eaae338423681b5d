"""SmtpSender against a real SMTP server on loopback, and the SMTP error mapping."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aiosmtplib
import pytest
from mailer_support import MAIL_FROM, SmtpServer, free_port

from shopbot.errors import ConfigError
from tools.mailer import (
    MailSetupError,
    PermanentMailError,
    SmtpSender,
    TemporaryMailError,
    map_smtp_error,
)


def _message(to: str = "ada@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = MAIL_FROM
    message["To"] = to
    message["Subject"] = "Your return label"
    message["Message-ID"] = "<smtp-test@shop.example>"
    message.set_content("hello")
    return message


async def test_sends_over_plain_smtp(smtp_server: SmtpServer) -> None:
    await SmtpSender(smtp_server.url).send(_message())

    [received] = smtp_server.received
    assert received.mail_from == "returns@shop.example"
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.message["Message-ID"] == "<smtp-test@shop.example>"
    assert not received.tls


async def test_upgrades_with_starttls_and_logs_in(smtp_tls_server: SmtpServer) -> None:
    sender = SmtpSender(smtp_tls_server.url, tls_context=smtp_tls_server.client_tls, timeout=5)

    await sender.send(_message())

    [received] = smtp_tls_server.received
    assert received.tls
    assert received.authenticated


async def test_wrong_password_is_a_setup_error(smtp_tls_server: SmtpServer) -> None:
    url = smtp_tls_server.url.replace("s3cret", "wrong")
    sender = SmtpSender(url, tls_context=smtp_tls_server.client_tls, timeout=5)

    with pytest.raises(MailSetupError) as caught:
        await sender.send(_message())

    assert caught.value.code == 535
    assert smtp_tls_server.received == []


async def test_untrusted_certificate_is_a_setup_error(smtp_tls_server: SmtpServer) -> None:
    sender = SmtpSender(smtp_tls_server.url, timeout=5)  # the system CAs do not know the test CA

    with pytest.raises(MailSetupError, match="CERTIFICATE_VERIFY_FAILED"):
        await sender.send(_message())


async def test_refused_recipient_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.handler.refuse["nobody@example.com"] = "550 5.1.1 no such user"

    with pytest.raises(PermanentMailError) as caught:
        await SmtpSender(smtp_server.url).send(_message("nobody@example.com"))

    assert caught.value.code == 550


async def test_greylisted_recipient_is_temporary(smtp_server: SmtpServer) -> None:
    smtp_server.handler.refuse["ada@example.com"] = "451 4.7.1 greylisted, try later"

    with pytest.raises(TemporaryMailError) as caught:
        await SmtpSender(smtp_server.url).send(_message())

    assert caught.value.code == 451
    assert not isinstance(caught.value, MailSetupError)


async def test_nothing_listening_is_temporary() -> None:
    sender = SmtpSender(f"smtp://127.0.0.1:{free_port()}", timeout=5)

    with pytest.raises(TemporaryMailError, match="SMTPConnectError"):
        await sender.send(_message())


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (aiosmtplib.SMTPConnectError("refused"), TemporaryMailError, None),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TemporaryMailError, None),
        (aiosmtplib.SMTPServerDisconnected("gone"), TemporaryMailError, None),
        (ConnectionResetError("reset"), TemporaryMailError, None),
        (aiosmtplib.SMTPDataError(452, "mailbox full"), TemporaryMailError, 452),
        (aiosmtplib.SMTPDataError(554, "looks like spam"), PermanentMailError, 554),
        (aiosmtplib.SMTPRecipientRefused(550, "unknown", "x@y.z"), PermanentMailError, 550),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), MailSetupError, 535),
        (aiosmtplib.SMTPSenderRefused(553, "not your domain", "a@b.c"), MailSetupError, 553),
        (aiosmtplib.SMTPSenderRefused(451, "try later", "a@b.c"), TemporaryMailError, 451),
        (aiosmtplib.SMTPConnectResponseError(554, "no service"), MailSetupError, 554),
        (aiosmtplib.SMTPException("STARTTLS extension not supported"), MailSetupError, None),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8"), MailSetupError, None),
        (ssl.SSLCertVerificationError("bad cert"), MailSetupError, None),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_error_mapping(error: BaseException, kind: type[Exception], code: int | None) -> None:
    mapped = map_smtp_error(error)

    assert type(mapped) is kind
    assert mapped.code == code


def test_mixed_refusals_retry_when_any_is_temporary() -> None:
    refusals = [
        aiosmtplib.SMTPRecipientRefused(550, "unknown", "a@x.z"),
        aiosmtplib.SMTPRecipientRefused(450, "busy", "b@x.z"),
    ]

    mapped = map_smtp_error(aiosmtplib.SMTPRecipientsRefused(refusals))

    assert type(mapped) is TemporaryMailError


def test_url_is_parsed_and_the_password_kept_out_of_repr() -> None:
    sender = SmtpSender("smtp://me%40shop:p%3Ass@mail.shop.example:587")

    assert (sender.hostname, sender.port, sender.username) == ("mail.shop.example", 587, "me@shop")
    assert sender._password == "p:ss"
    assert "p:ss" not in repr(sender)
    assert "p%3Ass" not in repr(sender)


@pytest.mark.parametrize(
    ("url", "start_tls"),
    [
        ("smtp://relay.example", None),  # upgrade when offered
        ("smtp://u:p@relay.example", True),  # a password never crosses a network in clear
        ("smtp://u:p@127.0.0.1:1025", None),  # loopback relays may lack TLS
        ("smtp://u:p@localhost:1025?starttls=require", True),
        ("smtp://relay.example?starttls=off", False),
        ("smtps://u:p@relay.example", False),  # TLS from the first byte instead
    ],
)
def test_starttls_policy(url: str, start_tls: bool | None) -> None:
    assert SmtpSender(url)._start_tls() is start_tls


def test_default_ports() -> None:
    assert SmtpSender("smtp://relay.example").port == 25
    assert SmtpSender("smtps://relay.example").port == 465


@pytest.mark.parametrize(
    "url", ["http://relay.example", "smtp://", "relay.example:25", "smtp://h?starttls=maybe"]
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        SmtpSender(url)
