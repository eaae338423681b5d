"""Writes what a turn does: numbered events, the audit log, messages, confirmations.

The rows of a step wait here and go to the database at its commit, as one `db.pipeline.Batch`
written by the database's `Writer` (on PostgreSQL one statement, sent with the COMMIT in one
round trip): the ORM's unit of work costs milliseconds a step, and a tool whose transaction is
rolled back takes none of them with it. They are stored minimised (`shopbot.pii`): the email
addresses in the audit log and in the events of the agent's work masked, those an action
names also hashed; the events and messages the customer sees stay as written.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import ActionLog, Base, Confirmation, ConfirmationStatus, Event, Message, Role, utcnow
from db.pipeline import Batch, Notify, Update, writer_for
from shopbot.actions import Action
from shopbot.events import ActionProposed, Citation
from shopbot.events import Event as TurnEvent
from shopbot.pii import Minimiser, addresses
from shopbot.state import LIVE_CONFIRMATIONS
from shopbot.storable import scrub

StoredListener = Callable[[str, list[dict[str, Any]]], None]
"""Told after each commit which event rows it stored (conversation id, rows in seq order)."""
Announcer = Callable[[str, list[dict[str, Any]]], Awaitable[Notify | None]]
"""Given the event rows a commit will store, a notification to send in the same transaction:
the web backend's NOTIFY to the other workers, which PostgreSQL delivers at the commit."""

_TABLES = Base.metadata.tables
EVENTS = _TABLES[Event.__tablename__]
MESSAGES = _TABLES[Message.__tablename__]
AUDIT = _TABLES[ActionLog.__tablename__]


@dataclass
class AuditEntry:
    """One step's row of the audit log (`db.ActionLog`); the loop completes it as the step
    runs, and it is written at the step's commit."""

    conversation_id: str
    turn: int
    step: int
    raw_output: str
    thought: str = ""
    tool: str | None = None
    args: dict[str, Any] | None = None
    parse_error: str | None = None
    verdict: str | None = None
    reason: str | None = None
    observation: dict[str, Any] | None = None
    flags: list[str] = field(default_factory=list[str])
    model_ms: float = 0.0
    guard_ms: float = 0.0
    tool_ms: float = 0.0
    created_at: datetime = field(default_factory=utcnow)

    def row(self) -> dict[str, Any]:
        # Shallow: fields are replaced, never changed in place (asdict deep-copies, slowly).
        return dict(self.__dict__)


