"""The τ²-bench retail benchmark on ShopBot: tasks, trials and scoring for `shopbot.eval`.

    task (tasks_train.json) -> a fresh copy of the imported db.json (template clone)
      -> a customer (an LLM playing the user scenario, or the oracle's) <-> the agent
         (the retail desk, any model) through the real loop, at most `max_turns` turns
      -> the final database exported (`export_tau2`) == the ground truth's
         (`expected_database`), and every `communicate_info` fact said -> `TrialResult`

`run_suite`, `summarize` and the report of `shopbot.eval` do the rest (pass^1..pass^k,
denials, latency). Scored as τ²-bench scores: the whole database equal to the replay of
the ground-truth actions (a hash of it there; equality of the rounded records here), and
each fact a case-blind substring of one of the agent's replies with commas dropped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from sqlalchemy.orm import Session

from db.engine import is_sqlite
from db.tau2 import export_tau2, import_tau2, round_money
from db.testing import PostgresTemplate, SqliteTemplate, Template
from shopbot.app import start_conversation
from shopbot.config import Settings
from shopbot.eval.runner import CountedModel, TrialResult, converse, transcript
from shopbot.eval.simulator import Simulator
from shopbot.events import (
    Event,
    Reply,
)
from shopbot.harness import open_harness
from shopbot.identity import sign_customer
from shopbot.models.base import ChatModel
from shopbot.signing_keys import identity_secret
from shopbot.tau2.data import Data, Task, expected_database, load_db, read_json
from shopbot.tau2.replay import implied_user
from tools.mailer.loopback import LoopbackInbox

WRITES = {
    "cancel_pending_order": "cancel",
    "modify_pending_order_address": "modify",
    "modify_pending_order_items": "modify",
    "modify_pending_order_payment": "modify",
    "modify_user_address": "modify",
    "return_delivered_order_items": "return",
    "exchange_delivered_order_items": "exchange",
    "transfer_to_human_agents": "transfer",
}
"""The kind of each ground-truth write: a task's category is the kinds it holds."""


@dataclass(frozen=True)
class BenchTask:
    """A τ² task as `shopbot.eval` sees it (id, title, category), with the whole task."""

    task: Task
    user_scenario: dict[str, Any]

    @classmethod
    def of(cls, raw: Data) -> BenchTask:
        return cls(Task.of(raw), dict(raw.get("user_scenario") or {}))

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def title(self) -> str:
        reason = str(self.task.instructions.get("reason_for_call", "")).strip()
        return reason if len(reason) <= 90 else reason[:87] + "..."

    @property
    def category(self) -> str:
        kinds = sorted({WRITES[a.name] for a in self.task.actions if a.name in WRITES})
        return "+".join(kinds) or "none"


def load_bench_tasks(path: Path, only: list[str] | None = None) -> list[BenchTask]:
    """The tasks of a τ² tasks file, or only those with the given ids or categories."""
    tasks = [BenchTask.of(raw) for raw in read_json(path)]
    if not only:
        return tasks
    return [t for t in tasks if t.id in only or t.category in only]


def facts_missing(facts: tuple[str, ...] | list[str], replies: list[str]) -> list[str]:
    """The facts no reply says (τ²: `fact.lower() in reply.lower().replace(",", "")`)."""
    said = [r.lower().replace(",", "") for r in replies]
    return [f for f in facts if not any(f.lower() in r for r in said)]


def database_differences(expected: Data, final: Data, *, show: int = 5) -> list[str]:
    """Why `final` is not the expected database: the records that differ, per table, amounts
    compared to the cent (`round_money`, applied to the records that differ as they are)."""
    if final == expected:
        return []  # an export's amounts are already cents: the quick path
    problems: list[str] = []
    for table in sorted(set(expected) | set(final)):
        want, got = expected.get(table, {}), final.get(table, {})
        differ = sorted(
            key
            for key in set(want) | set(got)
            if want.get(key) != got.get(key)
            and round_money(want.get(key)) != round_money(got.get(key))
        )
        if differ:
            more = f" and {len(differ) - show} more" if len(differ) > show else ""
            shown = ", ".join(differ[:show])
            problems.append(f"{table} differ from the ground truth: {shown}{more}")
    return problems


def score(task: Task, final: Data, replies: list[str], expected: Data) -> list[str]:
    """A trial's failures: database differences, then facts not said (none: it passed)."""
    return database_differences(expected, final) + [
        f"not said: {fact!r}" for fact in facts_missing(task.communicate_info, replies)
    ]


