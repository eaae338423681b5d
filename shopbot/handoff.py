"""Human handoff: a staff member takes a conversation over, writes in it, hands it back.

    Handoff.take(id, who)         who holds it now, if nobody did and it is not closed
    Handoff.say(id, who, text)    a message to the customer, if who holds it
    Handoff.hand_back(id, who)    nobody holds it, if who did: ShopBot answers again

While a conversation is held (`Conversation.held_by`) the loop stores the customer's
messages and runs no model turn (`shopbot.loop`). The staff member's messages are `messages`
rows of role staff, so once ShopBot answers again it reads them in its history. Each action
is stored as a typed event with the staff member's name and id (`staff_joined`,
`staff_message`, `staff_left`): that is its audit record, and what both audiences stream
(the customer's with fixed fields: the name, the shop's name, the text).

Each action writes as a turn does, so event numbers never clash: first a conditional UPDATE
takes the conversation's turn lease, only while no turn holds it and only when the action is
allowed (taking: nobody holds it; writing or handing back: this staff member holds it; never
a closed conversation), committed alone. Then one commit stores the change, its events and
message, and gives the lease back (`shopbot.record.Recorder`, announced to the other workers
as a turn's commits are). Of two staff members taking over at once one UPDATE wins; the
other waits out the lease, finds the conversation held, and is told by whom. A refused
action raises a `HandoffRefused` and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import Base, Confirmation, ConfirmationStatus, Conversation, ConversationStatus, Role, Staff
from db import Event as EventRow
from db.pipeline import Update
from shopbot.errors import (
    AlreadyHeld,
    ConversationBusy,
    ConversationClosed,
    ConversationNotFound,
    NotHolder,
)
from shopbot.events import ConfirmationWithdrawn, StaffJoined, StaffLeft, StaffMessage
from shopbot.loop import Agent
from shopbot.record import Recorder
from shopbot.turns import give_back

__all__ = ["Handoff", "StaffMember"]

log = logging.getLogger(__name__)

_TABLE = Base.metadata.tables[Conversation.__tablename__]
LEASE_SECONDS = 30.0
"""The longest a staff action holds the conversation's lease (it needs milliseconds)."""
WAIT_SECONDS = 5.0
"""How long an action waits for a running turn (or another staff action) to finish."""


@dataclass(frozen=True)
class Writing:
    """A staff action under way: its recorder, and the lease it holds."""

    rec: Recorder
    owner: str

    def change(self, values: dict[str, Any]) -> None:
        """The action's change of the row, with the lease given back, in its one commit."""
        release = {"turn_owner": None, "turn_lease_until": None}
        match = {"id": self.rec.conversation_id, "turn_owner": self.owner}
        self.rec.also(Update(_TABLE, match, values | release))


@dataclass(frozen=True)
class StaffMember:
    """Who acts: a signed-in staff member's account id and display name."""

    id: int
    name: str


