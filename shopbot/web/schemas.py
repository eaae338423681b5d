"""What the API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shopbot.events import Citation

NO_NUL = r"^[^\x00]*$"
"""Every text the API takes: no NUL character. No database stores one (PostgreSQL refuses it
in text, and the loop would refuse it after the request was accepted), so it is a 422
`validation_error` at the schema, before anything is stored, and the OpenAPI document says
so. Path and query parameters use it too (`shopbot.web.api`, `shopbot.web.stream`)."""
VISIBLE_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"
"""A customer's message: `NO_NUL`, with at least one visible character."""
IN_WORDS = {
    NO_NUL: "must not contain a NUL character",
    VISIBLE_TEXT: "must contain a visible character and no NUL character",
}
"""What a text refused by one of these patterns is told, instead of the pattern."""


class _Request(BaseModel):
    """A request body: exactly the document's fields and types (strict: no `0` for `false`,
    no `"yes"` for `true`), else 422 `validation_error`."""

    model_config = ConfigDict(extra="forbid", strict=True)


class NewConversation(_Request):
    customer_token: str | None = Field(
        default=None, min_length=3, max_length=2048, pattern=r"^[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+$"
    )
    """The shop site's signed identity of a signed-in customer (`shopbot.identity`): the
    conversation starts with the customer proven."""


class ConversationCreated(BaseModel):
    conversation_id: str
    token: str
    """Send as `Authorization: Bearer <token>` on this conversation's routes."""
    token_expires_at: datetime
    verified: bool
    """True when a signed customer identity proved who the customer is."""


class CustomerMessageIn(_Request):
    text: str = Field(min_length=1, pattern=VISIBLE_TEXT)
    """What the customer wrote: at least one visible character and no NUL (`NO_NUL`), else
    422. The visible one must not be a NUL either: NUL is not white space, so a pattern that
    only asked for some non-space let "hi", NUL, "there" through to the loop. Longer than
    `max_message_chars` is refused with 413."""


class ConfirmationAnswerIn(_Request):
    approve: bool
    """True runs the pending action; False cancels it."""


class TurnAccepted(BaseModel):
    """The turn has started; its events follow on the stream."""

    conversation_id: str
    turn: int
    first_seq: int
    """The seq of the turn's first event: stream with `after=first_seq - 1` to see it all."""


class HistoryMessage(BaseModel):
    role: Literal["customer", "assistant", "staff"]
    """`staff`: a staff member who took the conversation over wrote it."""
    text: str
    turn: int
    seq: int
    citations: list[Citation] = Field(default_factory=list[Citation])
    name: str | None = None
    """For `staff`: who wrote it, as the customer reads it."""
    shop: str | None = None
    """For `staff`: the shop's name ("Sam, Harbor & Pine")."""


class PendingConfirmation(BaseModel):
    confirmation_id: str
    tool: str
    args: dict[str, Any]
    summary: str
    expires_at: datetime


class ConversationView(BaseModel):
    """A conversation as its customer sees it, up to `last_seq`."""

    conversation_id: str
    status: str
    verified: bool
    turns: int
    busy: bool
    """A turn is running now."""
    last_seq: int
    """Resume the stream after this seq to see everything that follows."""
    messages: list[HistoryMessage]
    pending_confirmation: PendingConfirmation | None
    person: str | None = None
    """The person of the shop who has taken the conversation over ("Sam from Harbor &
    Pine"), answering instead of ShopBot; None: ShopBot answers."""


class Health(BaseModel):
    status: Literal["ok"]


class _Streamed(BaseModel):
    """An event of a customer's stream: a stored event, as the customer may see it."""

    model_config = ConfigDict(extra="forbid")
    seq: int
    """Its number in the conversation: the SSE `id`, what `Last-Event-ID` resumes after."""
    turn: int


