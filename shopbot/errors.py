"""ShopBot's exceptions, in one tree.

    ShopBotError
    ├── ConfigError          a developer or operator mistake: bad settings, missing model file
    ├── ModelError           the model backend failed (unreachable, rejected key, bad response)
    │   └── ScriptError      the scripted model ran out of outputs or has some left over
    ├── ToolError            raised by a tool handler; the model sees it as an observation
    │   ├── ToolRetry        fix the arguments and try again (unknown order, bad item id)
    │   └── ToolFailure      the tool cannot do this; change course (carrier down)
    ├── StaffAccountError    a staff account cannot be added or changed so (name taken, weak
    │                        password, no such account)
    └── ConversationError    the conversation cannot take this input (a NUL in a message)
        ├── MessageTooLong   the message is over `Settings.max_message_chars`
        ├── ConversationNotFound  there is no such conversation
        ├── ConversationBusy another turn of this conversation is running
        ├── RateLimited      too many messages in a conversation; try again later
        ├── NoPendingConfirmation
        │   └── WithdrawnConfirmation  the customer wrote instead of answering it
        └── HandoffRefused   a staff member cannot take, write in or hand back this
            │                conversation now (`shopbot.handoff`)
            ├── AlreadyHeld  another staff member has taken it over
            ├── NotHolder    the staff member does not hold it (never took it, or handed it back)
            └── ConversationClosed  it is closed: nobody writes in it any more

A model's unparsable output is not an exception: `shopbot.actions.ActionSchema.parse` returns
a `ParseFailure` value that goes back to the model as an observation.
"""

from __future__ import annotations


class ShopBotError(Exception):
    """Base of every error ShopBot raises on purpose."""


class ConfigError(ShopBotError):
    """Settings or environment are wrong; the message is one line a user can act on."""


class ModelError(ShopBotError):
    """The chat model backend failed."""


class ScriptError(ModelError):
    """The scripted model's script does not match the conversation."""


class ToolError(ShopBotError):
    """A tool could not do what was asked; the message is shown to the model."""

    retryable = False

    def __init__(self, message: str, *, code: str = "tool_error") -> None:
        super().__init__(message)
        self.code = code


class ToolRetry(ToolError):
    """Wrong arguments: the model should fix them and try again."""

    retryable = True


class ToolFailure(ToolError):
    """A terminal failure: the model should change course (apologise, escalate)."""


class StaffAccountError(ShopBotError):
    """A staff account cannot be added or changed so; the message says why, in one line."""


class ConversationError(ShopBotError):
    """The conversation cannot take this input now."""


class MessageTooLong(ConversationError):
    """The customer's message exceeds `Settings.max_message_chars`."""


class ConversationNotFound(ConversationError):
    """No conversation has this id."""


class ConversationBusy(ConversationError):
    """Another turn of the same conversation is running."""


class RateLimited(ConversationError):
    """The conversation had its share of messages for now."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds until the next message would be taken."""


class NoPendingConfirmation(ConversationError):
    """The customer answered a confirmation that is not pending (any more)."""


class WithdrawnConfirmation(NoPendingConfirmation):
    """The customer answered a confirmation they had withdrawn by writing something else."""


class HandoffRefused(ConversationError):
    """A staff member's take-over, message or hand-back was refused; nothing changed."""


class AlreadyHeld(HandoffRefused):
    """Another staff member holds the conversation."""

    def __init__(self, message: str, *, holder: str) -> None:
        super().__init__(message)
        self.holder = holder
        """The name of the staff member who holds it."""


class NotHolder(HandoffRefused):
    """The staff member does not hold the conversation."""


class ConversationClosed(HandoffRefused):
    """The conversation is closed."""