class Handoff:
    """Staff members' actions on a conversation, written as the agent writes its turns."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def take(self, conversation_id: str, who: StaffMember) -> None:
        """Take the conversation over; a pending confirmation is withdrawn (the person now
        decides what happens). `AlreadyHeld` when someone (maybe `who`) holds it."""
        async with self.writing(conversation_id, who, taking=True) as writing:
            rec, now = writing.rec, self.agent.clock()
            pending = await rec.session.scalars(
                select(Confirmation.id).where(
                    Confirmation.conversation_id == conversation_id,
                    Confirmation.status == ConfirmationStatus.PENDING,
                )
            )
            for confirmation_id in pending.all():
                if await rec.withdraw(confirmation_id, now):
                    rec.emit(ConfirmationWithdrawn(confirmation_id=confirmation_id))
            rec.emit(StaffJoined(name=who.name, shop=self._shop, staff_id=who.id))
            writing.change({"held_by": who.id, "held_since": now, "updated_at": now})
        log.info("staff %s took over conversation %s", who.name, conversation_id)

    async def say(self, conversation_id: str, who: StaffMember, text: str) -> None:
        """Write to the customer, as `who`, in a conversation they hold (`NotHolder` else)."""
        text = text.strip()
        if not text or "\x00" in text:
            raise ValueError("A message needs some visible text (and no NUL character).")
        if len(text) > self.agent.settings.max_message_chars:
            raise ValueError(
                f"Messages are limited to {self.agent.settings.max_message_chars} characters."
            )
        async with self.writing(conversation_id, who, taking=False) as writing:
            writing.rec.message(Role.STAFF, text)
            writing.rec.emit(
                StaffMessage(name=who.name, shop=self._shop, text=text, staff_id=who.id)
            )
            writing.change({"updated_at": self.agent.clock()})
        log.info("staff %s wrote in conversation %s", who.name, conversation_id)

    async def hand_back(self, conversation_id: str, who: StaffMember) -> None:
        """Give the conversation back to ShopBot; an escalation is settled by the person."""
        async with self.writing(conversation_id, who, taking=False) as writing:
            writing.rec.emit(StaffLeft(name=who.name, shop=self._shop, staff_id=who.id))
            writing.change(
                {
                    "held_by": None,
                    "held_since": None,
                    "status": ConversationStatus.OPEN.value,
                    "updated_at": self.agent.clock(),
                },
            )
        log.info("staff %s handed conversation %s back", who.name, conversation_id)

    @property
    def _shop(self) -> str:
        return self.agent.settings.shop_name

    @asynccontextmanager
    async def writing(
        self, conversation_id: str, who: StaffMember, *, taking: bool
    ) -> AsyncGenerator[Writing]:
        """The lease taken for `who`'s action, and a recorder numbering after every event."""
        owner = str(uuid.uuid4())
        turns = await self._lease(conversation_id, who, owner, taking=taking)
        agent, committed = self.agent, False
        try:
            async with agent.sessions() as session:
                last_seq = await session.scalar(
                    select(func.max(EventRow.seq)).where(
                        EventRow.conversation_id == conversation_id
                    )
                )
                rec = Recorder(
                    session,
                    conversation_id,
                    turns,
                    (last_seq or 0) + 1,
                    agent.pii,
                    agent.on_stored,
                    agent.announce,
                )
                yield Writing(rec, owner)
                await rec.commit()
                committed = True
        finally:
            if not committed:
                await give_back(agent.sessions, conversation_id, owner)

    async def _lease(
        self, conversation_id: str, who: StaffMember, owner: str, *, taking: bool
    ) -> int:
        """Take the lease for the action, or raise why it is refused; the turn count."""
        delay, waited = 0.02, 0.0
        while True:
            now = self.agent.clock()
            free = or_(Conversation.turn_lease_until.is_(None), Conversation.turn_lease_until < now)
            holder: ColumnElement[bool] = (
                Conversation.held_by.is_(None) if taking else Conversation.held_by == who.id
            )
            statement = (
                update(Conversation)
                .where(
                    Conversation.id == conversation_id,
                    Conversation.status != ConversationStatus.CLOSED,
                    holder,
                    free,
                )
                .values(turn_owner=owner, turn_lease_until=now + timedelta(seconds=LEASE_SECONDS))
                .returning(Conversation.turns)
            )
            async with self.agent.sessions() as session:
                turns = (await session.execute(statement)).scalar_one_or_none()
                await session.commit()
                if turns is not None:
                    return int(turns)
                await self._refused(session, conversation_id, who, taking=taking)
            # Only the lease was in the way: a turn (or another staff action) is writing.
            if waited >= WAIT_SECONDS:
                raise ConversationBusy(
                    "ShopBot is still answering the customer's last message; try again in a moment."
                )
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)

    async def _refused(
        self, session: AsyncSession, conversation_id: str, who: StaffMember, *, taking: bool
    ) -> None:
        """Raise why the action is refused, unless only the lease was in the way."""
        row = (
            await session.execute(
                select(Conversation.status, Conversation.held_by, Staff.name)
                .outerjoin(Staff, Staff.id == Conversation.held_by)
                .where(Conversation.id == conversation_id)
            )
        ).first()
        if row is None:
            raise ConversationNotFound(f"No conversation {conversation_id}.")
        if row.status == ConversationStatus.CLOSED:
            raise ConversationClosed("This conversation is closed; nothing was sent or changed.")
        if taking and row.held_by is not None:
            holder = str(row.name)
            if row.held_by == who.id:
                raise AlreadyHeld("You have already taken this conversation over.", holder=holder)
            raise AlreadyHeld(
                f"{holder} has already taken this conversation over; nothing was changed.",
                holder=holder,
            )
        if not taking and row.held_by != who.id:
            held = f"{row.name} holds it" if row.held_by is not None else "ShopBot holds it"
            raise NotHolder(
                f"You do not hold this conversation ({held}): take it over first. "
                "Nothing was sent or changed."
            )