class NoPolicyIndex:
    """The retail desk has no policy search: nothing opens the policy index."""


AgentFor = Callable[[BenchTask], ChatModel]
CustomerFor = Callable[[BenchTask, ChatModel], Simulator]


@dataclass
class Tau2Trials:
    """Runs τ² tasks (a `shopbot.eval.runner.TrialFn`). As an async context manager it
    imports db.json into a template once (SQLite, or PostgreSQL when the configured
    database is) and starts a loopback SMTP server for the return labels' emails."""

    agent_for: AgentFor
    customer_for: CustomerFor
    """The task's customer; one with `signs_in` true starts proven as the task's user."""
    directory: Path
    """Where db.json and expected_train.json are."""
    settings: dict[str, Any] = field(default_factory=dict[str, Any])
    """Settings overrides (the desk is always retail)."""
    make_settings: Callable[..., Settings] = Settings
    max_turns: int = 20
    template: Template | None = None
    """A template holding db.json to clone (None: import one for this run, and drop it)."""
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _own_template: bool = False
    _inbox: LoopbackInbox | None = None
    _expected: tuple[str, Data] | None = None
    """The last task's expected database (its k trials run one after the other)."""

    async def __aenter__(self) -> Tau2Trials:
        self._tmp = tempfile.TemporaryDirectory(prefix="shopbot-tau2-")
        if self.template is None:
            self.template = self._import(Path(self._tmp.name) / "db")
            self._own_template = True
        self._inbox = LoopbackInbox()
        self._inbox.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._inbox is not None:
            self._inbox.stop()
        if self._own_template and self.template is not None:
            self.template.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _import(self, directory: Path) -> Template:
        """db.json in a template on the configured database's kind (SQLite or PostgreSQL)."""
        data = load_db(self.directory)

        def seed(session: Session) -> None:
            import_tau2(session, data)

        configured = self.make_settings(**self.settings).db_url
        if is_sqlite(configured):
            return SqliteTemplate(directory, seed=seed)
        return PostgresTemplate(configured, seed=seed)

    def expected(self, task_id: str) -> Data:
        if self._expected is None or self._expected[0] != task_id:
            self._expected = (task_id, expected_database(task_id, self.directory))
        return self._expected[1]

    async def __call__(self, task: BenchTask, trial: int) -> TrialResult:
        assert self.template is not None and self._tmp is not None, "use `async with`"
        url = self.template.clone()
        try:
            settings = self.make_settings(
                **{"data_dir": Path(self._tmp.name), **self.settings},
                database_url=url,
                desk="retail",
            )
            return await self._run(task, trial, settings)
        finally:
            self.template.drop(url)

    async def _run(self, task: BenchTask, trial: int, settings: Settings) -> TrialResult:
        assert self._inbox is not None
        model = self.agent_for(task)
        counted = CountedModel(model)
        customer = self.customer_for(task, model)
        seen: list[Event] = []
        turn_ms: list[float] = []
        started = perf_counter()
        async with open_harness(settings, counted, inbox=self._inbox, policy=NoPolicyIndex()) as h:
            token = None
            if getattr(customer, "signs_in", False):
                async with h.sessions() as session:
                    user = await implied_user(session, task.task)
                if user is not None:
                    token = sign_customer(user, identity_secret(settings))
            cid = await start_conversation(
                h.sessions, settings, channel="tau2", customer_token=token
            )
            error = await converse(h.agent, cid, customer, model, self.max_turns, seen, turn_ms)
            seconds = perf_counter() - started
            async with h.sessions() as session:
                final: Data = await session.run_sync(export_tau2)
        replies = [e.text for e in seen if isinstance(e, Reply)]
        failures = score(task.task, final, replies, self.expected(task.id))
        if error is not None:
            failures.insert(0, error)
        return TrialResult.of_conversation(
            seen,
            counted,
            turn_ms,
            seconds,
            task_id=task.id,
            title=task.title,
            category=task.category,
            trial=trial,
            passed=not failures,
            failures=failures,
            transcript=transcript(seen, steps=True),
            error=error,
        )


__all__ = [
    "WRITES",
    "BenchTask",
    "Tau2Trials",
    "database_differences",
    "facts_missing",
    "load_bench_tasks",
    "score",
]
