"""Evaluation scenarios (`fixtures/scenarios/*.yaml`): a customer persona with a goal, and
the outcome a good agent reaches.

A file holds a list under `scenarios:`; see fixtures/scenarios/README.md for the format.
The expected outcome is stated as the shop's state afterwards (returns with their lines and
status, the emails in the outbox) plus the facts the agent's replies must contain; anything
else the run changes in the shop is an unexpected side effect (`shopbot.eval.scoring`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopbot.replay import EmailExpectation

Category = Literal[
    "return",
    "multi_return",
    "ineligible_return",
    "order_status",
    "policy",
    "identity_failure",
    "change_of_mind",
    "angry",
    "off_topic",
    "forbidden",
]
Style = Literal["polite", "terse", "angry", "chatty"]
Intent = Literal[
    "goal",
    "question",
    "off_topic",
    "thanks",
    "human",
    "refuse_label_elsewhere",
    "refuse_other_order",
    "refuse_exception",
    "refuse_refund",
    "refuse_disclose",
    "refuse_injection",
    "refuse_discount",
]
"""What a customer message asks for: the oracle's key to the right answer. `goal` pursues the
scenario's goal; `question` is a policy question; `human` asks for a person; `refuse_*` asks for something the rules
forbid, each with its own kind of refusal."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Say(_Strict):
    """Something the customer says of their own accord (not an answer to a question); a
    plain string in YAML pursues the goal."""

    text: str
    intent: Intent = "goal"

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: object) -> object:
        return {"text": data} if isinstance(data, str) else data


class Persona(_Strict):
    """Who the customer is, what they know and how they write."""

    name: str
    orders: list[str] = Field(default_factory=list[str])
    """Order numbers the customer knows; the first is the one they give when asked."""
    emails: list[str] = Field(default_factory=list[str])
    """Emails they give when asked, in order: a wrong one first makes them try again."""
    items: str | None = None
    """Their answer when asked which items go back (None: the opening already says)."""
    style: Style = "polite"
    opening: Say
    then: list[Say] = Field(default_factory=list[Say])
    """Said one per turn once the agent has nothing left to ask."""
    confirms: bool = True
    """Their answer to a confirmation request."""
    agrees: bool = True
    """Their answer to a yes/no question ("Shall I return the rest?")."""


class Goal(_Strict):
    """What the customer wants, as the oracle's plan needs it."""

    kind: Literal["return", "status", "policy", "none"]
    order_id: str | None = None
    lines: list[int] = Field(default_factory=list[int])
    """Order lines the customer wants to send back (1 is the first line)."""
    reason: str = "changed my mind"

    @model_validator(mode="after")
    def _complete(self) -> Goal:
        if self.kind in ("return", "status") and self.order_id is None:
            raise ValueError(f"a {self.kind} goal names its order_id")
        if self.kind == "return" and not self.lines:
            raise ValueError("a return goal names its lines")
        return self


class ExpectedReturn(_Strict):
    order_id: str
    lines: list[int]
    status: Literal["requested", "label_sent"] = "label_sent"


Fact = str | list[str]
"""A phrase the agent's replies must contain (case-insensitive); a list means any of them."""


class Expect(_Strict):
    """The outcome: shop state afterwards, and what the agent must (not) say."""

    verified_as: str | None = None
    """The customer id the conversation is proven as at the end (None: never proven)."""
    returns: list[ExpectedReturn] = Field(default_factory=list[ExpectedReturn])
    """Exactly the returns created (each changes its order and lines to return_requested)."""
    emails: list[EmailExpectation] = Field(default_factory=list[EmailExpectation])
    """Exactly the emails queued and delivered, in order."""
    facts: list[Fact] = Field(default_factory=list[Fact])
    never_say: list[str] = Field(default_factory=list[str])
    """Phrases the agent must never say (another customer's data): a policy violation."""
    escalated: bool = False


class Scenario(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    category: Category
    persona: Persona
    goal: Goal
    expect: Expect

    @property
    def labels(self) -> int:
        return sum(r.status == "label_sent" for r in self.expect.returns)


class ScenarioFile(_Strict):
    scenarios: list[Scenario]


def load_scenarios(path: Path, only: list[str] | None = None) -> list[Scenario]:
    """Every scenario in a file or a folder of `*.yaml`, filtered by id or category
    (`only`: exact ids, categories, or id prefixes)."""
    files = [path] if path.is_file() else sorted(path.glob("*.yaml"))
    found: list[Scenario] = []
    for file in files:
        found += ScenarioFile.model_validate(yaml.safe_load(file.read_text())).scenarios
    ids = [s.id for s in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate scenario ids: {', '.join(duplicates)}")
    if only:
        found = [
            s
            for s in found
            if any(s.id == o or s.category == o or s.id.startswith(o) for o in only)
        ]
    return found


__all__ = [
    "Category",
    "Expect",
    "ExpectedReturn",
    "Goal",
    "Intent",
    "Persona",
    "Say",
    "Scenario",
    "load_scenarios",
]
