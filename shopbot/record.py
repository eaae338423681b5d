"""Writes what a turn does: numbered events, the audit log, messages, confirmations."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import ActionLog, Confirmation, ConfirmationStatus, Event, Message, Role, utcnow
from shopbot.actions import Action
from shopbot.events import Citation
from shopbot.events import Event as TurnEvent
from shopbot.state import LIVE_CONFIRMATIONS


class Recorder:
    """Adds rows to the turn's session; the loop decides when to commit."""

    def __init__(self, session: AsyncSession, conversation_id: str, turn: int, seq: int) -> None:
        self.session = session
        self.conversation_id = conversation_id
        self.turn = turn
        self.seq = seq
        self.pending: list[TurnEvent] = []
        self._rows: list[dict[str, Any]] = []
        self._entries: list[ActionLog] = []

    @classmethod
    async def open(cls, session: AsyncSession, conversation_id: str, turn: int) -> Recorder:
        last = await session.scalar(
            select(func.max(Event.seq)).where(Event.conversation_id == conversation_id)
        )
        return cls(session, conversation_id, turn, (last or 0) + 1)

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
        """Write the step's events in one statement, then commit everything the step did."""
        if self._entries:
            self.session.add_all(self._entries)
            self._entries = []
        if self._rows:
            # A Core executemany: the ORM's unit of work costs milliseconds a step here.
            await self.session.execute(insert(Event), self._rows)
            self._rows = []
        await self.session.commit()

    def drain(self) -> list[TurnEvent]:
        events, self.pending = self.pending, []
        return events

    def message(self, role: Role, text: str, citations: list[Citation] | None = None) -> None:
        self.session.add(
            Message(
                conversation_id=self.conversation_id,
                turn=self.turn,
                role=role,
                content=text,
                citations=[c.model_dump() for c in citations or []],
            )
        )

    def log(self, step: int, raw: str, **fields: Any) -> ActionLog:
        """The step's audit row; added to the session at `commit`, once it is complete."""
        row = ActionLog(
            conversation_id=self.conversation_id,
            turn=self.turn,
            step=step,
            raw_output=raw,
            **fields,
        )
        self._entries.append(row)
        return row

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
