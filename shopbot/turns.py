"""One turn at a time per conversation, across processes: a lease in the conversation row.

A turn takes the lease with one guarded UPDATE: it succeeds only when nobody holds it or the
holder's lease ran out, and the conversation is within its message rate; the same statement
counts the turn and returns the row and the turn's state facts. For a customer's message it
commits alone where the database's writer can (`db.pipeline`: on PostgreSQL, one round
trip); otherwise with the turn's first transaction. The turn gives the lease back in its last
commit, or in a transaction of its own when it stopped half-way. A worker that crashes
mid-turn blocks its conversation for at most the lease.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.dml import ReturningUpdate

from db import Base, Conversation, Message, Role
from db.pipeline import Update, writer_for
from shopbot.errors import ConversationBusy, ConversationNotFound, RateLimited
from shopbot.state import StoredFacts, messages_column, state_columns


@dataclass(frozen=True)
class MessageRate:
    """At most `limit` customer messages in any `window` in one conversation."""

    limit: int
    window: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class Lease:
    conversation: Conversation
    """Held by the session, as if loaded: its turn count already the new turn's."""
    owner: str
    facts: StoredFacts | None
    """The turn's state facts, where the same statement could read them."""


_TABLE = Base.metadata.tables[Conversation.__tablename__]


def _customer_messages(conversation_id: Any, since: Any) -> list[ColumnElement[bool]]:
    """The conversation's customer messages after `since`: what the message rate counts."""
    return [
        Message.conversation_id == conversation_id,
        Message.role == Role.CUSTOMER,
        Message.created_at > since,
    ]


_CUSTOMER_MESSAGES = (
    select(func.count())
    .where(*_customer_messages(Conversation.id, bindparam("since")))
    .scalar_subquery()
)


def _lease_statement(rated: bool, with_state: bool) -> ReturningUpdate[Any]:
    free = or_(
        Conversation.turn_lease_until.is_(None), Conversation.turn_lease_until < bindparam("at")
    )
    where = [Conversation.id == bindparam("cid"), free]
    if rated:
        where.append(bindparam("limit") > _CUSTOMER_MESSAGES)
    return (
        update(_TABLE)
        .where(*where)
        .values(
            turn_owner=bindparam("lease_owner"),
            turn_lease_until=bindparam("lease_until"),
            turns=Conversation.turns + 1,
            updated_at=bindparam("at"),
            title=case(
                (Conversation.title == "", bindparam("new_title")), else_=Conversation.title
            ),
        )
        .returning(*_TABLE.c, *((*state_columns(), messages_column()) if with_state else ()))
    )


# Built once: building and keying them costs more than running them. SQLite writes RETURNING
# without table names, which breaks the state's correlated subqueries: there, a statement of
# their own reads them (in process, where a statement costs little).
_LEASE = {
    (rated, with_state): _lease_statement(rated, with_state)
    for rated in (False, True)
    for with_state in (False, True)
}


async def take_lease(
    session: AsyncSession,
    conversation_id: str,
    now: datetime,
    lease_seconds: float,
    title: str | None = None,
    rate: MessageRate | None = None,
    *,
    owner: str | None = None,
    commit_alone: bool = False,
) -> Lease:
    """Take the conversation for one turn.

    One statement: the UPDATE that takes the lease also counts the turn, sets the `title` of
    a conversation without one, holds to `rate`, and returns the row with what the turn's
    state needs (`shopbot.state.state_columns`, and its messages) where the writer's
    RETURNING can read them (`Writer.returning_reads`: PostgreSQL). With `commit_alone`,
    where the writer can (PostgreSQL) and the caller has no transaction open, it commits at
    once, one round trip: a turn that fails before its first commit then stays counted, and
    must give the lease back (`owner`, chosen by the caller for that). Otherwise it is part
    of the caller's transaction, and the row lock stands in for the lease until the caller
    commits.

    The facts come from the statement's snapshot. They can be stale only if the UPDATE
    waited for the row lock of a turn whose lease ran out while it was still running; then
    this turn's first commit fails on the event numbers (unique per conversation) and the
    request is refused: nothing is stored twice.
    """
    owner = owner or str(uuid.uuid4())
    params: dict[str, Any] = {
        "cid": conversation_id,
        "at": now,
        "lease_owner": owner,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "new_title": title or "",
    }
    if rate is not None:
        params |= {"since": now - rate.window, "limit": rate.limit}
    writer = writer_for(session)
    with_state = writer.returning_reads
    statement = _LEASE[rate is not None, with_state]
    row = (await writer.execute(session, statement, params, alone=commit_alone)).one_or_none()
    if row is None:
        await _refused(session, conversation_id, now, rate)
    values = row._mapping  # pyright: ignore[reportPrivateUsage, reportOptionalMemberAccess]
    conversation = Conversation(**{column.key: values[column] for column in _TABLE.c})
    make_transient_to_detached(conversation)  # as if loaded: persistent and clean once added
    session.add(conversation)
    return Lease(
        conversation, owner, StoredFacts.of(row, with_messages=True) if with_state else None
    )


async def _refused(
    session: AsyncSession, conversation_id: str, now: datetime, rate: MessageRate | None
) -> NoReturn:
    """Why the lease was not taken: no such conversation, too many messages, or busy."""
    exists = select(Conversation.id).where(Conversation.id == conversation_id)
    if await session.scalar(exists) is None:
        raise ConversationNotFound(f"No conversation {conversation_id}.")
    if rate is not None:
        recent = _customer_messages(conversation_id, now - rate.window)
        count, oldest = (
            await session.execute(select(func.count(), func.min(Message.created_at)).where(*recent))
        ).one()
        if count >= rate.limit:
            wait = (oldest + rate.window - now if oldest else rate.window).total_seconds()
            raise RateLimited(
                f"At most {rate.limit} messages {_per(rate.window)} in one conversation; "
                "try again soon.",
                retry_after=wait,
            )
    raise ConversationBusy("ShopBot is still answering the previous message.")


def _per(window: timedelta) -> str:
    seconds = window.total_seconds()
    return "a minute" if seconds == 60 else f"in {seconds:g} seconds"


async def give_back(
    sessions: async_sessionmaker[AsyncSession], conversation_id: str, owner: str
) -> None:
    """Release in a transaction of its own: for a turn that stopped before its last commit."""
    async with sessions() as session:
        await release_lease(session, conversation_id, owner)
        await session.commit()


async def release_lease(session: AsyncSession, conversation_id: str, owner: str) -> None:
    """Give the conversation back, if `owner` still holds it (in the caller's transaction)."""
    await session.execute(_RELEASE, {"cid": conversation_id, "owner": owner})


_RELEASE = (
    update(Conversation)
    .where(Conversation.id == bindparam("cid"), Conversation.turn_owner == bindparam("owner"))
    .values(turn_owner=None, turn_lease_until=None)
)


def release(conversation_id: str, owner: str) -> Update:
    """The update that gives the conversation back, in a turn's last commit."""
    return Update(
        _TABLE,
        {"id": conversation_id, "turn_owner": owner},
        {"turn_owner": None, "turn_lease_until": None},
    )
