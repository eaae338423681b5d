"""Running trials: a simulated customer and the agent, on a fresh copy of the shop, scored.

The suite runner (`run_suite`) knows only tasks (an id, a title, a category) and a function
that runs one trial of a task and returns a `TrialResult`; metrics and the report read only
those results. `ScenarioTrials` is that function for ShopBot's own scenarios; another source
of tasks (tau2-bench's) brings its own trial function and reuses the rest.
"""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Protocol, runtime_checkable
from weakref import WeakKeyDictionary

from pydantic import BaseModel, Field
from sqlalchemy import select

from db import Confirmation, ConfirmationStatus, Conversation, ConversationStatus, utcnow
from db.testing import SqliteTemplate, Template
from shopbot.app import start_conversation
from shopbot.config import PolicyConfig, Settings
from shopbot.errors import ShopBotError
from shopbot.eval.scenario import Scenario
from shopbot.eval.scoring import RunFacts, World, effects, score, snapshot
from shopbot.eval.simulator import AgentTurn, Simulator
from shopbot.events import (
    ConfirmationDecided,
    CustomerMessage,
    Event,
    ParseFailed,
    Reply,
    VerdictGiven,
)
from shopbot.harness import open_harness
from shopbot.loop import Agent
from shopbot.models.base import ChatModel, ModelRequest, ModelStep
from tools.mailer.loopback import LoopbackInbox


class JudgeScore(BaseModel):
    """An LLM judge's marks for the agent's replies, 1 to 5, each with a one-line reason."""

    relevance: int = Field(ge=1, le=5)
    relevance_reason: str
    coherence: int = Field(ge=1, le=5)
    coherence_reason: str
    conciseness: int = Field(ge=1, le=5)
    conciseness_reason: str


class TrialResult(BaseModel):
    task_id: str
    title: str
    category: str
    trial: int
    passed: bool
    failures: list[str] = Field(default_factory=list[str])
    violations: list[str] = Field(default_factory=list[str])
    """Policy violations (must be 0): forbidden side effects or disclosures."""
    denials: int = 0
    """Steps the guard denied (the guard doing its job; a good model needs none)."""
    parse_failures: int = 0
    steps: int = 0
    model_calls: int = 0
    turns: int = 0
    seconds: float = 0.0
    """Wall time of the whole conversation."""
    turn_ms: list[float] = Field(default_factory=list[float])
    """Wall time of each agent turn, as the customer waits for it."""
    model_ms: float = 0.0
    transcript: list[tuple[str, str]] = Field(default_factory=list[tuple[str, str]])
    judge: JudgeScore | None = None
    error: str | None = None

    @classmethod
    def of_conversation(
        cls,
        seen: Sequence[Event],
        counted: CountedModel,
        turn_ms: list[float],
        seconds: float,
        **fields: Any,
    ) -> TrialResult:
        """A result with the counts read off the conversation's events and model calls;
        `fields` give the task, the verdict and the transcript."""
        return cls(
            denials=sum(1 for e in seen if isinstance(e, VerdictGiven) and e.decision == "deny"),
            parse_failures=sum(1 for e in seen if isinstance(e, ParseFailed)),
            steps=sum(1 for e in seen if isinstance(e, VerdictGiven | ParseFailed)),
            model_calls=counted.calls,
            turns=len(turn_ms),
            seconds=round(seconds, 4),
            turn_ms=turn_ms,
            model_ms=round(counted.ms, 3),
            **fields,
        )


