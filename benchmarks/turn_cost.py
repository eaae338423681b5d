"""What one widget-benchmark turn costs in process, without HTTP: CPU and SQL statements.

The agent alone runs the conversations of `benchmarks/widget_load.py` (its scripted model and
messages) one after the other on PostgreSQL, after a warm-up. CPU time is this process's
(user + system), so a host stealing cycles does not inflate it; statements and commits are
counted as SQLAlchemy sends them (the turn's state query is counted under its first table,
`SELECT action_log`), and each commit's batch (`db.pipeline.PostgresWriter`, one statement on
the driver) as `BATCH` with its parts.

`--parts` also times the turn's parts (CPU inside each call, nested calls excluded by
choosing disjoint ones): the lease, the state, the order facts, the step's writes and commit,
the prompt, the parse, the guard, the scripted model. The timing adds a little to the total.

    python benchmarks/turn_cost.py [--conversations 100] [--parts]
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, on_postgres
from benchmarks.widget_load import TURNS, BenchModel
from db.engine import create_engine, session_factory
from db.pipeline import PostgresWriter
from shopbot.app import build_agent, start_conversation
from shopbot.config import Settings
from shopbot.loop import Agent, CustomerText


def _kind(statement: str) -> str:
    """`SELECT orders`, `INSERT events`, `UPDATE conversations`: verb and first table."""
    words = statement.split()
    verb = words[0]
    for marker in ("FROM", "INTO") if verb != "UPDATE" else ():
        if marker in words:
            return f"{verb} {words[words.index(marker) + 1]}"
    return f"{verb} {words[1]}" if verb == "UPDATE" else verb


async def open_conversations(agent: Agent, settings: Settings, n: int) -> list[str]:
    return [await start_conversation(agent.sessions, settings) for _ in range(n)]


async def converse(agent: Agent, ids: list[str]) -> None:
    for cid in ids:
        for text in TURNS:
            async for _ in agent.run_turn(cid, CustomerText(text)):
                pass


def timed_parts(agent: Agent, spent: defaultdict[str, float]) -> None:
    """Wraps disjoint parts of a turn so `spent` collects the CPU seconds inside each."""
    import shopbot.loop as loop
    from shopbot.prompts import PromptBuilder
    from shopbot.record import Recorder

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        if inspect.iscoroutinefunction(original):

            async def timed_async(*args: Any, **kw: Any) -> Any:
                start = time.process_time()
                try:
                    return await original(*args, **kw)
                finally:
                    spent[label] += time.process_time() - start

            setattr(owner, name, timed_async)
        else:

            def timed(*args: Any, **kw: Any) -> Any:
                start = time.process_time()
                try:
                    return original(*args, **kw)
                finally:
                    spent[label] += time.process_time() - start

            setattr(owner, name, timed)

    wrap(loop, "take_lease", "the lease statement (take_lease)")
    wrap(loop, "load_state", "the state (load_state)")
    wrap(loop, "load_step_facts", "the order facts (load_step_facts)")
    wrap(Recorder, "commit", "the step's writes and commit (Recorder.commit)")
    wrap(PromptBuilder, "build", "the prompt (PromptBuilder.build)")
    wrap(agent.schema, "parse", "the parse (ActionSchema.parse)")
    wrap(agent.guard, "check", "the guard (Guard.check)")
    wrap(agent.model, "complete", "the scripted model")


async def measure(url: str, conversations: int, parts: bool = False) -> None:
    settings = Settings(database_url=url)
    engine = create_engine(url)
    agent = build_agent(settings, BenchModel(), session_factory(engine))
    kinds: Counter[str] = Counter()
    commits = [0]

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        kinds[_kind(statement)] += 1

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    # Warm-up: statement caches, prepared statements, the pool.
    await converse(agent, await open_conversations(agent, settings, 10))
    ids = await open_conversations(agent, settings, conversations)
    spent: defaultdict[str, float] = defaultdict(float)
    if parts:
        timed_parts(agent, spent)
    # A commit's batch is one statement on the driver, out of SQLAlchemy's sight: count it.
    commit = PostgresWriter.commit

    async def counted(writer: PostgresWriter, session: Any, batch: Any) -> None:
        if batch:
            names = [table.name for table, _ in batch.inserts]
            names += [f"update {change.table.name}" for change in batch.updates]
            kinds[f"BATCH {' + '.join(names)}"] += 1
        await commit(writer, session, batch)

    PostgresWriter.commit = counted  # pyright: ignore[reportAttributeAccessIssue]
    event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
    event.listen(engine.sync_engine, "commit", on_commit)
    cpu, wall = time.process_time(), time.perf_counter()
    await converse(agent, ids)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await engine.dispose()
    turns = conversations * len(TURNS)
    print(
        f"{turns} turns: CPU {1000 * cpu / turns:.2f} ms a turn, wall {1000 * wall / turns:.2f} "
        f"ms, {kinds.total() / turns:.1f} statements and {commits[0] / turns:.1f} commits a turn"
    )
    for kind, n in kinds.most_common():
        print(f"  {n / turns:5.2f}  {kind}")
    if parts:
        print("CPU ms a turn, by part:")
        for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
            print(f"  {1000 * seconds / turns:5.2f}  {label}")
        rest = cpu - sum(spent.values())
        print(f"  {1000 * rest / turns:5.2f}  the rest (sessions, tools, events, the loop)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--parts", action="store_true", help="Also time the turn's parts.")
    args = parser.parse_args()
    print(f"one turn, in process, PostgreSQL — {machine()}")
    on_postgres(lambda url: measure(url, args.conversations, args.parts))


if __name__ == "__main__":
    main()
