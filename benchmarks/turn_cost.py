"""What one widget-benchmark turn costs in process, without HTTP: CPU and SQL statements.

The agent alone runs the conversations of `benchmarks/widget_load.py` (its scripted model and
messages) one after the other on PostgreSQL, after a warm-up. CPU time is this process's
(user + system), so a host stealing cycles does not inflate it; statements and commits are
counted at the driver (the turn's state query is counted under its first table,
`SELECT action_log`).

    python benchmarks/turn_cost.py [--conversations 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from benchmarks.widget_load import TURNS, BenchModel
from db.engine import create_engine, session_factory
from db.testing import PostgresTemplate, cloned, postgres_reachable
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


async def measure(url: str, conversations: int) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100)
    args = parser.parse_args()
    print(f"one turn, in process, PostgreSQL — {machine()}")
    if why := postgres_reachable():
        print(f"postgresql: skipped ({why})")
        return
    template = PostgresTemplate()
    try:
        with cloned(template) as url:
            asyncio.run(measure(url, args.conversations))
    finally:
        template.close()


if __name__ == "__main__":
    main()
