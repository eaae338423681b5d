"""The floor under the widget benchmark: the least a turn can cost on this machine.

`benchmarks/widget_load.py` drives `shopbot serve`. This drives, with the same clients and
the same measured window, a bare ASGI app (no framework, no ORM: psycopg 3 straight) that
keeps what a turn must keep and leaves out the agent, so it shows the best that 2 cores
shared with PostgreSQL and the clients allow. Each message stores the events a real turn of
the workload stores (captured from the agent running the same conversation in process
first: same kinds, same payloads); every event is stored before any stream sends it; other
workers hear of it by NOTIFY; a stream resumes from the stored log after `Last-Event-ID`.
Two designs of the turn's storage:

- `one statement`: the whole turn is one SQL statement in autocommit (take the turn, store
  its events, NOTIFY; no messages or audit rows), one round trip. Only a turn whose every
  step were known at once could work so; it is a floor under any design.
- `per step`: the round trips `shopbot serve` makes for this workload, in the same order, on
  one connection held for the turn, each commit a transaction as the agent's are (psycopg
  sends BEGIN apart, and the writes with the COMMIT in one pipeline): take the lease (with
  the message-rate count and the state's subqueries), read the recent messages, store the
  customer's message (the POST answers 202 here); per tool step read the order, then
  `verify_identity` writes the conversation's customer and `lookup_order` reads the
  fulfillments, and the step is stored (events, audit row, NOTIFY); the reply is stored and
  the lease freed. About 9 round trips a turn, as `shopbot serve`'s code path made until
  session 8 (it now makes about 6: the lease reads the messages and commits alone, a batch
  with no transaction open goes alone in autocommit). The floor of a design where every
  step is durable before the model is asked again: only the statements' Python is gone,
  and each store is one statement.

A third row measures the other side: `web layer` is `shopbot serve`'s own app (FastAPI, the
turn runner, the event feed, sse-starlette) with a turn that touches no database: its
captured events are handed to the runner as if committed. So its CPU is what the web layer
costs a turn, and `shopbot serve`'s minus it is the agent's. One worker, since nothing
carries its events to another.

Neither floor runs a model, a prompt, the guard or a tool, and no JSON is parsed on the way out
(PostgreSQL writes each event's JSON).

    python benchmarks/widget_floor.py [--clients 50,200] [--workers 2] [--think 0.8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import libpq, machine
from benchmarks.floor_app import PER_STEP, TABLES, Captured, captured, plan
from benchmarks.widget_load import HEADER, TURNS, BenchModel, Results, load, report, server
from db.testing import PostgresTemplate, postgres_reachable

ONE_STATEMENT, WEB = "one statement", "web layer"
DESIGNS = (ONE_STATEMENT, PER_STEP, WEB)


def web_app() -> Any:
    """The uvicorn factory of `web layer`: `shopbot serve`'s app, turns without a database."""
    from contextlib import asynccontextmanager
    from dataclasses import fields

    from benchmarks.widget_load import bench_app
    from shopbot.loop import Agent

    app = bench_app()
    plans = {text: plan(*events) for text, events in captured().items()}
    numbers: dict[str, tuple[int, int]] = {}

    class FloorAgent(Agent):
        """The app's agent with the one thing replaced: its turn."""

        async def run_turn(  # pyright: ignore[reportIncompatibleMethodOverride]
            self, conversation_id: str, incoming: Any
        ) -> AsyncIterator[dict[str, Any]]:
            turn, seq = numbers.get(conversation_id, (0, 0))
            turn += 1
            for store in plans.get(incoming.text, plans[TURNS[-1]]):
                rows: list[dict[str, Any]] = []
                for kind, payload in zip(store.kinds, store.payloads, strict=True):
                    seq += 1
                    rows.append(
                        {"seq": seq, "turn": turn, "kind": kind, "payload": json.loads(payload)}
                    )
                numbers[conversation_id] = (turn, seq)
                assert self.on_stored is not None
                self.on_stored(conversation_id, rows)  # as the commit of these rows would
                for row in rows:
                    yield row

    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: Any) -> AsyncGenerator[None]:
        async with started(served):
            runner = served.state.backend.runner  # assembled at start-up
            parts = {f.name: getattr(runner.agent, f.name) for f in fields(runner.agent)}
            runner.agent = FloorAgent(**parts)
            yield

    app.router.lifespan_context = lifespan
    return app


async def capture(url: str) -> Captured:
    """The events the agent stores for each message of the workload, keyed by message."""
    from sqlalchemy import text

    from benchmarks.turn_cost import converse, open_conversations
    from db.engine import create_engine, session_factory
    from shopbot.app import build_agent
    from shopbot.config import Settings

    settings = Settings(database_url=url)
    engine = create_engine(url)
    agent = build_agent(settings, BenchModel(), session_factory(engine))
    [cid] = await open_conversations(agent, settings, 1)
    await converse(agent, [cid])  # the workload's messages, as turn_cost.py runs them
    query = text("SELECT turn, kind, payload FROM events WHERE conversation_id = :c ORDER BY seq")
    async with engine.connect() as conn:
        rows = (await conn.execute(query, {"c": cid})).all()
    await engine.dispose()
    turns: Captured = {}
    for number, message in enumerate(TURNS, start=1):
        mine = [r for r in rows if r.turn == number]
        payloads = [{k: v for k, v in r.payload.items() if k != "turn"} for r in mine]
        turns[message] = ([r.kind for r in mine], [json.dumps(p) for p in payloads])
    return turns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="50,200")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--think", type=float, default=0.8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--design", choices=[*DESIGNS, "all"], default="all")
    args = parser.parse_args()
    if why := postgres_reachable():
        print(f"postgresql: skipped ({why})")
        return
    print(f"the widget turn's floor — {machine()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{len(TURNS)} turns per conversation, {args.think:.2f} s mean think time")
    print(HEADER.format(what="design"))
    template = PostgresTemplate()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            turns_file = Path(tmp) / "turns.json"
            probe = template.clone()
            try:
                turns_file.write_text(json.dumps(asyncio.run(capture(probe))))
            finally:
                template.drop(probe)
            os.environ["FLOOR_TURNS"] = str(turns_file)
            designs = DESIGNS if args.design == "all" else [args.design]
            runs = itertools.product(designs, [int(w) for w in args.workers.split(",")])
            for design, workers in dict.fromkeys((d, 1 if d == WEB else w) for d, w in runs):
                os.environ["FLOOR_DESIGN"] = design
                factory = (
                    "benchmarks.widget_floor:web_app"
                    if design == WEB
                    else "benchmarks.floor_app:floor_app"
                )
                for clients in [int(c) for c in args.clients.split(",")]:
                    url = template.clone()
                    try:
                        with psycopg.connect(libpq(url), autocommit=True) as conn:
                            conn.execute(TABLES)
                        with server(url, Path(tmp), workers, factory) as running:
                            results: Results
                            results, cpu = asyncio.run(
                                load(
                                    running.base, clients, len(TURNS), args.think,
                                    args.seconds, args.warmup, running.sample,
                                )
                            )  # fmt: skip
                    finally:
                        template.drop(url)
                    print(report(design, workers, clients, results, args.seconds, cpu), flush=True)
    finally:
        template.close()


if __name__ == "__main__":
    main()
