"""What a turn yields, as typed events; each is also stored, numbered, in the `events` table."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class CustomerMessage(_Event):
    kind: Literal["customer_message"] = "customer_message"
    text: str


class Thought(_Event):
    kind: Literal["thought"] = "thought"
    step: int
    text: str


class ActionProposed(_Event):
    kind: Literal["action"] = "action"
    step: int
    tool: str
    args: dict[str, Any]


class ParseFailed(_Event):
    kind: Literal["parse_failed"] = "parse_failed"
    step: int
    error: str


class VerdictGiven(_Event):
    kind: Literal["verdict"] = "verdict"
    step: int
    tool: str
    decision: Literal["allow", "deny", "confirm"]
    reason: str


class ToolStarted(_Event):
    """An allowed tool runs: what the customer reads meanwhile (the tool's `activity`)."""

    kind: Literal["working"] = "working"
    step: int
    tool: str
    text: str


class ObservationMade(_Event):
    kind: Literal["observation"] = "observation"
    step: int
    tool: str
    data: dict[str, Any]
    error: bool = False
    ms: float = 0.0


class ReplyChunk(_Event):
    """A piece of a reply while the model writes it; live only, never stored.

    The `Reply` that follows holds the whole text. When the step turns out not to be a
    reply (`parse_failed`, or a `verdict` that denies it), the pieces were a draft to drop.
    """

    kind: Literal["reply_chunk"] = "reply_chunk"
    step: int = 0
    text: str


class Citation(BaseModel):
    model_config = ConfigDict(frozen=True)
    anchor: str
    document: str
    section: str


class Reply(_Event):
    kind: Literal["reply"] = "reply"
    text: str
    citations: list[Citation] = Field(default_factory=list[Citation])


class ConfirmationRequested(_Event):
    kind: Literal["confirmation_requested"] = "confirmation_requested"
    confirmation_id: str
    tool: str
    args: dict[str, Any]
    summary: str
    expires_at: datetime


class ConfirmationDecided(_Event):
    kind: Literal["confirmation_decided"] = "confirmation_decided"
    confirmation_id: str
    approved: bool


class ConfirmationWithdrawn(_Event):
    """A pending request ended unanswered: the customer wrote something other than a yes or
    a no, so they answered it in words (`shopbot.loop`); approving it later changes nothing."""

    kind: Literal["confirmation_withdrawn"] = "confirmation_withdrawn"
    confirmation_id: str


class Escalated(_Event):
    kind: Literal["escalated"] = "escalated"
    reason: str


class StaffJoined(_Event):
    """A staff member took the conversation over: ShopBot stops answering until they leave."""

    kind: Literal["staff_joined"] = "staff_joined"
    name: str
    """The staff member's display name, as the customer reads it."""
    shop: str
    """The shop's name (`Settings.shop_name`): "Sam from Harbor & Pine"."""
    staff_id: int
    """Who it was, for the audit trail (never shown to the customer)."""


class StaffMessage(_Event):
    """What the staff member holding the conversation wrote to the customer."""

    kind: Literal["staff_message"] = "staff_message"
    name: str
    shop: str
    text: str
    staff_id: int


class StaffLeft(_Event):
    """The staff member handed the conversation back: ShopBot answers again."""

    kind: Literal["staff_left"] = "staff_left"
    name: str
    shop: str
    staff_id: int


class StaffToolRan(_Event):
    """A staff member ran one of the agent's tools (`shopbot.staff_tools`): for staff only."""

    kind: Literal["staff_tool"] = "staff_tool"
    name: str
    staff_id: int
    tool: str
    args: dict[str, Any]
    decision: Literal["allow", "override"]
    """`override`: the guard denied it and the staff member overrode the rule, with a reason."""
    reason: str
    data: dict[str, Any]
    error: bool = False


class TurnEnded(_Event):
    kind: Literal["turn_ended"] = "turn_ended"
    turn: int
    steps: int
    """The model steps the turn took, the final reply included: one audit row each."""
    ms: float


Event = Annotated[
    CustomerMessage
    | Thought
    | ActionProposed
    | ParseFailed
    | VerdictGiven
    | ToolStarted
    | ObservationMade
    | ReplyChunk
    | Reply
    | ConfirmationRequested
    | ConfirmationDecided
    | ConfirmationWithdrawn
    | Escalated
    | StaffJoined
    | StaffMessage
    | StaffLeft
    | StaffToolRan
    | TurnEnded,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

__all__ = [
    "EVENT_ADAPTER",
    "ActionProposed",
    "Citation",
    "ConfirmationDecided",
    "ConfirmationRequested",
    "ConfirmationWithdrawn",
    "CustomerMessage",
    "Escalated",
    "Event",
    "ObservationMade",
    "ParseFailed",
    "Reply",
    "ReplyChunk",
    "StaffJoined",
    "StaffLeft",
    "StaffMessage",
    "StaffToolRan",
    "Thought",
    "ToolStarted",
    "TurnEnded",
    "VerdictGiven",
]
