"""The shop's side of a conversation: everything the agent did, for staff only.

    GET /v1/staff/conversations/{id}          every stored event and every step's audit row
                                              (raw model output, verdicts, observations, timings)
    GET /v1/staff/conversations/{id}/events   the stream of every event, drafts included

Two credentials open them:

- a staff member signed in at `/staff/login` (the session cookie, `shopbot.web.sessions`),
  for the staff pages in a browser;
- `Authorization: Bearer <SHOPBOT_WEB__STAFF_TOKEN>`, the machine credential for the shop's
  own tools (a header only: a token in a URL ends up in logs).

A conversation's token opens nothing here, and neither staff credential opens a customer
route. With no staff token configured and no staff session, these routes answer 404, as if
absent.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse

from shopbot.events import EVENT_ADAPTER
from shopbot.web.api import ConversationId
from shopbot.web.audience import STAFF
from shopbot.web.backend import BackendDep
from shopbot.web.errors import ApiError, ErrorBody
from shopbot.web.schemas import AuditStep, StaffConversationView
from shopbot.web.sessions import Expired, SignedIn
from shopbot.web.signin import current_staff
from shopbot.web.stream import After, LastEventId, event_stream, sse_doc, start_after

staff_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="StaffToken",
    description="The shop's staff token (`SHOPBOT_WEB__STAFF_TOKEN`); it opens every "
    "conversation's staff view, and no customer route.",
)
StaffCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(staff_bearer)]


async def staff_only(request: Request, credentials: StaffCredentials, backend: BackendDep) -> None:
    """Let staff through: a signed-in staff member, or the staff token. 404 when no staff
    token is configured and no staff session was offered; 401 otherwise."""
    session = await current_staff(request)
    if isinstance(session, SignedIn):
        return
    expected = backend.web.staff_token
    given = credentials.credentials if credentials else ""
    if expected is not None and hmac.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    ):
        return
    if isinstance(session, Expired):
        raise ApiError(401, "invalid_token", "The staff session has ended: sign in again.")
    if expected is None:
        raise ApiError(404, "not_found", "Not found.")
    raise ApiError(401, "invalid_token", "The staff token is missing or not valid.")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "Neither the staff token nor a staff session: missing, not valid or ended.",
    },
    404: {
        "model": ErrorBody,
        "description": "No such conversation, or no staff token is configured (and no staff "
        "member is signed in).",
    },
    422: {"model": ErrorBody, "description": "The request does not match the schema."},
}
router = APIRouter(
    prefix="/v1/staff/conversations", tags=["staff"], dependencies=[Depends(staff_only)]
)


async def _existing(conversation_id: ConversationId, backend: BackendDep) -> str:
    if await backend.store.conversation(conversation_id) is None:
        raise ApiError(404, "not_found", "No such conversation.")
    return conversation_id


Existing = Annotated[str, Depends(_existing)]


@router.get(
    "/{conversation_id}",
    response_model=StaffConversationView,
    responses=ERRORS,
    summary="Read a conversation as staff",
)
async def read_for_staff(
    conversation_id: ConversationId, backend: BackendDep
) -> StaffConversationView:
    """Every stored event (steps, verdicts, observations included) and the audit log."""
    info = await backend.store.conversation(conversation_id)
    if info is None:
        raise ApiError(404, "not_found", "No such conversation.")
    events, last_seq = await backend.store.history(conversation_id, kinds=None)
    steps = await backend.store.audit(conversation_id)
    now = backend.clock()
    return StaffConversationView(
        conversation_id=conversation_id,
        status=info.status,
        customer_id=info.customer_id,
        turns=info.turns,
        busy=info.lease_until is not None and info.lease_until > now,
        last_seq=last_seq,
        events=[e.wire() for e in events],
        steps=[AuditStep.model_validate(step) for step in steps],
    )


STAFF_KINDS = sorted({*EVENT_ADAPTER.json_schema()["discriminator"]["mapping"]})
STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: sse_doc(
        "`text/event-stream`: every event as stored (`id: <seq>`, `event: <kind>`, `data: "
        "{seq, turn, kind, ...}`) and the live `reply_chunk` pieces (no `id`).",
        STAFF_KINDS,
        {
            "type": "object",
            "properties": {
                "seq": {"type": "integer"},
                "turn": {"type": "integer"},
                "kind": {"type": "string", "enum": STAFF_KINDS},
            },
            "required": ["kind"],
        },
    ),
    **ERRORS,
}


@router.get(
    "/{conversation_id}/events",
    response_class=EventSourceResponse,
    responses=STREAM_DOC,
    summary="Stream a conversation's events as staff",
)
async def stream_for_staff(
    conversation_id: Existing,
    backend: BackendDep,
    after: After = 0,
    last_event_id: LastEventId = "",
) -> EventSourceResponse:
    """Every event as it is stored, the agent's steps included, and the reply drafts."""
    return event_stream(backend, conversation_id, start_after(after, last_event_id), STAFF)
