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
    text: str = Field(min_length=1, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
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
    role: Literal["customer", "assistant"]
    text: str
    turn: int
    seq: int
    citations: list[Citation] = Field(default_factory=list[Citation])


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


class Health(BaseModel):
    status: Literal["ok"]