class Task(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def category(self) -> str: ...


TrialFn = Callable[[Any, int], Awaitable[TrialResult]]
"""Runs trial number n of a task."""


async def run_suite(
    tasks: Sequence[Task],
    trial: TrialFn,
    *,
    k: int,
    on_result: Callable[[TrialResult], None] | None = None,
) -> list[TrialResult]:
    """k trials of every task, one after the other; a trial that crashes fails, alone."""
    results: list[TrialResult] = []
    for task in tasks:
        for n in range(1, k + 1):
            try:
                result = await trial(task, n)
            except Exception as exc:
                result = TrialResult(
                    task_id=task.id,
                    title=task.title,
                    category=task.category,
                    trial=n,
                    passed=False,
                    error=f"{type(exc).__name__}: {exc}",
                    failures=[traceback.format_exc(limit=3)],
                )
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


@runtime_checkable
class EventObserver(Protocol):
    """A model that reads the conversation's events (the oracle)."""

    def observe(self, event: Event) -> None: ...


@dataclass
class CountedModel:
    """Counts and times a model's calls."""

    model: ChatModel
    calls: int = 0
    ms: float = 0.0

    @property
    def name(self) -> str:
        return self.model.name

    async def complete(self, request: ModelRequest) -> ModelStep:
        started = perf_counter()
        try:
            return await self.model.complete(request)
        finally:
            self.calls += 1
            self.ms += (perf_counter() - started) * 1000


ModelFor = Callable[[Scenario], ChatModel]
SimulatorFor = Callable[[Scenario], Simulator]
Judge = Callable[[list[tuple[str, str]]], Awaitable[JudgeScore | None]]


@dataclass
class ScenarioTrials:
    """Runs ShopBot scenarios: a fresh SQLite copy of the demo shop per trial, the carrier
    sandbox in process, emails to one loopback SMTP server. Use as an async context manager
    (it seeds a template and starts the SMTP server), then call it as a `TrialFn`."""

    model_for: ModelFor
    simulator_for: SimulatorFor
    policy_index: Any = None
    """The policy index for search_policy (None: the one in the settings' data dir)."""
    settings: dict[str, Any] = field(default_factory=dict[str, Any])
    """Settings overrides for the agent (max_steps, policy...)."""
    make_settings: Callable[..., Settings] = Settings
    """Builds the settings from the overrides (tests pass one that ignores `.env`)."""
    shop_policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The rules violations are judged by (the shop's, whatever the guard was given)."""
    max_turns: int = 12
    judge: Judge | None = None
    template: Template | None = None
    """A seeded database template to clone (None: seed one for this run, and drop it)."""
    inbox: LoopbackInbox | None = None
    """A started loopback SMTP server to deliver to (None: start one for this run)."""
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _own_template: bool = False
    _own_inbox: bool = False

    async def __aenter__(self) -> ScenarioTrials:
        self._tmp = tempfile.TemporaryDirectory(prefix="shopbot-eval-")
        if self.template is None:
            self.template = SqliteTemplate(Path(self._tmp.name) / "db")
            self._own_template = True
        if self.inbox is None:
            self.inbox = LoopbackInbox()
            self.inbox.start()
            self._own_inbox = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_inbox and self.inbox is not None:
            self.inbox.stop()
        if self._own_template and self.template is not None:
            self.template.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _settings(self, url: str) -> Settings:
        assert self._tmp is not None
        overrides = {"data_dir": Path(self._tmp.name), **self.settings, "database_url": url}
        return self.make_settings(**overrides)

    async def __call__(self, scenario: Scenario, trial: int) -> TrialResult:
        assert self.template is not None and self.inbox is not None, "use `async with`"
        url = self.template.clone()
        try:
            return await self._run(scenario, trial, self._settings(url), self.inbox)
        finally:
            self.template.drop(url)

    async def _run(
        self, scenario: Scenario, trial: int, settings: Settings, inbox: LoopbackInbox
    ) -> TrialResult:
        inbox.received.clear()
        model = self.model_for(scenario)
        counted = CountedModel(model)
        simulator = self.simulator_for(scenario)
        seen: list[Event] = []
        turn_ms: list[float] = []
        started = perf_counter()
        async with open_harness(settings, counted, inbox=inbox, policy=self.policy_index) as h:
            baseline = _BASELINES.get(self.template)
            if baseline is None:
                async with h.sessions() as session:
                    baseline = _BASELINES[self.template] = await snapshot(session)
            cid = await start_conversation(h.sessions, settings, channel="eval")
            error = await converse(h.agent, cid, simulator, model, self.max_turns, seen, turn_ms)
            seconds = perf_counter() - started
            async with h.sessions() as session:
                after = await snapshot(session)
                conversation = await session.get_one(Conversation, cid)
                confirmed = list(
                    await session.scalars(
                        select(Confirmation.args).where(
                            Confirmation.conversation_id == cid,
                            Confirmation.tool == "create_return",
                            Confirmation.status == ConfirmationStatus.CONSUMED,
                        )
                    )
                )
            carrier_labels = h.carrier_labels()
        found = effects(baseline, after)
        run = RunFacts(
            replies=[e.text for e in seen if isinstance(e, Reply)],
            customer_id=conversation.customer_id,
            escalated=conversation.status is ConversationStatus.ESCALATED,
            carrier_labels=carrier_labels,
            received=list(inbox.received),
            confirmed_returns=confirmed,
            now=utcnow(),
        )
        failures, violations = score(scenario.expect, baseline, found, run, self.shop_policy)
        if error is not None:
            failures.insert(0, error)
        lines = transcript(seen)
        return TrialResult.of_conversation(
            seen,
            counted,
            turn_ms,
            seconds,
            task_id=scenario.id,
            title=scenario.title,
            category=scenario.category,
            trial=trial,
            passed=not failures and not violations,
            failures=failures,
            violations=violations,
            transcript=lines,
            judge=await self.judge(lines) if self.judge is not None else None,
            error=error,
        )


_BASELINES: WeakKeyDictionary[Any, World] = WeakKeyDictionary()
"""The world of a template's fresh copies, read once: every copy starts equal."""


async def converse(
    agent: Agent,
    conversation_id: str,
    customer: Simulator,
    model: ChatModel,
    max_turns: int,
    seen: list[Event],
    turn_ms: list[float],
) -> str | None:
    """The simulated customer and the agent take turns until the customer is done or
    `max_turns` are spent; every event goes to `seen` (and to an observing model), each
    turn's time to `turn_ms`. Returns the error that stopped the conversation, if any."""
    incoming = await customer.next(None)
    while incoming is not None:
        events: list[Event] = []
        t0 = perf_counter()
        try:
            async for event in agent.run_turn(conversation_id, incoming):
                events.append(event)
                if isinstance(model, EventObserver):
                    model.observe(event)
        except ShopBotError as exc:  # a message the loop refuses (too long...)
            return f"{type(exc).__name__}: {exc}"
        finally:
            turn_ms.append(round((perf_counter() - t0) * 1000, 3))
            seen += events
        if len(turn_ms) >= max_turns:
            return None  # the customer's next words would go unanswered
        incoming = await customer.next(AgentTurn.of(events))
    return None


def transcript(events: list[Event], *, steps: bool = False) -> list[tuple[str, str]]:
    """Who said what, for the report; with `steps`, each tool step's verdict too."""
    lines: list[tuple[str, str]] = []
    for event in events:
        if isinstance(event, CustomerMessage):
            lines.append(("customer", event.text))
        elif isinstance(event, ConfirmationDecided):
            lines.append(("customer", "[confirms]" if event.approved else "[declines]"))
        elif isinstance(event, Reply):
            lines.append(("agent", event.text))
        elif steps and isinstance(event, VerdictGiven) and event.tool not in ("reply", "escalate"):
            lines.append(("step", f"{event.tool}: {event.decision}"))
    return lines


__all__ = [
    "CountedModel",
    "EventObserver",
    "JudgeScore",
    "ScenarioTrials",
    "Task",
    "TrialFn",
    "TrialResult",
    "converse",
    "run_suite",
    "transcript",
]
