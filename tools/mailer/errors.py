"""Why an email could not be delivered, in one tree.

    MailError                 (a ShopBotError)
    ├── TemporaryMailError    worth another try later: connection refused or reset,
    │   │                     timeouts, a 4xx reply, a full disk under the Maildir
    │   └── MailSetupError    the relay refused *our* setup, not this message: failed
    │                         login, TLS trouble, sender address not allowed, a 5xx
    │                         greeting. Retried like any temporary error, so fixing the
    │                         settings delivers the backlog instead of failing it.
    └── PermanentMailError    this message will never be accepted: a 5xx reply to its
                              recipient or its content, or a row that cannot be built

Senders raise only these; `tools.mailer.senders.map_smtp_error` is the one place that
translates aiosmtplib and socket errors into them.
"""

from __future__ import annotations

from shopbot.errors import ShopBotError


class MailError(ShopBotError):
    """An email could not be handed over to the mail system."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        """The SMTP reply code, when a server gave one."""


class TemporaryMailError(MailError):
    """Trying again later may succeed."""


class MailSetupError(TemporaryMailError):
    """The relay rejected the sender's configuration; retried until an operator fixes it."""


class PermanentMailError(MailError):
    """Trying again will not help: the message is marked failed."""
