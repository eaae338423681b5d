"""A conversation's events as server-sent events, resumable from any worker.

Each SSE event carries `id: <seq>`, `event: <kind>` and the event as JSON with its seq and
turn; `reply_chunk` events (a reply while it is written) are live only and carry no id. The stream starts after `Last-Event-ID` (what a browser's EventSource sends when it
reconnects) or `?after=`, replays the stored events from there and then follows new ones, so a
reconnect neither loses nor repeats an event. It ends after `sse_max_seconds`, and when its
worker shuts down (cleanly, with the last chunk sent); clients resume.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from shopbot.web.api import ConversationId, Credentials
from shopbot.web.backend import Backend, BackendDep
from shopbot.web.errors import responses
from shopbot.web.schemas import NO_NUL

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
BATCH = 200
STREAM_GRACE_SECONDS = 2.0
"""How long a stream has to end by itself once its worker shuts down."""

STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`text/event-stream`: `id: <seq>`, `event: <kind>`, `data: <event JSON>`; "
        "`reply_chunk` (live pieces of a reply, never stored) has no `id`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **responses(401, 422),
}


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
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="Start after this seq.")] = 0,
    last_event_id: Annotated[
        str,
        Header(
            pattern=r"^[0-9]{0,9}$",
            description="The last seq received (sent by EventSource on reconnect); "
            "takes precedence over `after`.",
        ),
    ] = "",
) -> EventSourceResponse:
    start = int(last_event_id) if last_event_id else after
    return EventSourceResponse(
        _events(backend, conversation_id, start),
        ping=backend.web.sse_ping_seconds,
        headers={"Cache-Control": "no-store"},
        # When the server shuts down, sse-starlette sets this and, after the grace period,
        # cuts the stream; `create_app` closes the feed on it, so the stream ends first.
        shutdown_event=backend.streams_closing,
        shutdown_grace_period=STREAM_GRACE_SECONDS,
    )


async def _events(
    backend: Backend, conversation_id: str, after: int
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
                    data=json.dumps(draft, separators=(",", ":")), event="reply_chunk"
                )
            # Events handed over (this worker's commits, other workers' NOTIFYs) need no read.
            events = subscription.take_stored(after)
            if events is None:
                # Shielded: a client leaving mid-read must not cancel the query, which would
                # make the driver cancel it on the server and throw the pooled connection away.
                events = await asyncio.shield(backend.store.after(conversation_id, after, BATCH))
            for stored in events:
                yield ServerSentEvent(
                    data=json.dumps(stored.wire(), separators=(",", ":")),
                    event=stored.kind,
                    id=str(stored.seq),
                )
                after = stored.seq
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
