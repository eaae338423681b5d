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
  the lease freed. About 9 round trips a turn, as `shopbot serve`'s code path makes. This is
  the floor of the present design, where every step is durable before the model is asked
  again: only the statements' Python is gone, and each store is one statement.

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
import hashlib
import hmac
import itertools
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from benchmarks.widget_load import TURNS, BenchModel, Results, cpu_seconds, load, report, server
from db.testing import PostgresTemplate, postgres_reachable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SECRET = b"floor"
CHANNEL = "floor"
POOL_SIZE = 8
ONE_STATEMENT, PER_STEP, WEB = "one statement", "per step", "web layer"
DESIGNS = (ONE_STATEMENT, PER_STEP, WEB)
TABLES = """
CREATE TABLE floor_conversations (
    id text PRIMARY KEY, turns integer NOT NULL DEFAULT 0, seq integer NOT NULL DEFAULT 0,
    lease_until timestamptz, customer_id text
);
CREATE TABLE floor_messages (
    id bigserial PRIMARY KEY, conversation_id text NOT NULL, turn integer NOT NULL,
    role text NOT NULL, content text NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON floor_messages (conversation_id, id);
CREATE TABLE floor_audit (
    id bigserial PRIMARY KEY, conversation_id text NOT NULL, turn integer NOT NULL,
    step integer NOT NULL, tool text, action jsonb NOT NULL
);
CREATE INDEX ON floor_audit (conversation_id, turn, step);
CREATE TABLE floor_confirmations (
    id text PRIMARY KEY, conversation_id text NOT NULL, status text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX ON floor_confirmations (conversation_id, status);
CREATE TABLE floor_events (
    conversation_id text NOT NULL, seq integer NOT NULL, turn integer NOT NULL,
    kind text NOT NULL, payload jsonb NOT NULL, PRIMARY KEY (conversation_id, seq)
);
"""
TURN = """
WITH c AS (
    UPDATE floor_conversations SET turns = turns + 1, seq = seq + cardinality(%(kinds)s::text[])
    WHERE id = %(id)s
    RETURNING id, turns, seq - cardinality(%(kinds)s::text[]) AS base
), e AS (
    INSERT INTO floor_events (conversation_id, seq, turn, kind, payload)
    SELECT c.id, c.base + k.n, c.turns, k.kind, k.payload
    FROM c, unnest(%(kinds)s::text[], %(payloads)s::jsonb[]) WITH ORDINALITY AS k(kind, payload, n)
    RETURNING seq, turn, kind, payload
)
SELECT c.turns, c.base + 1, pg_notify(%(channel)s, c.id || E'\\n' || (
    SELECT string_agg(
        e.seq || ' ' || e.kind || ' ' || (e.payload || jsonb_build_object('seq', e.seq, 'turn', e.turn))::text,
        E'\\n' ORDER BY e.seq)
    FROM e))
FROM c
"""
LEASE = """
UPDATE floor_conversations c SET turns = turns + 1, lease_until = now() + interval '60 seconds'
WHERE id = %(id)s AND (lease_until IS NULL OR lease_until < now()) AND (
    SELECT count(*) FROM floor_messages m WHERE m.conversation_id = c.id
    AND m.role = 'customer' AND m.created_at > now() - interval '60 seconds') < 100000
RETURNING turns, seq,
    (SELECT count(*) FROM floor_audit a
     WHERE a.conversation_id = c.id AND a.tool = 'verify_identity') AS failed_checks,
    (SELECT max(e.seq) FROM floor_events e WHERE e.conversation_id = c.id) AS last_seq,
    (SELECT first_name FROM customers WHERE customers.id = c.customer_id) AS customer_name,
    (SELECT f.id FROM floor_confirmations f WHERE f.conversation_id = c.id
     AND f.status IN ('pending', 'approved') ORDER BY f.created_at DESC LIMIT 1) AS live
"""
RECENT = """
SELECT role, content FROM floor_messages WHERE conversation_id = %s ORDER BY id DESC LIMIT 20
"""
ORDER = """
SELECT o.*, i.*, c.* FROM orders o JOIN order_items i ON i.order_id = o.id
JOIN customers c ON c.id = o.customer_id WHERE o.id = %s
"""
FULFILLMENTS = "SELECT * FROM fulfillments WHERE order_id = %s"
VERIFIED = """
UPDATE floor_conversations SET customer_id = (SELECT customer_id FROM orders WHERE id = %s)
WHERE id = %s
"""
STORE = """
WITH e AS (
    INSERT INTO floor_events (conversation_id, seq, turn, kind, payload)
    SELECT %(id)s, %(base)s + k.n, %(turn)s, k.kind, k.payload
    FROM unnest(%(kinds)s::text[], %(payloads)s::jsonb[]) WITH ORDINALITY AS k(kind, payload, n)
    RETURNING seq, turn, kind, payload
), m AS (
    INSERT INTO floor_messages (conversation_id, turn, role, content)
    SELECT %(id)s, %(turn)s, r.role, r.content
    FROM unnest(%(roles)s::text[], %(contents)s::text[]) AS r(role, content)
), a AS (
    INSERT INTO floor_audit (conversation_id, turn, step, tool, action)
    SELECT %(id)s, %(turn)s, %(step)s, %(audit)s::jsonb ->> 'tool', %(audit)s::jsonb
    WHERE %(audit)s::jsonb IS NOT NULL
), c AS (
    UPDATE floor_conversations SET seq = %(base)s + cardinality(%(kinds)s::text[]),
        lease_until = CASE WHEN %(release)s THEN NULL ELSE lease_until END
    WHERE id = %(id)s
)
SELECT pg_notify(%(channel)s, %(id)s || E'\\n' || string_agg(
    e.seq || ' ' || e.kind || ' ' || (e.payload || jsonb_build_object('seq', e.seq, 'turn', e.turn))::text,
    E'\\n' ORDER BY e.seq))
FROM e
"""
AFTER = """
SELECT string_agg(
    seq || ' ' || kind || ' ' || (payload || jsonb_build_object('seq', seq, 'turn', turn))::text,
    E'\\n' ORDER BY seq)
FROM floor_events WHERE conversation_id = %s AND seq > %s
"""


