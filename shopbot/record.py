"""Writes what a turn does: numbered events, the audit log, messages, confirmations.

The rows of a step wait here and go to the database at its commit, one Core executemany per
table: the ORM's unit of work costs milliseconds a step, and a tool whose transaction is
rolled back takes none of them with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, null, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import ActionLog, Base, Confirmation, ConfirmationStatus, Event, Message, Role, utcnow
from shopbot.actions import Action
from shopbot.events import Citation
from shopbot.events import Event as TurnEvent
from shopbot.state import LIVE_CONFIRMATIONS

StoredListener = Callable[[str, list[dict[str, Any]]], None]
"""Told after each commit which event rows it stored (conversation id, rows in seq order)."""

_TABLES = Base.metadata.tables
INSERT_EVENTS = insert(_TABLES[Event.__tablename__])
INSERT_MESSAGES = insert(_TABLES[Message.__tablename__])
AUDIT = _TABLES[ActionLog.__tablename__]
INSERT_AUDIT = insert(AUDIT).returning(AUDIT.c.id, sort_by_parameter_order=True)
JSON_COLUMNS = frozenset(("args", "observation"))


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


def _sql(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row as parameters: a JSON column given None stores JSON 'null'; what is
    absent is SQL NULL, as the ORM wrote it."""
    return {k: null() if v is None and k in JSON_COLUMNS else v for k, v in row.items()}


class Recorder:
    """Keeps a step's rows until the loop commits the step, then writes them."""

    def __init__(
        self,
        session: AsyncSession,
        conversation_id: str,
        turn: int,
        seq: int,
        on_stored: StoredListener | None = None,
    ) -> None:
        self.session = session
        self.conversation_id = conversation_id
        self.turn = turn
        self.seq = seq
        self.on_stored = on_stored
        self.pending: list[TurnEvent] = []
        self._rows: list[dict[str, Any]] = []
        self._messages: list[dict[str, Any]] = []
        self._entries: list[AuditEntry] = []
        self._written: dict[int, tuple[AuditEntry, dict[str, Any]]] = {}
        """Entries already stored, by id, with what was stored: a side effect's attempt is
        committed before it acts, and its outcome is added to the same row afterwards."""

    def emit(self, event: TurnEvent) -> None:
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

    async def commit(self) -> None:
        """Write the step's rows, then commit everything the step did."""
        rows, self._rows = self._rows, []
        messages, self._messages = self._messages, []
        entries, self._entries = self._entries, []
        changed = [(i, e.row()) for i, (e, was) in self._written.items() if e.row() != was]
        if rows or messages or entries or changed:
            conn = await self.session.connection()
            if messages:
                await conn.execute(INSERT_MESSAGES, messages)
            if entries:
                stored = [e.row() for e in entries]
                ids = (await conn.execute(INSERT_AUDIT, [_sql(r) for r in stored])).scalars()
                self._written.update(zip(ids, zip(entries, stored, strict=True), strict=True))
            for id_, now in changed:
                await conn.execute(update(AUDIT).where(AUDIT.c.id == id_).values(_sql(now)))
                self._written[id_] = (self._written[id_][0], now)
            if rows:
                await conn.execute(INSERT_EVENTS, rows)
        await self.session.commit()
        if rows and self.on_stored is not None:
            self.on_stored(self.conversation_id, rows)

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
        """The step's audit row, written at `commit`; the caller may complete it until then."""
        entry = AuditEntry(self.conversation_id, self.turn, step, raw, **fields)
        self._entries.append(entry)
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

    async def decide(self, confirmation_id: str, approve: bool, now: datetime) -> bool:
        """Approve or cancel a pending, unexpired confirmation; False if it is not one."""
        status = ConfirmationStatus.APPROVED if approve else ConfirmationStatus.CANCELLED
        result = await self.session.execute(
            update(Confirmation)
            .where(
                Confirmation.id == confirmation_id,
                Confirmation.conversation_id == self.conversation_id,
                Confirmation.status == ConfirmationStatus.PENDING,
                Confirmation.expires_at > now,
            )
            .values(status=status, decided_at=now)
        )
        return _rowcount(result) == 1

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


def _rowcount(result: Any) -> int:
    return int(result.rowcount)
