"""Conversation state: what the guard and the prompt know, rebuilt from the database.

Any process can continue any conversation: nothing lives in memory between turns. Within a
turn the loop keeps the state up to date as steps run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, ColumnElement, Label, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from db import (
    ActionLog,
    Confirmation,
    ConfirmationStatus,
    Conversation,
    Customer,
    Event,
    Message,
    Order,
    Role,
)
from shopbot.events import Citation
from shopbot.models.base import KnownArgs
from shopbot.redact import EMAIL
from tools.base import StateView, ToolSpec, fold
from tools.desks import DESKS
from tools.facts import (
    OrderFacts,
    ReturnFacts,
    load_order_facts,
    load_orders,
    load_return_facts,
    named_lines,
)

LIVE_CONFIRMATIONS = (ConfirmationStatus.PENDING, ConfirmationStatus.APPROVED)
_ORDER_ID = re.compile(r"(?<![\w])(#?(?:[0-9]{6}|W[0-9]{7}))(?![\w])")


@dataclass(frozen=True)
class LiveConfirmation:
    """A confirmation the customer was asked for (pending) or has just given (approved)."""

    id: str
    tool: str
    arguments: dict[str, object]
    digest: str
    summary: str
    status: ConfirmationStatus
    expires_at: datetime

    @classmethod
    def of(cls, row: Confirmation) -> LiveConfirmation:
        return cls(row.id, row.tool, row.args, row.digest, row.summary, row.status, row.expires_at)


@dataclass(frozen=True)
class HistoryLine:
    role: Role
    text: str


@dataclass
class ConversationState:
    conversation_id: str
    now: datetime
    turn: int = 0
    last_seq: int = 0
    """The number of the conversation's last stored event when the state was loaded."""
    customer_id: str | None = None
    customer_name: str | None = None
    proven_by: str | None = None
    failed_verifications: int = 0
    confirmation: LiveConfirmation | None = None
    customer_texts: list[str] = field(default_factory=list[str])
    history: list[HistoryLine] = field(default_factory=list[HistoryLine])
    retrieved: dict[str, Citation] = field(default_factory=dict[str, Citation])
    """Policy anchors retrieved in this turn: a reply may cite only these."""
    done: set[str] = field(default_factory=set[str])
    """Digests of the tool actions run in this turn: running one again repeats its result."""
    sources: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    """The policy sections retrieved in this turn, as the tool returned them."""
    orders: dict[str, OrderFacts] = field(default_factory=dict[str, OrderFacts])
    """Facts of the orders the current step touches."""
    order_rows: list[Order] = field(default_factory=list[Order])
    """Their rows, held for the step: the session keeps only rows someone holds, and the
    tool that runs next asks for the same order (and its lines) without another query."""
    returns: dict[int, ReturnFacts] = field(default_factory=dict[int, ReturnFacts])
    """Facts of the returns the current step touches."""
    rule_facts: Any = None
    """What the current step's tool loaded for its rule (`ToolSpec.facts`); None without one."""
    own_orders: dict[str, OrderFacts] = field(default_factory=dict[str, OrderFacts])
    """The verified customer's orders that the customer wrote the numbers of."""
    looked_for: set[str] = field(default_factory=set[str])
    """Order numbers already looked for in `own_orders` (found or not)."""
    observed: list[tuple[str, dict[str, Any]]] = field(
        default_factory=list[tuple[str, dict[str, Any]]]
    )
    """What each tool returned in this turn (tool, observation), oldest first, errors left out."""

    @property
    def proven(self) -> bool:
        return self.customer_id is not None

    def reports(self, tool: str) -> list[dict[str, Any]]:
        """What `tool` returned in this turn, oldest first (its errors left out)."""
        return [data for name, data in self.observed if name == tool]

    def customer_wrote_email(self, email: str) -> bool:
        """The customer typed exactly this address (case and surrounding space ignored)."""
        wanted = email.strip().casefold()
        return any(found.casefold() == wanted for found in self.mentioned_emails)

    def customer_wrote(self, *phrases: str) -> bool:
        """Each phrase is in what the customer wrote, as whole words (case, accents ignored)."""
        text = " ".join(fold(t) for t in self.customer_texts)
        return all(
            p.strip() and re.search(rf"(?<!\w){re.escape(fold(p))}(?!\w)", text) for p in phrases
        )

    def customer_wrote_order(self, order_id: str) -> bool:
        return order_id.lstrip("#") in {o.lstrip("#") for o in self.mentioned_order_ids}

    @property
    def mentioned_order_ids(self) -> list[str]:
        found = (m.group(1) for text in self.customer_texts for m in _ORDER_ID.finditer(text))
        return list(dict.fromkeys(found))

    @property
    def mentioned_emails(self) -> list[str]:
        found = (m.group(0) for text in self.customer_texts for m in EMAIL.finditer(text))
        return list(dict.fromkeys(found))

    def named_items(self) -> dict[str, list[int]]:
        """The lines of the customer's own orders that their words name, by order number."""
        found = {oid: named_lines(self.customer_texts, o) for oid, o in self.own_orders.items()}
        return {oid: lines for oid, lines in found.items() if lines}


