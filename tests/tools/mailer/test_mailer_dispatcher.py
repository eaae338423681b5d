"""The outbox end to end: enqueue in a transaction, dispatch over real SMTP, record."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import EmailMessage
from random import Random

import pytest
from mailer_support import (
    MAIL_FROM,
    PDF,
    CapturingHandler,
    Clock,
    SmtpServer,
    client_sockets_closed,
    free_port,
    start_smtp,
    stop_smtp,
)
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import EmailStatus, OutboxEmail
from db.engine import create_engine, session_factory
from tools.mailer import (
    Dispatcher,
    DispatchReport,
    Sender,
    SmtpSender,
    enqueue_email,
)

Sessions = async_sessionmaker[AsyncSession]


async def _enqueue(sessions: Sessions, count: int = 1, *, to: str = "ada@example.com") -> list[str]:
    """Commit `count` emails; their Message-IDs."""
    async with sessions.begin() as session:
        rows = [
            enqueue_email(
                session,
                to=to,
                subject=f"Your return label #{n}",
                text="Print the label and drop the parcel off.",
                html="<p>Print the label and drop the parcel off.</p>",
                attachment=(f"label-{n}.pdf", PDF),
                domain="shop.example",
            )
            for n in range(count)
        ]
    return [row.message_id for row in rows]


async def _rows(sessions: Sessions) -> list[OutboxEmail]:
    async with sessions() as session:
        return list(await session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)))


def _dispatcher(
    sessions: Sessions, sender: Sender, clock: Clock, *, max_attempts: int = 8
) -> Dispatcher:
    return Dispatcher(
        sessions, sender, mail_from=MAIL_FROM, max_attempts=max_attempts, clock=clock, rng=Random(7)
    )


async def test_email_arrives_once_with_text_html_and_label(
    sessions: Sessions, smtp_server: SmtpServer, clock: Clock
) -> None:
    [message_id] = await _enqueue(sessions)
    dispatcher = _dispatcher(sessions, SmtpSender(smtp_server.url), clock)

    assert await dispatcher.deliver_due() == DispatchReport(sent=1)
    assert await dispatcher.deliver_due() == DispatchReport()

    [received] = smtp_server.received
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.mail_from == "returns@shop.example"
    message = received.message
    assert message["Message-ID"] == message_id
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your return label #0"
    assert message.get_body(("plain",)) is not None
    assert message.get_body(("html",)) is not None
    [label] = list(message.iter_attachments())
    assert (label.get_content_type(), label.get_content()) == ("application/pdf", PDF)
    [row] = await _rows(sessions)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == (
        EmailStatus.SENT,
        1,
        clock.now,
        None,
    )


async def test_enqueue_rolls_back_with_the_callers_transaction(
    sessions: Sessions, smtp_server: SmtpServer, clock: Clock
) -> None:
    async def create_return_that_fails() -> None:
        async with sessions.begin() as session:
            enqueue_email(session, to="ada@example.com", subject="Label", text="hi")
            await session.flush()  # the row reached the database inside the transaction
            raise RuntimeError("carrier down")  # ... and then the return failed

    with pytest.raises(RuntimeError, match="carrier down"):
        await create_return_that_fails()

    report = await _dispatcher(sessions, SmtpSender(smtp_server.url), clock).deliver_due()

    assert report == DispatchReport()
    assert await _rows(sessions) == []
    assert smtp_server.received == []


async def test_smtp_down_then_back_delivers_exactly_once(sessions: Sessions, clock: Clock) -> None:
    port = free_port()  # nothing listens here yet
    [message_id] = await _enqueue(sessions)
    dispatcher = _dispatcher(sessions, SmtpSender(f"smtp://127.0.0.1:{port}", timeout=5), clock)

    assert await dispatcher.deliver_due() == DispatchReport(retried=1)

    [row] = await _rows(sessions)
    assert (row.status, row.attempts) == (EmailStatus.PENDING, 1)
    # Attempt 1 waits half to all of the 1-minute base delay (equal jitter).
    assert (
        clock.now + timedelta(seconds=30) <= row.next_attempt_at <= clock.now + timedelta(minutes=1)
    )
    assert row.last_error is not None
    assert "SMTPConnectError" in row.last_error

    handler = CapturingHandler()
    controller = start_smtp(handler, port)
    try:
        assert await dispatcher.deliver_due() == DispatchReport()  # not due yet
        clock.advance(timedelta(minutes=1))
        assert await dispatcher.deliver_due() == DispatchReport(sent=1)
        clock.advance(timedelta(hours=1))
        assert await dispatcher.deliver_due() == DispatchReport()
    finally:
        await client_sockets_closed()
        stop_smtp(controller)

    assert [r.message["Message-ID"] for r in handler.received] == [message_id]
    [row] = await _rows(sessions)
    assert (row.status, row.attempts) == (EmailStatus.SENT, 2)


async def test_permanent_refusal_fails_and_is_not_retried(
    sessions: Sessions, smtp_server: SmtpServer, clock: Clock
) -> None:
    smtp_server.handler.refuse["nobody@example.com"] = "550 5.1.1 no such user"
    await _enqueue(sessions, to="nobody@example.com")
    dispatcher = _dispatcher(sessions, SmtpSender(smtp_server.url), clock)

    assert await dispatcher.deliver_due() == DispatchReport(failed=1)
    clock.advance(timedelta(days=1))
    assert await dispatcher.deliver_due() == DispatchReport()

    [row] = await _rows(sessions)
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 1)
    assert row.last_error is not None
    assert "550" in row.last_error
    assert smtp_server.received == []


async def test_attempts_run_out_with_growing_backoff(sessions: Sessions, clock: Clock) -> None:
    await _enqueue(sessions)
    sender = SmtpSender(f"smtp://127.0.0.1:{free_port()}", timeout=5)
    dispatcher = _dispatcher(sessions, sender, clock, max_attempts=3)
    delays: list[timedelta] = []

    for _ in range(2):
        assert await dispatcher.deliver_due() == DispatchReport(retried=1)
        [row] = await _rows(sessions)
        delays.append(row.next_attempt_at - clock.now)
        clock.advance(delays[-1])
    assert await dispatcher.deliver_due() == DispatchReport(failed=1)

    assert timedelta(seconds=30) <= delays[0] <= timedelta(minutes=1)
    assert timedelta(minutes=1) <= delays[1] <= timedelta(minutes=2)
    [row] = await _rows(sessions)
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 3)


def test_backoff_is_capped() -> None:
    dispatcher = Dispatcher(async_sessionmaker(), SmtpSender("smtp://x"), mail_from=MAIL_FROM)

    assert all(
        timedelta(minutes=30) <= dispatcher.backoff(attempt) <= timedelta(hours=1)
        for attempt in (7, 8, 50, 10_000)
    )


async def test_two_dispatchers_at_once_send_each_email_once(
    any_db_url: str, smtp_server: SmtpServer, clock: Clock
) -> None:
    # Two engines, as two worker processes would have.
    engines = [create_engine(any_db_url), create_engine(any_db_url)]
    try:
        first, second = (session_factory(engine) for engine in engines)
        message_ids = await _enqueue(first, 20)
        sender = SmtpSender(smtp_server.url)

        reports = await asyncio.gather(
            _dispatcher(first, sender, clock).deliver_due(),
            _dispatcher(second, sender, clock).deliver_due(),
        )

        assert sorted(smtp_server.message_ids()) == sorted(message_ids)
        assert sum(reports, DispatchReport()) == DispatchReport(sent=20)
        rows = await _rows(first)
        assert {(row.status, row.attempts) for row in rows} == {(EmailStatus.SENT, 1)}
    finally:
        for engine in engines:
            await engine.dispose()


async def test_racing_claims_on_one_row_have_one_winner(any_db_url: str, clock: Clock) -> None:
    engines = [create_engine(any_db_url) for _ in range(3)]
    try:
        factories = [session_factory(engine) for engine in engines]
        await _enqueue(factories[0], 10)
        recorder = _Recorder()
        dispatchers = [_dispatcher(sessions, recorder, clock) for sessions in factories]

        for row in await _rows(factories[0]):
            # All three go for the same row at the same moment; the guarded UPDATE picks one.
            reports = await asyncio.gather(*(d._deliver(row.id) for d in dispatchers))
            assert sorted(r.sent for r in reports) == [0, 0, 1]

        assert len(recorder.sent) == 10
    finally:
        for engine in engines:
            await engine.dispose()


class _Recorder:
    """A sender that keeps messages, and can hold a send until released."""

    def __init__(self, expected: int = 1) -> None:
        self.sent: list[EmailMessage] = []
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.all_arrived = asyncio.Event()
        self._expected = expected

    async def send(self, message: EmailMessage) -> None:
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        self.sent.append(message)
        if len(self.sent) >= self._expected:
            self.all_arrived.set()


async def test_row_of_a_crashed_worker_is_reclaimed_after_its_lease(
    sessions: Sessions, clock: Clock
) -> None:
    await _enqueue(sessions)
    async with sessions.begin() as session:  # a worker claimed it, then died mid-send
        await session.execute(
            update(OutboxEmail).values(
                status=EmailStatus.SENDING,
                attempts=1,
                next_attempt_at=clock.now + timedelta(minutes=5),
            )
        )
    recorder = _Recorder()
    dispatcher = _dispatcher(sessions, recorder, clock)

    assert await dispatcher.deliver_due() == DispatchReport()
    clock.advance(timedelta(minutes=5))
    assert await dispatcher.deliver_due() == DispatchReport(sent=1)

    [row] = await _rows(sessions)
    assert (row.status, row.attempts, len(recorder.sent)) == (EmailStatus.SENT, 2, 1)


async def test_crash_on_the_last_attempt_fails_the_row(sessions: Sessions, clock: Clock) -> None:
    await _enqueue(sessions)
    async with sessions.begin() as session:
        await session.execute(
            update(OutboxEmail).values(
                status=EmailStatus.SENDING, attempts=8, next_attempt_at=clock.now
            )
        )
    recorder = _Recorder()

    assert await _dispatcher(sessions, recorder, clock).deliver_due() == DispatchReport(failed=1)

    [row] = await _rows(sessions)
    assert row.status is EmailStatus.FAILED
    assert row.last_error is not None
    assert "lease expired" in row.last_error
    assert recorder.sent == []


async def test_worker_that_outlives_its_lease_cannot_overwrite_its_successor(
    sessions: Sessions, clock: Clock
) -> None:
    await _enqueue(sessions)
    slow, fast = _Recorder(), _Recorder()
    slow.hold = asyncio.Event()
    slow_round = asyncio.create_task(_dispatcher(sessions, slow, clock).deliver_due())
    await slow.entered.wait()  # claimed, and stuck in the send

    clock.advance(timedelta(minutes=6))  # past the 5-minute lease
    assert await _dispatcher(sessions, fast, clock).deliver_due() == DispatchReport(sent=1)
    slow.hold.set()
    await slow_round

    # Both sent (the at-least-once window), the same Message-ID; the row tells the truth.
    assert slow.sent[0]["Message-ID"] == fast.sent[0]["Message-ID"]
    [row] = await _rows(sessions)
    assert (row.status, row.attempts, row.sent_at) == (EmailStatus.SENT, 2, clock.now)


async def test_untyped_sender_error_is_retried(sessions: Sessions, clock: Clock) -> None:
    class Broken:
        async def send(self, message: EmailMessage) -> None:
            raise KeyError("a bug")

    await _enqueue(sessions)

    assert await _dispatcher(sessions, Broken(), clock).deliver_due() == DispatchReport(retried=1)
    [row] = await _rows(sessions)
    assert row.last_error is not None
    assert "KeyError" in row.last_error


async def test_run_forever_delivers_and_stops(sessions: Sessions) -> None:
    recorder = _Recorder(expected=3)
    dispatcher = Dispatcher(sessions, recorder, mail_from=MAIL_FROM)
    stop = asyncio.Event()
    worker = asyncio.create_task(dispatcher.run_forever(stop_event=stop, poll_interval=0.05))

    message_ids = await _enqueue(sessions, 3)  # after the worker started: it polls for them
    async with asyncio.timeout(10):
        await recorder.all_arrived.wait()
    stop.set()
    async with asyncio.timeout(5):
        await worker

    assert sorted(m["Message-ID"] for m in recorder.sent) == sorted(message_ids)
    async with sessions() as session:
        sent = await session.scalar(
            select(func.count()).where(OutboxEmail.status == EmailStatus.SENT)
        )
    assert sent == 3