def libpq(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://...`) as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sign(conversation_id: str) -> str:
    return hmac.new(SECRET, conversation_id.encode(), hashlib.sha256).hexdigest()


def sse(lines: str) -> bytes:
    """Stored events, one `seq kind json` per line, as SSE frames (CRLF, as sse-starlette)."""
    out: list[str] = []
    for line in lines.split("\n"):
        seq, kind, data = line.split(" ", 2)
        out.append(f"id: {seq}\r\nevent: {kind}\r\ndata: {data}\r\n\r\n")
    return "".join(out).encode()


class Pool:
    """A fixed set of connections, in autocommit (every statement its own transaction) or
    not (a turn holds one, as the agent's session does)."""

    def __init__(self) -> None:
        self.idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()

    async def open(self, url: str, size: int, *, autocommit: bool = True) -> None:
        for _ in range(size):
            conn = await psycopg.AsyncConnection.connect(url, autocommit=autocommit)
            self.idle.put_nowait(conn)

    async def rows(self, query: LiteralString, params: Any) -> list[tuple[Any, ...]]:
        conn = await self.idle.get()
        try:
            cursor = await conn.execute(query, params, prepare=True)
            return await cursor.fetchall() if cursor.description else []
        finally:
            self.idle.put_nowait(conn)

    async def fetchone(self, query: LiteralString, params: Any) -> tuple[Any, ...] | None:
        found = await self.rows(query, params)
        return found[0] if found else None

    async def close(self) -> None:
        while not self.idle.empty():
            await self.idle.get_nowait().close()


Captured = dict[str, tuple[list[str], list[str]]]
"""Per customer message: the kinds and payloads (JSON) of the events its turn stores."""


@dataclass(frozen=True)
class Store:
    """One commit of a turn in the per-step design."""

    kinds: list[str]
    payloads: list[str]
    order_id: str | None = None
    """A tool step reads its order's facts before it stores."""
    tool: str | None = None
    """The step's tool: `verify_identity` writes the conversation, `lookup_order` reads
    the fulfillments, as the tools do."""
    audit: str | None = None
    """A step's audit row (its action, as JSON)."""
    messages: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    """(role, text) rows for the messages table: the customer's, the reply."""


def plan(kinds: list[str], payloads: list[str]) -> list[Store]:
    """A turn's events as the commits the agent makes: the customer's message, each tool
    step (up to its observation), and the reply with the turn's end."""
    parsed = [json.loads(p) for p in payloads]
    stores = [Store(kinds[:1], payloads[:1], messages=[("customer", parsed[0]["text"])])]
    start = 1
    for i, kind in enumerate(kinds):
        if kind == "observation":
            action = parsed[start]
            order_id = action.get("args", {}).get("order_id")
            stores.append(
                Store(
                    kinds[start : i + 1],
                    payloads[start : i + 1],
                    order_id,
                    action.get("tool"),
                    payloads[start],
                )
            )
            start = i + 1
    reply = next(p["text"] for k, p in zip(kinds, parsed, strict=True) if k == "reply")
    stores.append(
        Store(
            kinds[start:], payloads[start:], audit=payloads[start], messages=[("assistant", reply)]
        )
    )
    return stores


class FloorApp:
    """POST /v1/conversations, POST .../{id}/messages, GET .../{id}/events; nothing else."""

    def __init__(self, url: str, turns: Captured, per_step: bool) -> None:
        self.url = url
        self.turns = turns
        self.plans = {text: plan(*events) for text, events in turns.items()}
        self.per_step = per_step
        self.running: set[asyncio.Task[None]] = set()
        self.pool = Pool()
        self.turn_connections = Pool()
        """Per step: a turn holds one (not in autocommit) from its lease to its end."""
        self.streams: dict[str, set[asyncio.Queue[str | None]]] = {}
        self.listener: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        parts = scope["path"].strip("/").split("/")
        method = scope["method"]
        if method == "GET" and parts == ["healthz"]:
            await respond(send, 200, {"status": "ok"})
        elif method == "POST" and parts == ["v1", "conversations"]:
            await read_body(receive)
            cid = uuid.uuid4().hex
            await self.pool.fetchone("INSERT INTO floor_conversations (id) VALUES (%s)", (cid,))
            await respond(send, 201, {"conversation_id": cid, "token": sign(cid)})
        elif len(parts) == 4 and parts[:2] == ["v1", "conversations"]:
            cid = parts[2]
            if not authorised(scope, cid):
                await respond(send, 401, {"error": {"code": "unauthorized"}})
            elif method == "POST" and parts[3] == "messages":
                await self.message(cid, await read_body(receive), send)
            elif method == "GET" and parts[3] == "events":
                await self.stream(cid, scope, receive, send)
            else:
                await respond(send, 404, {"error": {"code": "not_found"}})
        else:
            await respond(send, 404, {"error": {"code": "not_found"}})

    async def message(self, cid: str, body: bytes, send: Send) -> None:
        text = json.loads(body)["text"]
        if self.per_step:
            await self.message_per_step(cid, text, send)
            return
        kinds, payloads = self.turns.get(text, self.turns[TURNS[-1]])
        row = await self.pool.fetchone(
            TURN, {"id": cid, "kinds": kinds, "payloads": payloads, "channel": CHANNEL}
        )
        if row is None:
            await respond(send, 404, {"error": {"code": "not_found"}})
            return
        await respond(send, 202, {"conversation_id": cid, "turn": row[0], "first_seq": row[1]})

    async def message_per_step(self, cid: str, text: str, send: Send) -> None:
        stores = self.plans.get(text, self.plans[TURNS[-1]])
        conn = await self.turn_connections.idle.get()
        try:
            row = await (await conn.execute(LEASE, {"id": cid}, prepare=True)).fetchone()
            if row is None:
                await conn.rollback()
                await respond(send, 409, {"error": {"code": "conversation_busy"}})
                self.turn_connections.idle.put_nowait(conn)
                return
            turn, seq = row[0], row[1]
            await (await conn.execute(RECENT, (cid,), prepare=True)).fetchall()  # the prompt's
            seq = await self.store(conn, cid, turn, seq, 0, stores[0], release=False)
        except BaseException:
            self.turn_connections.idle.put_nowait(conn)
            raise
        await respond(send, 202, {"conversation_id": cid, "turn": turn, "first_seq": row[1] + 1})
        task = asyncio.create_task(self.finish(conn, cid, turn, seq, stores[1:]))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def finish(
        self,
        conn: psycopg.AsyncConnection[Any],
        cid: str,
        turn: int,
        seq: int,
        stores: list[Store],
    ) -> None:
        try:
            for step, store in enumerate(stores, start=1):
                if store.order_id is not None:
                    await (await conn.execute(ORDER, (store.order_id,), prepare=True)).fetchall()
                    if store.tool == "verify_identity":
                        await conn.execute(VERIFIED, (store.order_id, cid), prepare=True)
                    elif store.tool == "lookup_order":
                        query = FULFILLMENTS
                        await (
                            await conn.execute(query, (store.order_id,), prepare=True)
                        ).fetchall()
                last = step == len(stores)
                seq = await self.store(conn, cid, turn, seq, step, store, release=last)
        finally:
            self.turn_connections.idle.put_nowait(conn)

    @staticmethod
    async def store(
        conn: psycopg.AsyncConnection[Any],
        cid: str,
        turn: int,
        seq: int,
        step: int,
        store: Store,
        *,
        release: bool,
    ) -> int:
        """Stores one commit's rows (events, messages, audit, NOTIFY) and commits, in one
        pipeline as `db.pipeline` does; the last seq."""
        params = {
            "id": cid,
            "turn": turn,
            "base": seq,
            "step": step,
            "kinds": store.kinds,
            "payloads": store.payloads,
            "roles": [role for role, _ in store.messages],
            "contents": [text for _, text in store.messages],
            "audit": store.audit,
            "release": release,
            "channel": CHANNEL,
        }
        async with conn.pipeline():
            await conn.execute(STORE, params, prepare=True)
            await conn.execute("COMMIT")
        return seq + len(store.kinds)

    async def stream(self, cid: str, scope: Scope, receive: Receive, send: Send) -> None:
        after = 0
        for name, value in scope["headers"]:
            if name == b"last-event-id" and value.isdigit():
                after = int(value)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.streams.setdefault(cid, set()).add(queue)

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            queue.put_nowait(None)

        watcher = asyncio.create_task(watch())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            # Subscribed before the read: what commits during it arrives twice, not never.
            stored = await self.pool.fetchone(AFTER, (cid, after))
            if stored and stored[0]:
                after = await self.send_events(send, stored[0], after)
            while (lines := await queue.get()) is not None:
                after = await self.send_events(send, lines, after)
        finally:
            watcher.cancel()
            self.streams[cid].discard(queue)
            if not self.streams[cid]:
                del self.streams[cid]

    @staticmethod
    async def send_events(send: Send, lines: str, after: int) -> int:
        fresh = [line for line in lines.split("\n") if int(line.split(" ", 1)[0]) > after]
        if fresh:
            await send(
                {"type": "http.response.body", "body": sse("\n".join(fresh)), "more_body": True}
            )
            after = int(fresh[-1].split(" ", 1)[0])
        return after

    async def listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            async for notice in conn.notifies():
                cid, _, lines = notice.payload.partition("\n")
                for queue in self.streams.get(cid, ()):
                    queue.put_nowait(lines)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.pool.open(self.url, POOL_SIZE)
                if self.per_step:
                    await self.turn_connections.open(self.url, POOL_SIZE, autocommit=False)
                self.listener = asyncio.create_task(self.listen())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.listener is not None:
                    self.listener.cancel()
                for queues in self.streams.values():
                    for queue in queues:
                        queue.put_nowait(None)
                await self.pool.close()
                await self.turn_connections.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def authorised(scope: Scope, cid: str) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return hmac.compare_digest(value.decode().removeprefix("Bearer "), sign(cid))
    return False


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(send: Send, status: int, content: object) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def web_app() -> Any:
    """The uvicorn factory of `web layer`: `shopbot serve`'s app, turns without a database."""
    from benchmarks.widget_load import bench_app

    app = bench_app()
    agent = app.state.backend.runner.agent
    plans = {text: plan(*events) for text, events in _captured().items()}
    numbers: dict[str, tuple[int, int]] = {}

    async def run_turn(conversation_id: str, incoming: Any) -> AsyncIterator[dict[str, Any]]:
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
            agent.on_stored(conversation_id, rows)  # as the commit of these rows would
            for row in rows:
                yield row

    agent.run_turn = run_turn  # the one thing replaced: the agent's turn
    return app


def _captured() -> Captured:
    return json.loads(Path(os.environ["FLOOR_TURNS"]).read_text())


def floor_app() -> FloorApp:
    """The uvicorn factory: the database and the captured turns from the environment."""
    per_step = os.environ.get("FLOOR_DESIGN") == PER_STEP
    return FloorApp(libpq(os.environ["SHOPBOT_DATABASE_URL"]), _captured(), per_step)


async def capture(url: str) -> Captured:
    """The events the agent stores for each message of the workload, keyed by message."""
    from sqlalchemy import text

    from db.engine import create_engine, session_factory
    from shopbot.app import build_agent, start_conversation
    from shopbot.config import Settings
    from shopbot.loop import CustomerText

    settings = Settings(database_url=url)
    engine = create_engine(url)
    agent = build_agent(settings, BenchModel(), session_factory(engine))
    cid = await start_conversation(agent.sessions, settings)
    for message in TURNS:
        async for _ in agent.run_turn(cid, CustomerText(message)):
            pass
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
    print(
        "| design | workers | conversations | turns | turns/s | p50 ms | p99 ms "
        "| CPU server | CPU postgres | CPU clients | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
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
                factory = f"benchmarks.widget_floor:{'web_app' if design == WEB else 'floor_app'}"
                for clients in [int(c) for c in args.clients.split(",")]:
                    url = template.clone()
                    try:
                        with psycopg.connect(libpq(url), autocommit=True) as conn:
                            conn.execute(TABLES)
                        with server(url, Path(tmp), workers, factory) as (base, pid):

                            def sample(pid: int = pid) -> dict[str, float]:
                                return {**cpu_seconds(pid), "clients": time.process_time()}

                            results: Results
                            results, cpu = asyncio.run(
                                load(
                                    base, clients, len(TURNS), args.think, args.seconds,
                                    args.warmup, sample,
                                )
                            )  # fmt: skip
                    finally:
                        template.drop(url)
                    print(report(design, workers, clients, results, args.seconds, cpu), flush=True)
    finally:
        template.close()


if __name__ == "__main__":
    main()
