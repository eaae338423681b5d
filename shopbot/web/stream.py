"""A conversation's events as server-sent events, resumable from any worker.

Each SSE event carries `id: <seq>`, `event: <kind>` and the event as JSON with its seq and
turn; `reply_chunk` events (a reply while it is written) are live only and carry no id. The
stream starts after `Last-Event-ID` (what a browser's EventSource sends when it reconnects)
or `?after=`, replays the stored events from there and then follows new ones, so a reconnect
neither loses nor repeats an event. It ends after `sse_max_seconds`, and when its worker
shuts down (cleanly, with the last chunk sent); clients resume.

A customer's stream carries what the customer may see of each event (`shopbot.web.audience`);
seqs of events kept from them are skipped, so `Last-Event-ID` works alike on both streams.
The staff stream (`shopbot.web.staff`) carries everything.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from shopbot.web.api import ConversationId, Credentials
from shopbot.web.audience import CUSTOMER, CUSTOMER_KINDS, Audience
from shopbot.web.backend import Backend, BackendDep
from shopbot.web.errors import responses
from shopbot.web.schemas import CUSTOMER_STREAM, NO_NUL

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
BATCH = 200
STREAM_GRACE_SECONDS = 2.0
"""How long a stream has to end by itself once its worker shuts down."""


def sse_doc(description: str, kinds: Sequence[str], data: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI answer of an event stream: `schema` describes one server-sent event (as
    OpenAPI 3.2's `itemSchema` does), its `data` the JSON of one of `kinds`."""
    event = {
        "type": "object",
        "description": "One server-sent event.",
        "properties": {
            "id": {"type": "string", "description": "The event's seq; absent on reply_chunk."},
            "event": {"type": "string", "enum": list(kinds)},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
            "retry": {"type": "integer"},
        },
        "required": ["event", "data"],
    }
    return {"description": description, "content": {"text/event-stream": {"schema": event}}}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its definitions written in place (no `$ref` to resolve)."""
    schema = model.model_json_schema(mode="serialization")
    defs: dict[str, Any] = schema.pop("$defs", {})

    def inline(node: object) -> object:
        if isinstance(node, dict):
            found = cast(dict[str, object], node)
            ref = found.get("$ref")
            if isinstance(ref, str):
                return inline(defs[ref.rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in found.items()}
        if isinstance(node, list):
            return [inline(value) for value in cast(list[object], node)]
        return node

    return cast(dict[str, Any], inline(schema))


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: sse_doc(
        "`text/event-stream`: `id: <seq>`, `event: <kind>`, `data: <event JSON>`, only the "
        "kinds a customer may see; `reply_chunk` (live pieces of a reply, never stored) has "
        "no `id`.",
        CUSTOMER_KINDS,
        {"oneOf": [inline_schema(model) for model in CUSTOMER_STREAM]},
    ),
    **responses(401, 422),
}


After = Annotated[int, Query(ge=0, le=2**31 - 1, description="Start after this seq.")]
LastEventId = Annotated[
    str,
    Header(
        pattern=r"^[0-9]{0,9}$",
        description="The last seq received (sent by EventSource on reconnect); "
        "takes precedence over `after`.",
    ),
]


def start_after(after: int, last_event_id: str) -> int:
    return int(last_event_id) if last_event_id else after


async def _opened_for_stream(
    conversation_id: ConversationId,
    credentials: Credentials,
    backend: BackendDep,
    access_token: Annotated[
        str | None,
        Query(
            pattern=NO_NUL,
            description="The conversation token, for clients that cannot send headers.",
        ),
    ] = None,
) -> str:
    token = credentials.credentials if credentials else access_token
    backend.tokens.check(token, conversation_id)
    return conversation_id


@router.get(
    "/{conversation_id}/events",
    response_class=EventSourceResponse,
    responses=STREAM_DOC,
    summary="Stream a conversation's events",
)
async def stream_events(
    conversation_id: Annotated[str, Depends(_opened_for_stream)],
    backend: BackendDep,
    after: After = 0,
    last_event_id: LastEventId = "",
) -> EventSourceResponse:
    """What the customer sees, as it happens: messages, replies (and their drafts),
    confirmations, a hand-over, turn ends. The agent's steps are on the staff stream."""
    return event_stream(backend, conversation_id, start_after(after, last_event_id), CUSTOMER)


def event_stream(
    backend: Backend, conversation_id: str, start: int, audience: Audience
) -> EventSourceResponse:
    """The conversation's events after `start`, as `audience` may see them."""
    return EventSourceResponse(
        _events(backend, conversation_id, start, audience),
        ping=backend.web.sse_ping_seconds,
        headers={"Cache-Control": "no-store"},
        # When the server shuts down, sse-starlette sets this and, after the grace period,
        # cuts the stream; `create_app` closes the feed on it, so the stream ends first.
        shutdown_event=backend.streams_closing,
        shutdown_grace_period=STREAM_GRACE_SECONDS,
    )


async def _events(
    backend: Backend, conversation_id: str, after: int, audience: Audience
) -> AsyncIterator[ServerSentEvent]:
    web = backend.web
    deadline = time.monotonic() + web.sse_max_seconds
    yield ServerSentEvent(retry=web.sse_retry_ms, comment="shopbot")
    with backend.feed.subscribe(conversation_id) as subscription:
        woken = subscription.woken
        while True:
            # Clear before reading: a wake-up during the read is kept for the next round.
            woken.clear()
            # Drafts first: a reply's pieces were all handed out before the reply was stored.
            for draft in subscription.take_drafts():
                yield ServerSentEvent(
                    data=json.dumps(audience.draft(draft), separators=(",", ":")),
                    event="reply_chunk",
                )
            # Events handed over (this worker's commits, other workers' NOTIFYs) need no read.
            events = subscription.take_stored(after)
            if events is None:
                # Shielded: a client leaving mid-read must not cancel the query, which would
                # make the driver cancel it on the server and throw the pooled connection away.
                events = await asyncio.shield(backend.store.after(conversation_id, after, BATCH))
            for stored in events:
                after = stored.seq
                shown = audience.stored(stored)
                if shown is None:
                    continue
                yield ServerSentEvent(
                    data=json.dumps(shown, separators=(",", ":")),
                    event=str(shown.get("kind", stored.kind)),
                    id=str(stored.seq),
                )
            if len(events) == BATCH:
                subscription.stale = True  # more wait in the table
                continue
            left = deadline - time.monotonic()
            if left <= 0 or backend.feed.closing:
                return
            try:
                await asyncio.wait_for(woken.wait(), min(web.sse_poll_seconds, left))
            except TimeoutError:
                subscription.stale = True  # a wake-up may have been lost: look
