"""What the database client costs a transaction on PostgreSQL, in CPU: SQLAlchemy against psycopg.

Two shapes, each in a loop on one connection after a warm-up: an empty transaction (BEGIN,
`SELECT 1`, COMMIT) and a step's commit as the agent makes it (a read opens the transaction,
then three events and one audit row are written with the COMMIT in one pipeline). Through an
`AsyncSession` and `db.pipeline.PostgresWriter` (one statement), as the agent runs them, and on
bare psycopg with an INSERT per table. CPU time is this process's only, so PostgreSQL's work is not in it.

    python benchmarks/db_client.py [--rounds 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import libpq, machine, on_postgres
from db import utcnow
from db.engine import create_engine, session_factory
from db.pipeline import Batch, writer_for
from shopbot.app import start_conversation
from shopbot.config import Settings
from shopbot.record import AUDIT, EVENTS, AuditEntry

PAYLOADS = [
    {"kind": "action", "step": 1, "tool": "lookup_order", "args": {"order_id": "482913"}},
    {"kind": "verdict", "step": 1, "tool": "lookup_order", "decision": "allow", "reason": "ok"},
    {"kind": "observation", "step": 1, "tool": "lookup_order", "data": {"x": "y" * 500}},
]
EVENTS_SQL = (
    "INSERT INTO events (conversation_id, seq, turn, kind, payload, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)
AUDIT_SQL = (
    "INSERT INTO action_log (conversation_id, turn, step, raw_output, thought, tool, args, "
    "parse_error, verdict, reason, observation, flags, model_ms, guard_ms, tool_ms, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


async def measure(url: str, rounds: int) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    cid = await start_conversation(sessions, Settings(database_url=url))
    bare = await psycopg.AsyncConnection.connect(libpq(url))
    seq = 0

    def events() -> list[dict[str, Any]]:
        nonlocal seq
        rows: list[dict[str, Any]] = []
        for payload in PAYLOADS:
            seq += 1
            rows.append(
                {"conversation_id": cid, "seq": seq, "turn": 1, "kind": payload["kind"],
                 "payload": payload, "created_at": utcnow()}
            )  # fmt: skip
        return rows

    def audit() -> dict[str, Any]:
        entry = AuditEntry(cid, 1, seq, "raw", tool="lookup_order", args={"order_id": "482913"})
        return entry.row()

    async def session_empty() -> None:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            await session.commit()

    async def session_step() -> None:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            batch = Batch()
            batch.insert(AUDIT, [audit()])
            batch.insert(EVENTS, events())
            await writer_for(session).commit(session, batch)

    async def bare_empty() -> None:
        await bare.execute("SELECT 1")
        await bare.commit()

    async def bare_step() -> None:
        await bare.execute("SELECT 1")
        rows, row = events(), audit()
        async with bare.pipeline(), bare.cursor() as cursor:
            await cursor.executemany(
                EVENTS_SQL,
                [(r["conversation_id"], r["seq"], r["turn"], r["kind"], json.dumps(r["payload"]),
                  r["created_at"]) for r in rows],
            )  # fmt: skip
            await cursor.execute(
                AUDIT_SQL,
                [*(row[k] for k in ("conversation_id", "turn", "step", "raw_output", "thought",
                   "tool")), json.dumps(row["args"]), row["parse_error"], row["verdict"],
                 row["reason"], None, json.dumps(row["flags"]), row["model_ms"],
                 row["guard_ms"], row["tool_ms"], row["created_at"]],
            )  # fmt: skip
            await bare.execute("COMMIT")

    shapes: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("empty transaction, AsyncSession", session_empty),
        ("empty transaction, psycopg", bare_empty),
        ("a step's commit, AsyncSession + PostgresWriter", session_step),
        ("a step's commit, psycopg", bare_step),
    ]
    for _, run in shapes:
        for _ in range(50):
            await run()
    print("| shape | CPU ms, round 1 | CPU ms, round 2 |")
    print("|---|---|---|")
    results: dict[str, list[float]] = {}
    for _ in range(2):
        for name, run in shapes:
            start = time.process_time()
            for _ in range(rounds):
                await run()
            results.setdefault(name, []).append(1000 * (time.process_time() - start) / rounds)
    for name, (first, second) in results.items():
        print(f"| {name} | {first:.2f} | {second:.2f} |")
    await bare.close()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    print(f"the database client's CPU a transaction, PostgreSQL — {machine()}")
    on_postgres(lambda url: measure(url, args.rounds))


if __name__ == "__main__":
    main()
