"""The staff inbox as it changes: `GET /staff/inbox/events`, server-sent events.

Each `inbox` event carries the list's HTML (`{"html": ...}`, rendered by the page's own
template, `inbox_rows.html`), sent when it opens and then whenever it changes: after a
conversation's news reaches this worker's feed (`EventFeed.watch_inbox`: a turn here, a
NOTIFY from another worker on PostgreSQL, the event table's tail on SQLite), and every
`sse_poll_seconds` (the waiting times grow; a lost wake-up only delays). News comes in
bursts, a turn's steps one commit after another: the stream waits `SETTLE_SECONDS` after
a wake-up and reads the inbox once for the lot. An escalation reaches an open inbox in well
under a second. The stream ends after `sse_max_seconds` or when its worker shuts down;
EventSource reconnects and gets the list afresh. It also ends once its credential no longer
opens it (`Allowed`, asked before each read): a staff member who signs out, or whose session
ends or account goes, stops receiving customers' data at the next read, not minutes later.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from sse_starlette import EventSourceResponse, ServerSentEvent

from shopbot.web.backend import Backend
from shopbot.web.inbox import Inbox
from shopbot.web.inbox_query import InboxQuery
from shopbot.web.pages import fragment
from shopbot.web.stream import STREAM_GRACE_SECONDS

__all__ = ["INBOX_LIMIT", "SETTLE_SECONDS", "Allowed", "inbox_context", "inbox_stream"]

INBOX_LIMIT = 100
SETTLE_SECONDS = 0.15
"""How long a wake-up waits for the rest of its burst before the inbox is read."""
MARK_LABELS = {
    "denied": "Denied action",
    "flagged": "Grounding flag",
    "confirming": "Awaiting confirmation",
}
"""How a row names what it has beside its status (`LiveConversation.marks`)."""
Allowed = Callable[[], Awaitable[bool]]
"""Whether the stream's credential still opens it."""


def inbox_of(backend: Backend) -> Inbox:
    return Inbox(backend.store.engine, backend.runner.agent.pii.email_hash)


async def inbox_context(backend: Backend, query: InboxQuery) -> dict[str, object]:
    """What `inbox_rows.html` shows for `query`, read now."""
    now = backend.clock()
    conversations, total = await inbox_of(backend).live(query, now, INBOX_LIMIT)
    return {
        "conversations": conversations,
        "total": total,
        "now": now,
        "query": query,
        "marks": MARK_LABELS,
    }


def inbox_stream(backend: Backend, query: InboxQuery, allowed: Allowed) -> EventSourceResponse:
    return EventSourceResponse(
        _renderings(backend, query, allowed),
        ping=backend.web.sse_ping_seconds,
        headers={"Cache-Control": "no-store"},
        shutdown_event=backend.streams_closing,
        shutdown_grace_period=STREAM_GRACE_SECONDS,
    )


async def _renderings(
    backend: Backend, query: InboxQuery, allowed: Allowed
) -> AsyncIterator[ServerSentEvent]:
    web = backend.web
    deadline = time.monotonic() + web.sse_max_seconds
    yield ServerSentEvent(retry=web.sse_retry_ms, comment="shopbot inbox")
    sent = None
    # Watching before the first read: news that comes during it wakes the next one.
    with backend.feed.watch_inbox() as watch:
        while True:
            watch.woken.clear()
            if not await allowed():
                return  # EventSource comes back, and is refused
            # Shielded: a client leaving mid-read must not cancel the query (see stream.py).
            html = fragment("inbox_rows.html", await asyncio.shield(inbox_context(backend, query)))
            if html != sent:
                sent = html
                yield ServerSentEvent(data=json.dumps({"html": html}), event="inbox")
            left = deadline - time.monotonic()
            if left <= 0 or backend.feed.closing:
                return
            try:
                await asyncio.wait_for(watch.woken.wait(), min(web.sse_poll_seconds, left))
            except TimeoutError:
                continue
            await asyncio.sleep(SETTLE_SECONDS)