def failed_check(tools: Iterable[ToolSpec]) -> ColumnElement[bool]:
    """An audit row of a failed identity check by one of `tools`, as each one's `Proof`
    reads its observation: its success field false, or (without one) an error."""
    by_field: dict[str | None, list[str]] = {}
    for spec in tools:
        if spec.proves is not None:
            by_field.setdefault(spec.proves.succeeded, []).append(spec.name)
    failed = [
        (ActionLog.tool.in_(names) if len(names) > 1 else ActionLog.tool == names[0])
        & (
            ActionLog.observation[succeeded].as_boolean().is_(False)
            if succeeded is not None
            else ActionLog.observation["error"].as_string().is_not(None)
        )
        for succeeded, names in by_field.items()
    ]
    return (ActionLog.verdict == "allow") & or_(*failed)


def known_args(
    tools: Mapping[str, ToolSpec], allowed: Iterable[str], state: StateView
) -> dict[str, KnownArgs]:
    """What the state knows of the allowed tools' arguments, as each tool says
    (`ToolSpec.known`; an identity check's are binding): what a backend restricts them to."""
    return {
        spec.name: KnownArgs(spec.known(state), binding=spec.proves is not None)
        for spec in (tools.get(name) for name in sorted(allowed))
        if spec is not None and spec.known is not None
    }


FAILED_CHECK = failed_check({t.name: t for desk in DESKS.values() for t in desk.tools}.values())
"""An audit row of a failed identity check on any desk: the guard counts them (and
`shopbot purge`)."""


