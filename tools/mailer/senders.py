"""Handing a message to the mail system: an SMTP relay, or a local Maildir.

A `Sender` either returns (the message was accepted) or raises a `MailError` from
`tools.mailer.errors`; every lower-level error is translated in `map_smtp_error`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import mailbox
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from shopbot.config import Settings
from shopbot.errors import ConfigError
from tools.mailer.errors import MailError, MailSetupError, PermanentMailError, TemporaryMailError

__all__ = ["MaildirSender", "Sender", "SmtpSender", "map_smtp_error", "sender_from_settings"]

StartTls = Literal["auto", "require", "off"]


class Sender(Protocol):
    """Delivers one message to the mail system."""

    async def send(self, message: EmailMessage) -> None:
        """Return once the message is accepted; raise a `MailError` otherwise."""
        ...


class SmtpSender:
    """Sends through an SMTP relay named by a URL.

    `smtp://user:pass@host:port` upgrades with STARTTLS when the server offers it, and
    `smtps://` speaks TLS from the first byte (port 465). `?starttls=require|off` overrides
    the upgrade; with credentials and a host that is not loopback, STARTTLS is required, so
    a password never crosses a network in clear. Percent-encode `@` or `:` in credentials.
    """

    def __init__(
        self, url: str, *, timeout: float = 30.0, tls_context: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"SMTP URL must look like smtp://user:pass@host:port, not {url!r}")
        self.hostname: str = parts.hostname
        self.implicit_tls = parts.scheme == "smtps"
        self.port: int = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.starttls = _starttls_mode(parse_qs(parts.query).get("starttls", ["auto"])[-1])
        self.timeout = timeout
        """Seconds allowed for connecting and for each SMTP command."""
        self.tls_context = tls_context
        """Trust settings for TLS; default the system's CAs with hostname checks."""

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"SmtpSender('{scheme}://{user}{self.hostname}:{self.port}')"

    async def send(self, message: EmailMessage) -> None:
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self._password,
                use_tls=self.implicit_tls,
                start_tls=self._start_tls(),
                tls_context=self.tls_context,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise map_smtp_error(exc) from exc
        if refused:  # only some recipients refused; with all refused aiosmtplib raises
            raise map_smtp_error(
                aiosmtplib.SMTPRecipientsRefused(
                    [
                        aiosmtplib.SMTPRecipientRefused(r.code, r.message, address)
                        for address, r in refused.items()
                    ]
                )
            )

    def _start_tls(self) -> bool | None:
        """aiosmtplib's `start_tls`: True requires it, None upgrades when offered."""
        if self.implicit_tls or self.starttls == "off":
            return False
        if self.starttls == "require" or (self.username and not _is_loopback(self.hostname)):
            return True
        return None


class MaildirSender:
    """Delivers into a local Maildir (`new/`), the embedded default.

    Open it with `mutt -f PATH` or read the files in `PATH/new`: one RFC 5322 message each.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"MaildirSender({str(self.path)!r})"

    async def send(self, message: EmailMessage) -> None:
        try:
            await asyncio.to_thread(self._add, message)
        except OSError as exc:
            raise TemporaryMailError(f"cannot write to Maildir {self.path}: {exc}") from exc

    def _add(self, message: EmailMessage) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self.path, create=True).add(message)


def sender_from_settings(settings: Settings) -> Sender:
    """`SmtpSender` for `settings.smtp_url`, else a Maildir in the data directory."""
    if settings.smtp_url:
        return SmtpSender(settings.smtp_url)
    return MaildirSender(settings.data_dir / "maildir")


def map_smtp_error(exc: BaseException) -> MailError:
    """The one translation of aiosmtplib and socket errors into the mail error tree."""
    message = f"{type(exc).__name__}: {exc}"
    match exc:
        case aiosmtplib.SMTPRecipientsRefused():
            codes = [r.code for r in exc.recipients]
            # One recipient worth retrying makes the whole message worth retrying.
            if any(_is_temporary(code) for code in codes):
                return TemporaryMailError(message, code=min(codes))
            return PermanentMailError(message, code=max(codes, default=None))
        case aiosmtplib.SMTPRecipientRefused() | aiosmtplib.SMTPDataError():
            if _is_temporary(exc.code):
                return TemporaryMailError(message, code=exc.code)
            return PermanentMailError(message, code=exc.code)
        case aiosmtplib.SMTPResponseException() if _is_temporary(exc.code):
            return TemporaryMailError(message, code=exc.code)
        case aiosmtplib.SMTPResponseException():
            # Greeting, HELO, AUTH, MAIL FROM: a refusal of our setup, not of this message.
            return MailSetupError(message, code=exc.code)
        case ssl.SSLError() | aiosmtplib.SMTPNotSupported():
            return MailSetupError(message)
        case (
            aiosmtplib.SMTPTimeoutError()
            | aiosmtplib.SMTPConnectError()
            | aiosmtplib.SMTPServerDisconnected()
            | OSError()
        ):
            return TemporaryMailError(message)
        case aiosmtplib.SMTPException():
            # Left: "STARTTLS/AUTH not supported by this server" and the like.
            return MailSetupError(message)
        case _:
            return TemporaryMailError(message)


def _is_temporary(code: int) -> bool:
    return 400 <= code < 500


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _starttls_mode(value: str) -> StartTls:
    match value:
        case "auto" | "require" | "off":
            return value
        case _:
            raise ConfigError(f"starttls must be auto, require or off, not {value!r}")
