"""The floor's app: a bare ASGI app on psycopg that stores a widget turn's events, and no more.

`benchmarks/widget_floor.py` drives it and says what its two designs are. Three endpoints,
as the load generator uses them: start a conversation, post a message, follow the events
(SSE, resumable after `Last-Event-ID`). Other workers hear of stored events by NOTIFY.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString

import psycopg

from benchmarks.common import libpq
from benchmarks.widget_load import TURNS, log_gc_pauses

log = logging.getLogger(__name__)

PER_STEP = "per step"
"""`FLOOR_DESIGN` for the per-step design; anything else is one statement a turn."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SECRET = b"floor"
CHANNEL = "floor"
POOL_SIZE = 8
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
            stores.append(_step(kinds[start : i + 1], payloads[start : i + 1], parsed[start:i]))
            start = i + 1
    reply = next(p["text"] for k, p in zip(kinds, parsed, strict=True) if k == "reply")
    last = _step(kinds[start:], payloads[start:], parsed[start:])
    stores.append(
        Store(last.kinds, last.payloads, audit=last.audit, messages=[("assistant", reply)])
    )
    return stores


def _step(kinds: list[str], payloads: list[str], parsed: list[dict[str, Any]]) -> Store:
    """One step's commit; its action (after a thought, if any) names the tool and order."""
    at = next(i for i, p in enumerate(parsed) if p["kind"] == "action")
    action = parsed[at]
    order_id = action.get("args", {}).get("order_id")
    return Store(kinds, payloads, order_id, action.get("tool"), payloads[at])


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
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # The client sees only a turn that never ends: say why here.
            log.error("a turn failed", exc_info=error)

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
                        fulfillments = await conn.execute(
                            FULFILLMENTS, (store.order_id,), prepare=True
                        )
                        await fulfillments.fetchall()
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


def captured() -> Captured:
    """The captured turns the driver handed over (`FLOOR_TURNS`)."""
    return json.loads(Path(os.environ["FLOOR_TURNS"]).read_text())


def floor_app() -> FloorApp:
    """The uvicorn factory: the database and the captured turns from the environment."""
    log_gc_pauses()
    per_step = os.environ.get("FLOOR_DESIGN") == PER_STEP
    return FloorApp(libpq(os.environ["SHOPBOT_DATABASE_URL"]), captured(), per_step)
