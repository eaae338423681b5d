"""The mailer: a transactional outbox, its dispatcher, and the senders behind it.

A tool writes the email with `enqueue_email` in the same transaction as the change it
reports; after the commit a `Dispatcher` sends it through a `Sender` (SMTP relay, or the
embedded Maildir) and records the outcome in the row.
"""

from tools.mailer.dispatcher import Dispatcher, DispatchReport
from tools.mailer.errors import MailError, MailSetupError, PermanentMailError, TemporaryMailError
from tools.mailer.message import build_message, mail_domain
from tools.mailer.outbox import enqueue_email, new_message_id
from tools.mailer.senders import (
    MaildirSender,
    Sender,
    SmtpSender,
    map_smtp_error,
    sender_from_settings,
)

__all__ = [
    "DispatchReport",
    "Dispatcher",
    "MailError",
    "MailSetupError",
    "MaildirSender",
    "PermanentMailError",
    "Sender",
    "SmtpSender",
    "TemporaryMailError",
    "build_message",
    "enqueue_email",
    "mail_domain",
    "map_smtp_error",
    "new_message_id",
    "sender_from_settings",
]
