"""The τ²-bench oracle: a `ChatModel` that replays a task's ground-truth actions through the
real loop, and the scripted customer who talks to it.

It proves the benchmark's scorer: its actions go through parse, guard, confirmation and
tools like any model's, the customer approves each confirmation through the interface's
`ConfirmationAnswer`, and at the end it says the facts the task wants communicated. So a
pass shows that the scorer, the retail desk and the ground truth agree; an agent that does
nothing must fail every task whose expected database changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shopbot.actions import ESCALATE, REPLY
from shopbot.eval.simulator import AgentTurn
from shopbot.events import ConfirmationDecided, CustomerMessage, Event, Reply, VerdictGiven
from shopbot.loop import ConfirmationAnswer, CustomerText, Incoming
from shopbot.models.base import ModelRequest, ToolCall
from shopbot.tau2.data import Task
from shopbot.tau2.replay import what_the_customer_said

GO_ON = "Please go on."
STILL_WORKING = "One moment, I'm still working on it."


@dataclass
class GroundTruthAgent:
    """Proposes the task's ground-truth actions in order, one per step; reads the loop's
    events (the runner forwards them) to know whether the last one ran, was denied, or
    waits for the customer's confirmation (then it proposes it again once approved)."""

    task: Task
    steps_per_turn: int = 6
    """Past this many steps in a turn it replies and waits for the customer to go on (the
    loop's step budget is a few more)."""
    next_action: int = 0
    finished: bool = False
    """It said its last reply: everything is done and the facts were told."""
    _steps: int = 0

    @property
    def name(self) -> str:
        return "oracle"

    def observe(self, event: Event) -> None:
        if isinstance(event, CustomerMessage | ConfirmationDecided):
            self._steps = 0
        elif (
            isinstance(event, VerdictGiven)
            and event.tool not in (REPLY, ESCALATE)
            and event.decision != "confirm"  # proposed again after the customer's yes
        ):
            self.next_action += 1  # ran, or was denied (ground truth that fails by design)
        elif isinstance(event, Reply) and self.next_action >= len(self.task.actions):
            self.finished = True

    async def complete(self, request: ModelRequest) -> ToolCall:
        self._steps += 1
        if self.next_action >= len(self.task.actions):
            return ToolCall(REPLY, {"message": self.closing()}, "oracle")
        if self._steps > self.steps_per_turn:
            return ToolCall(REPLY, {"message": STILL_WORKING}, "oracle")
        action = self.task.actions[self.next_action]
        return ToolCall(action.name, action.arguments, f"ground truth {action.action_id}")

    def closing(self) -> str:
        facts = ", ".join(self.task.communicate_info)
        return "All done." + (f" What you asked about: {facts}." if facts else "")


@dataclass
class OracleCustomer:
    """The customer for the oracle: opens with the identifiers the task's lookups use,
    approves every confirmation, asks the agent to go on until it has finished."""

    task: Task
    agent: GroundTruthAgent
    said: list[str] = field(default_factory=list[str])

    @property
    def signs_in(self) -> bool:
        """A task with no lookup starts proven, as a customer signed in on the shop's site."""
        return what_the_customer_said(self.task) is None

    async def next(self, turn: AgentTurn | None) -> Incoming | None:
        if turn is None:
            return self._say(what_the_customer_said(self.task) or "Hi, I need help.")
        if turn.confirmation is not None:
            return ConfirmationAnswer(turn.confirmation.confirmation_id, True)
        if self.agent.finished or turn.escalated:
            return None
        return self._say(GO_ON)

    def _say(self, text: str) -> CustomerText:
        self.said.append(text)
        return CustomerText(text)


__all__ = ["GroundTruthAgent", "OracleCustomer"]
