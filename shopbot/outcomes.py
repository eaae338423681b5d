"""How one step of the loop ends (`shopbot.loop.Agent._react` matches on it), and the
model's answer a step starts from.

`Replied`, `AskedToConfirm` and `HandedOver` end the turn; `Observed`, `Lapsed`, `Denied` and
`Invalid` go on to the next step; `ModelFailed` ends it safely.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopbot.models.base import ModelStep


@dataclass(frozen=True)
class Answer:
    """The model's step, and how long it took."""

    step: ModelStep
    ms: float
    looped: str | None = None
    """The phrase a streamed reply kept repeating when it was cut off (`LoopWatch`)."""

    @property
    def raw(self) -> str:
        """What the model wrote (the audit log's raw output)."""
        return self.step.raw


@dataclass(frozen=True)
class Replied:
    """The customer was answered: the turn ends."""

    text: str


@dataclass(frozen=True)
class AskedToConfirm:
    """A side effect awaits the customer's confirmation: the turn ends."""

    confirmation_id: str


@dataclass(frozen=True)
class HandedOver:
    """The model escalated to a person: the turn ends."""

    reason: str


@dataclass(frozen=True)
class Observed:
    """A tool ran (or failed, an error observation): the model reads it next step."""

    tool: str
    error: bool


@dataclass(frozen=True)
class Lapsed:
    """The guard allowed a side effect, but its confirmation could not be spent: nothing ran."""

    tool: str


@dataclass(frozen=True)
class Denied:
    """The guard denied the action: the model reads why next step."""

    reason: str


@dataclass(frozen=True)
class Invalid:
    """The model's output did not parse: the model reads the error next step."""

    error: str


@dataclass(frozen=True)
class ModelFailed:
    """The model could not be asked (`ModelError`): the turn ends safely."""

    error: str


StepOutcome = (
    Replied | AskedToConfirm | HandedOver | Observed | Lapsed | Denied | Invalid | ModelFailed
)
"""How a step ended; `Agent._react` reads it to go on or end the turn."""


__all__ = [
    "Answer",
    "AskedToConfirm",
    "Denied",
    "HandedOver",
    "Invalid",
    "Lapsed",
    "ModelFailed",
    "Observed",
    "Replied",
    "StepOutcome",
]