def state_columns() -> list[Label[Any]]:
    """What a turn needs to know of a conversation besides its row and messages, as scalar
    subqueries correlated to `conversations`: they go in the statement that takes the turn's
    lease (`shopbot.turns`), or in `_STATE`."""
    failed = (
        select(func.count())
        .select_from(ActionLog)
        .where(ActionLog.conversation_id == Conversation.id, FAILED_CHECK)
        .scalar_subquery()
    )
    last_seq = (
        select(func.max(Event.seq)).where(Event.conversation_id == Conversation.id)
    ).scalar_subquery()
    name = (
        select(Customer.first_name).where(Customer.id == Conversation.customer_id).scalar_subquery()
    )
    live_id = (
        select(Confirmation.id)
        .where(
            Confirmation.conversation_id == Conversation.id,
            Confirmation.status.in_(LIVE_CONFIRMATIONS),
        )
        .order_by(Confirmation.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return [
        failed.label("failed_checks"),
        last_seq.label("last_seq"),
        name.label("customer_name"),
        live_id.label("live_confirmation_id"),
    ]


def messages_column() -> Label[Any]:
    """The conversation's messages as one JSON array of [role, text], oldest first, correlated
    to `conversations`: PostgreSQL's (`json_agg`), so its turn reads them with its lease."""
    pairs = func.json_build_array(Message.role, Message.content)
    return (
        select(func.json_agg(aggregate_order_by(pairs, Message.id), type_=JSON))
        .where(Message.conversation_id == Conversation.id)
        .scalar_subquery()
        .label("messages")
    )


@dataclass(frozen=True)
class StoredFacts:
    """`state_columns` as read (and the messages, where the same statement read them)."""

    failed_checks: int
    last_seq: int
    customer_name: str | None
    live_confirmation_id: str | None
    messages: list[tuple[Role, str]] | None = None

    @classmethod
    def of(cls, row: Any, with_messages: bool = False) -> StoredFacts:
        messages = [(Role(r), t) for r, t in row.messages or ()] if with_messages else None
        return cls(
            row.failed_checks or 0,
            row.last_seq or 0,
            row.customer_name,
            row.live_confirmation_id,
            messages,
        )


# Built once: a turn starts with these, and building (and keying) them costs about a
# millisecond each time.
_STATE = select(*state_columns()).where(Conversation.id == bindparam("cid"))
_MESSAGES = (
    select(Message.role, Message.content)
    .where(Message.conversation_id == bindparam("cid"))
    .order_by(Message.id)
)


async def load_state(
    session: AsyncSession,
    conversation: Conversation,
    now: datetime,
    *,
    history: int = 12,
    facts: StoredFacts | None = None,
) -> ConversationState:
    """Rebuild a conversation's state: identity, failed checks, live confirmation, messages.

    `facts` are what the turn's lease brought along; without them one statement reads them.
    The messages are one more (unless the lease brought them too), and a live confirmation's
    row another."""
    cid = conversation.id
    if facts is None:
        facts = StoredFacts.of((await session.execute(_STATE, {"cid": cid})).one())
    live = (
        await session.get(Confirmation, facts.live_confirmation_id)
        if facts.live_confirmation_id
        else None
    )
    messages = facts.messages
    if messages is None:
        messages = [(m.role, m.content) for m in await session.execute(_MESSAGES, {"cid": cid})]
    return ConversationState(
        conversation_id=cid,
        now=now,
        turn=conversation.turns,
        last_seq=facts.last_seq,
        customer_id=conversation.customer_id,
        customer_name=facts.customer_name,
        proven_by=conversation.proven_by,
        failed_verifications=facts.failed_checks,
        confirmation=LiveConfirmation.of(live) if live and live.expires_at > now else None,
        customer_texts=[text for role, text in messages if role is Role.CUSTOMER],
        history=[HistoryLine(role, text) for role, text in messages[-history:]],
    )


async def load_own_orders(session: AsyncSession, state: ConversationState) -> None:
    """Once the customer is verified, load the orders of theirs whose numbers they wrote: the
    prompt then says which lines their words name ("the jeans" is line 1), and no lookup is
    needed to know it. Each number is looked for once a turn; others' orders are left out."""
    if not state.proven:
        return
    wanted = [o.lstrip("#") for o in state.mentioned_order_ids]
    missing = [o for o in wanted if o not in state.looked_for]
    if not missing:
        return
    state.looked_for.update(missing)
    found = await load_order_facts(session, missing)
    state.own_orders.update(
        (oid, facts) for oid, facts in found.items() if facts.customer_id == state.customer_id
    )


async def load_step_facts(
    session: AsyncSession, state: ConversationState, args: BaseModel, spec: ToolSpec | None
) -> None:
    """Load into `state` the facts the guard needs for an action of tool `spec` with `args`:
    the orders and returns it names and what the tool's rule decides on (`ToolSpec.facts`)."""
    order_id, return_id = getattr(args, "order_id", None), getattr(args, "return_id", None)
    loaded = await load_orders(session, [order_id] if isinstance(order_id, str) else [])
    state.orders = {order.id: OrderFacts.of(order) for order in loaded}
    state.order_rows = loaded
    state.returns = await load_return_facts(
        session, [return_id] if isinstance(return_id, int) else []
    )
    facts = spec.facts if spec is not None else None
    state.rule_facts = await facts(session, state.customer_id, args) if facts else None
