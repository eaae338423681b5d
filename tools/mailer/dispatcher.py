"""Delivering the outbox: claim a due row, send it, record the outcome.

Every status change is one guarded UPDATE, so it holds on SQLite and PostgreSQL and with any
number of dispatchers (in process after a turn, and `shopbot outbox run` workers):

    pending ──claim──> sending ──accepted──────────────────────────> sent
       ^                  │ ──permanent error, or last attempt────> failed
       └──temporary error─┘    (next_attempt_at = now + backoff with jitter)
    sending, lease expired ──> claimed again, or failed if attempts are used up

The claim is `UPDATE outbox SET status='sending', attempts=attempts+1,
next_attempt_at=now+lease WHERE id=:id AND status IN ('pending','sending') AND
next_attempt_at<=now AND attempts<max RETURNING *`. When two dispatchers race for a row the
database serialises their UPDATEs (PostgreSQL re-checks the WHERE against the winner's row;
SQLite has one writer): the first moves next_attempt_at past now, the second matches nothing,
and only the one that got the row back sends it. While a row is `sending`, next_attempt_at is
its lease deadline. The outcome is written only where status is still 'sending' with the
attempt number this worker claimed, so a worker whose lease ran out cannot overwrite the
result of the worker that took over.

Delivery is at-least-once, and duplicates are confined to one window. If the process dies,
or the database is unreachable, between the relay accepting a message and the commit that
marks it sent, the row stays 'sending' and is sent again once its lease expires. Exactly-once
across a database and an SMTP relay would need a transaction they share, which SMTP does not
offer; marking the row sent *before* sending would make the same window lose the email
instead, and a return label must not be lost. The retry carries the same Message-ID and
Date, so a receiver can recognise the copy (many clients and some providers drop it).
Outside that window an email is never sent twice. The lease must outlast a send (each send
is cut off at half the lease) and the workers' clocks must agree to well within it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import EmailStatus, OutboxEmail, utcnow
from shopbot.config import Settings
from shopbot.redact import mask_emails
from tools.mailer.errors import MailError, PermanentMailError, TemporaryMailError
from tools.mailer.message import build_message
from tools.mailer.senders import Sender, sender_from_settings

__all__ = ["DispatchReport", "Dispatcher"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_LIVE = (EmailStatus.PENDING, EmailStatus.SENDING)
_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """What one `deliver_due` call did."""

    sent: int = 0
    retried: int = 0
    """Temporary failures, put back to pending for a later attempt."""
    failed: int = 0
    """Permanent failures and rows whose attempts ran out; never tried again."""

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(
            self.sent + other.sent, self.retried + other.retried, self.failed + other.failed
        )

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed


@dataclass(frozen=True, slots=True)
class _Claim:
    id: int
    attempt: int
    message_id: str


class Dispatcher:
    """Sends due outbox rows through a `Sender`, at least once and never twice otherwise."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: Sender,
        *,
        mail_from: str,
        max_attempts: int = 8,
        backoff_base: timedelta = timedelta(minutes=1),
        backoff_cap: timedelta = timedelta(hours=1),
        lease: timedelta = timedelta(minutes=5),
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._sessions = sessions
        self.sender = sender
        self.mail_from = mail_from
        self.max_attempts = max_attempts
        """Attempts before a row is failed; the defaults retry for about two hours."""
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lease = lease
        """How long a claimed row belongs to its worker before another may take it over."""
        self._clock = clock
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(
        cls, settings: Settings, sessions: async_sessionmaker[AsyncSession]
    ) -> Dispatcher:
        """A dispatcher with the configured sender (SMTP or the Maildir) and From address."""
        return cls(sessions, sender_from_settings(settings), mail_from=settings.mail_from)

    async def deliver_due(self, limit: int = 100) -> DispatchReport:
        """Send up to `limit` due rows, one at a time, and say what happened."""
        now = self._clock()
        report = DispatchReport(failed=await self._fail_exhausted(now))
        for email_id in await self._due_ids(now, limit):
            report += await self._deliver(email_id)
        return report

    async def run_forever(
        self, *, stop_event: asyncio.Event, poll_interval: float = 5.0, limit: int = 100
    ) -> None:
        """Deliver due rows until `stop_event` is set: the `shopbot outbox run` worker."""
        while not stop_event.is_set():
            try:
                report = await self.deliver_due(limit)
            except (SQLAlchemyError, OSError):
                # The database being away is a reason to wait, not to stop the worker.
                log.exception("outbox: delivery round failed; next try in %s s", poll_interval)
                report = DispatchReport()
            if report.total >= limit:
                continue  # a backlog: go on without pausing
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_interval):
                    await stop_event.wait()

    def backoff(self, attempt: int) -> timedelta:
        """Delay after failed attempt number `attempt` (1-based): exponential, jittered."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(attempt - 1, 32))
        # Equal jitter: never sooner than half the delay, and workers that failed together
        # (a relay outage) spread out instead of retrying in lockstep.
        return ceiling / 2 + ceiling / 2 * self._rng.random()

    async def _due_ids(self, now: datetime, limit: int) -> list[int]:
        async with self._sessions() as session:
            ids = await session.scalars(
                select(OutboxEmail.id)
                .where(
                    OutboxEmail.status.in_(_LIVE),
                    OutboxEmail.next_attempt_at <= now,
                    OutboxEmail.attempts < self.max_attempts,
                )
                .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
                .limit(limit)
            )
            return list(ids)

    async def _fail_exhausted(self, now: datetime) -> int:
        """Fail due rows that have no attempt left: leases that expired on the last attempt."""
        async with self._sessions.begin() as session:
            failed = await session.execute(
                update(OutboxEmail)
                .where(
                    OutboxEmail.status.in_(_LIVE),
                    OutboxEmail.next_attempt_at <= now,
                    OutboxEmail.attempts >= self.max_attempts,
                )
                .values(
                    status=EmailStatus.FAILED,
                    last_error=case(
                        (
                            OutboxEmail.status == EmailStatus.SENDING,
                            "lease expired during the last attempt; it may have been delivered",
                        ),
                        else_=OutboxEmail.last_error,
                    ),
                )
                .returning(OutboxEmail.message_id)
            )
            message_ids = list(failed.scalars())
        for message_id in message_ids:
            log.warning("outbox: %s failed, no attempts left", message_id)
        return len(message_ids)

    async def _deliver(self, email_id: int) -> DispatchReport:
        now = self._clock()
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(OutboxEmail)
                .where(
                    OutboxEmail.id == email_id,
                    OutboxEmail.status.in_(_LIVE),
                    OutboxEmail.next_attempt_at <= now,
                    OutboxEmail.attempts < self.max_attempts,
                )
                .values(
                    status=EmailStatus.SENDING,
                    attempts=OutboxEmail.attempts + 1,
                    next_attempt_at=now + self.lease,
                )
                .returning(OutboxEmail)
            )
            row = claimed.scalar_one_or_none()
            if row is None:
                return DispatchReport()  # another dispatcher has it, or it is no longer due
            claim = _Claim(row.id, row.attempts, row.message_id)
            message = self._build(row)
        error = message if isinstance(message, MailError) else await self._send(message)
        return await self._record(claim, error)

    def _build(self, row: OutboxEmail) -> EmailMessage | PermanentMailError:
        try:
            return build_message(row, mail_from=self.mail_from)
        except (ValueError, TypeError) as exc:
            return PermanentMailError(f"cannot build the message: {exc}")

    async def _send(self, message: EmailMessage) -> MailError | None:
        timeout = self.lease.total_seconds() / 2
        try:
            async with asyncio.timeout(timeout):
                await self.sender.send(message)
        except MailError as exc:
            return exc
        except TimeoutError:
            return TemporaryMailError(f"the send took longer than {timeout:g} s")
        except Exception as exc:
            # A sender bug must not stop the worker: the row retries, then ends failed.
            log.exception("outbox: %r raised an untyped error", self.sender)
            return TemporaryMailError(f"{type(exc).__name__}: {exc}")
        return None

    async def _record(self, claim: _Claim, error: MailError | None) -> DispatchReport:
        now = self._clock()
        values: dict[str, Any]
        if error is None:
            values = {"status": EmailStatus.SENT, "sent_at": now, "last_error": None}
            report = DispatchReport(sent=1)
        elif isinstance(error, TemporaryMailError) and claim.attempt < self.max_attempts:
            retry_at = now + self.backoff(claim.attempt)
            values = {"status": EmailStatus.PENDING, "next_attempt_at": retry_at}
            report = DispatchReport(retried=1)
        else:
            values = {"status": EmailStatus.FAILED}
            report = DispatchReport(failed=1)
        if error is not None:
            values["last_error"] = f"{type(error).__name__}: {error}"[:_MAX_ERROR_CHARS]
        async with self._sessions.begin() as session:
            recorded = await session.execute(
                update(OutboxEmail)
                .where(
                    OutboxEmail.id == claim.id,
                    OutboxEmail.status == EmailStatus.SENDING,
                    OutboxEmail.attempts == claim.attempt,
                )
                .values(values)
                .returning(OutboxEmail.id)
            )
            kept_lease = recorded.scalar_one_or_none() is not None
        _log_outcome(claim, report, error, kept_lease=kept_lease)
        return report


def _log_outcome(
    claim: _Claim, report: DispatchReport, error: MailError | None, *, kept_lease: bool
) -> None:
    if not kept_lease:
        log.warning(
            "outbox: %s attempt %d outlived its lease; another worker owns it now",
            claim.message_id,
            claim.attempt,
        )
    elif report.sent:
        log.info("outbox: %s sent (attempt %d)", claim.message_id, claim.attempt)
    else:
        outcome = "will retry" if report.retried else "failed"
        # SMTP refusals quote the recipient: the log gets the address masked.
        detail = mask_emails(str(error))
        log.warning(
            "outbox: %s attempt %d %s: %s", claim.message_id, claim.attempt, outcome, detail
        )