class Recorder:
    """Keeps a step's rows until the loop commits the step, then writes them."""

    def __init__(
        self,
        session: AsyncSession,
        conversation_id: str,
        turn: int,
        seq: int,
        pii: Minimiser,
        on_stored: StoredListener | None = None,
        announce: Announcer | None = None,
    ) -> None:
        self.session = session
        self.conversation_id = conversation_id
        self.turn = turn
        self.seq = seq
        self.pii = pii
        self.on_stored = on_stored
        self.announce = announce
        self.pending: list[TurnEvent] = []
        self._rows: list[dict[str, Any]] = []
        self._messages: list[dict[str, Any]] = []
        self._entries: list[AuditEntry] = []
        self._also: list[Update] = []
        self.model_steps = 0
        """Model steps logged this turn (each one audit row), the final reply included."""
        self._written: dict[int, tuple[AuditEntry, dict[str, Any]]] = {}
        """Entries already stored, by step, with what was stored: a side effect's attempt is
        committed before it acts, and its outcome is added to the same row afterwards."""
        self._typed: set[str] = set()
        """The addresses this turn's actions named: masked wherever they are stored."""

    def emit(self, event: TurnEvent) -> None:
        if isinstance(event, ActionProposed):
            self._typed.update(addresses(event.args))
        self._rows.append(
            {
                "conversation_id": self.conversation_id,
                "seq": self.seq,
                "turn": self.turn,
                "kind": event.kind,
                "payload": event.model_dump(mode="json"),
                "created_at": utcnow(),
            }
        )
        self.seq += 1
        self.pending.append(event)

    def also(self, change: Update) -> None:
        """One more update for the next commit (the lease's release in a turn's last)."""
        self._also.append(change)

    async def commit(self) -> None:
        """Write the step's rows, then commit everything the step did."""
        # Minimised at the commit, knowing every address the step's action named (its
        # thought comes before it).
        rows = [r | {"payload": self.pii.event(r["payload"], self._typed)} for r in self._rows]
        self._rows = []
        messages, self._messages = self._messages, []
        entries, self._entries = self._entries, []
        also, self._also = self._also, []
        batch = Batch()
        batch.insert(MESSAGES, messages)
        stored = [self._audit_row(e) for e in entries]
        batch.insert(AUDIT, stored)
        batch.insert(EVENTS, rows)
        changed = [
            (e, now) for e, was in self._written.values() if (now := self._audit_row(e)) != was
        ]
        batch.updates.extend(_audit_update(entry, now) for entry, now in changed)
        batch.updates.extend(also)
        if rows and self.announce is not None:
            batch.notify = await self.announce(self.conversation_id, rows)
        await writer_for(self.session).commit(self.session, batch)
        self._written.update(
            (e.step, (e, r)) for e, r in [*changed, *zip(entries, stored, strict=True)]
        )
        if rows and self.on_stored is not None:
            self.on_stored(self.conversation_id, rows)

    def _audit_row(self, entry: AuditEntry) -> dict[str, Any]:
        return self.pii.row(entry.row(), self._typed)

    def drain(self) -> list[TurnEvent]:
        events, self.pending = self.pending, []
        return events

    def message(self, role: Role, text: str, citations: list[Citation] | None = None) -> None:
        self._messages.append(
            {
                "conversation_id": self.conversation_id,
                "turn": self.turn,
                "role": role,
                "content": text,
                "citations": [c.model_dump() for c in citations or []],
                "created_at": utcnow(),
            }
        )

    def log(self, step: int, raw: str, **fields: Any) -> AuditEntry:
        """The step's audit row, written at `commit`; the caller may complete it until then.
        The raw output is kept as the model wrote it, but for what no database stores."""
        entry = AuditEntry(self.conversation_id, self.turn, step, scrub(raw), **fields)
        self._entries.append(entry)
        self.model_steps += 1
        return entry

    async def request_confirmation(
        self, action: Action, summary: str, now: datetime, ttl_minutes: int
    ) -> Confirmation:
        """A new pending confirmation; any earlier live one is superseded."""
        await self.session.execute(
            update(Confirmation)
            .where(
                Confirmation.conversation_id == self.conversation_id,
                Confirmation.status.in_(LIVE_CONFIRMATIONS),
            )
            .values(status=ConfirmationStatus.SUPERSEDED, decided_at=now)
        )
        row = Confirmation(
            id=str(uuid.uuid4()),
            conversation_id=self.conversation_id,
            tool=action.tool,
            args=action.arguments,
            digest=action.digest,
            summary=summary,
            created_at=now,
            expires_at=now + timedelta(minutes=ttl_minutes),
        )
        self.session.add(row)
        return row

    def _pending(self, confirmation_id: str) -> ColumnElement[bool]:
        return and_(
            Confirmation.id == confirmation_id,
            Confirmation.conversation_id == self.conversation_id,
            Confirmation.status == ConfirmationStatus.PENDING,
        )

    async def decide(self, confirmation_id: str, approve: bool, now: datetime) -> bool:
        """Approve or cancel a pending, unexpired confirmation; False if it is not one."""
        status = ConfirmationStatus.APPROVED if approve else ConfirmationStatus.CANCELLED
        result = await self.session.execute(
            update(Confirmation)
            .where(self._pending(confirmation_id), Confirmation.expires_at > now)
            .values(status=status, decided_at=now)
        )
        return _rowcount(result) == 1

    async def withdraw(self, confirmation_id: str, now: datetime) -> bool:
        """End a pending confirmation unanswered (`shopbot.loop`: the customer wrote something
        else); False if it was not pending."""
        result = await self.session.execute(
            update(Confirmation)
            .where(self._pending(confirmation_id))
            .values(status=ConfirmationStatus.WITHDRAWN, decided_at=now)
        )
        return _rowcount(result) == 1

    async def status_of(self, confirmation_id: str) -> ConfirmationStatus | None:
        """A confirmation's status; None when the conversation has none of that id."""
        return await self.session.scalar(
            select(Confirmation.status).where(
                Confirmation.id == confirmation_id,
                Confirmation.conversation_id == self.conversation_id,
            )
        )

    async def consume(self, confirmation_id: str, now: datetime) -> bool:
        """Use an approved confirmation once; False if it was used, withdrawn or expired."""
        result = await self.session.execute(
            update(Confirmation)
            .where(
                Confirmation.id == confirmation_id,
                Confirmation.status == ConfirmationStatus.APPROVED,
                Confirmation.expires_at > now,
            )
            .values(status=ConfirmationStatus.CONSUMED, consumed_at=now)
        )
        return _rowcount(result) == 1

    async def expire_approved(self, now: datetime) -> None:
        """An approval counts only in the turn it was given."""
        await self.session.execute(
            update(Confirmation)
            .where(
                Confirmation.conversation_id == self.conversation_id,
                Confirmation.status == ConfirmationStatus.APPROVED,
            )
            .values(status=ConfirmationStatus.EXPIRED, decided_at=now)
        )


def _audit_update(entry: AuditEntry, row: dict[str, Any]) -> Update:
    """A stored audit row brought up to date; a step has one row, so its key is the step."""
    key = {"conversation_id": entry.conversation_id, "turn": entry.turn, "step": entry.step}
    return Update(AUDIT, key, row)


def _rowcount(result: Any) -> int:
    return int(result.rowcount)