class CustomerMessageSeen(_Streamed):
    """What the customer wrote: a turn starts with it (or with `confirmation_decided`)."""

    kind: Literal["customer_message"]
    text: str


class ReplyChunkSeen(BaseModel):
    """A piece of a reply while it is written: live only, with no seq (and no SSE `id`)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["reply_chunk"]
    step: int
    text: str


class DraftDropped(_Streamed):
    """The pieces of `step` were not a reply after all: remove them; another step follows."""

    kind: Literal["draft_dropped"]
    step: int


class WorkingSeen(_Streamed):
    """What ShopBot is doing in `step` ("Checking your order…"): a status, until the next."""

    kind: Literal["working"]
    step: int
    text: str


class ReplySeen(_Streamed):
    """ShopBot's reply, whole: it replaces the pieces shown while it was written."""

    kind: Literal["reply"]
    text: str
    citations: list[Citation]


class ConfirmationRequestedSeen(_Streamed):
    """An action waits for the customer's Confirm or Cancel (`POST .../confirmations/{id}`)."""

    kind: Literal["confirmation_requested"]
    confirmation_id: str
    tool: str
    args: dict[str, Any]
    summary: str
    expires_at: datetime


class ConfirmationDecidedSeen(_Streamed):
    """The customer confirmed or cancelled: a turn starts with it."""

    kind: Literal["confirmation_decided"]
    confirmation_id: str
    approved: bool


class ConfirmationWithdrawnSeen(_Streamed):
    """The customer wrote instead of answering: the request is closed and runs nothing."""

    kind: Literal["confirmation_withdrawn"]
    confirmation_id: str


class EscalatedSeen(_Streamed):
    """ShopBot handed the conversation to a colleague (its reply says when to expect them)."""

    kind: Literal["escalated"]


class StaffJoinedSeen(_Streamed):
    """A person of the shop took the conversation over: they answer now, not ShopBot."""

    kind: Literal["staff_joined"]
    name: str
    shop: str


class StaffMessageSeen(_Streamed):
    """What the person who took the conversation over wrote."""

    kind: Literal["staff_message"]
    name: str
    shop: str
    text: str


class StaffLeftSeen(_Streamed):
    """The person handed the conversation back: ShopBot answers again."""

    kind: Literal["staff_left"]
    name: str
    shop: str


class TurnEndedSeen(_Streamed):
    """ShopBot is done with the turn: the customer may write again."""

    kind: Literal["turn_ended"]


CUSTOMER_STREAM: tuple[type[BaseModel], ...] = (
    CustomerMessageSeen,
    ReplyChunkSeen,
    DraftDropped,
    WorkingSeen,
    ReplySeen,
    ConfirmationRequestedSeen,
    ConfirmationDecidedSeen,
    ConfirmationWithdrawnSeen,
    EscalatedSeen,
    StaffJoinedSeen,
    StaffMessageSeen,
    StaffLeftSeen,
    TurnEndedSeen,
)
"""Everything a customer's stream carries, one model per event kind."""


class AuditStep(BaseModel):
    """One model step of the audit log (`db.ActionLog`): for staff only."""

    turn: int
    step: int
    raw_output: str
    """What the model wrote, with its email addresses masked (`shopbot.pii`)."""
    thought: str
    tool: str | None
    args: dict[str, Any] | None
    parse_error: str | None
    verdict: str | None
    reason: str | None
    observation: dict[str, Any] | None
    flags: list[str]
    model_ms: float
    guard_ms: float
    tool_ms: float
    created_at: datetime


class StaffConversationView(BaseModel):
    """A conversation as the shop's staff see it: every stored event and every step."""

    conversation_id: str
    status: str
    customer_id: str | None
    """The proven customer; None until they proved who they are."""
    turns: int
    busy: bool
    last_seq: int
    events: list[dict[str, Any]]
    """Every stored event in order, as the staff stream sends it: `{seq, turn, kind, ...}`."""
    steps: list[AuditStep]
