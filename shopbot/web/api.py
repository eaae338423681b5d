"""Conversations over HTTP: start one, send messages, answer confirmations, read history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shopbot.app import start_conversation
from shopbot.loop import ConfirmationAnswer, CustomerText
from shopbot.web.backend import BackendDep
from shopbot.web.errors import ApiError, responses
from shopbot.web.history import fold_history
from shopbot.web.schemas import (
    NO_NUL,
    ConfirmationAnswerIn,
    ConversationCreated,
    ConversationView,
    CustomerMessageIn,
    NewConversation,
    TurnAccepted,
)

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ConversationToken",
    description="The token `POST /v1/conversations` returned; it opens that conversation only.",
)
ConversationId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]
ConfirmationId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def opened(
    conversation_id: ConversationId, credentials: Credentials, backend: BackendDep
) -> str:
    """The conversation id, once the bearer token has been checked against it.

    Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool."""
    backend.tokens.check(credentials.credentials if credentials else None, conversation_id)
    return conversation_id


Opened = Annotated[str, Depends(opened)]


@router.post(
    "",
    status_code=201,
    response_model=ConversationCreated,
    responses=responses(401, 413, 422, 429),
    summary="Start a conversation",
)
async def create_conversation(
    request: Request,
    backend: BackendDep,
    body: Annotated[NewConversation | None, Body()] = None,
) -> ConversationCreated:
    """Returns the conversation's token. A `customer_token` signed by the shop's site proves
    the customer up front."""
    address = request.client.host if request.client else "unknown"
    wait = await backend.limiter.hit(
        f"conversations:{address}", backend.web.conversations_per_ip_per_minute, 60
    )
    if wait is not None:
        raise ApiError(
            429, "rate_limited", "Too many new conversations; try again soon.", retry_after=wait
        )
    token = body.customer_token if body else None
    conversation_id = await start_conversation(
        backend.sessions, backend.settings, channel="web", customer_token=token
    )
    issued = backend.tokens.issue(conversation_id)
    return ConversationCreated(
        conversation_id=conversation_id,
        token=issued.token,
        token_expires_at=issued.expires_at,
        verified=token is not None,
    )


@router.get(
    "/{conversation_id}",
    response_model=ConversationView,
    responses=responses(401, 404, 422),
    summary="Read a conversation's history",
)
async def read_conversation(conversation_id: Opened, backend: BackendDep) -> ConversationView:
    """What the customer has seen so far; stream from `last_seq` to follow it."""
    info = await backend.store.conversation(conversation_id)
    if info is None:
        raise ApiError(404, "not_found", "No such conversation.")
    events, last_seq = await backend.store.history(conversation_id)
    now = backend.clock()
    messages, pending, person = fold_history(events, now)
    return ConversationView(
        conversation_id=conversation_id,
        status=info.status,
        verified=info.verified,
        turns=info.turns,
        busy=info.lease_until is not None and info.lease_until > now,
        last_seq=last_seq,
        messages=messages,
        pending_confirmation=pending,
        person=person,
    )


@router.post(
    "/{conversation_id}/messages",
    status_code=202,
    response_model=TurnAccepted,
    responses=responses(401, 404, 409, 413, 422, 429),
    summary="Send a customer message",
)
async def post_message(
    conversation_id: Opened, body: CustomerMessageIn, backend: BackendDep
) -> TurnAccepted:
    """Starts a turn; its events follow on the stream. One turn at a time per conversation
    (409 `conversation_busy`), and `messages_per_conversation_per_minute` (429 `rate_limited`:
    the statement that starts the turn checks both)."""
    limit = backend.settings.max_message_chars
    if len(body.text) > limit:
        raise ApiError(413, "message_too_long", f"Messages are limited to {limit} characters.")
    return await backend.runner.begin(conversation_id, CustomerText(body.text))


@router.post(
    "/{conversation_id}/confirmations/{confirmation_id}",
    status_code=202,
    response_model=TurnAccepted,
    responses=responses(401, 404, 409, 413, 422, 429),
    summary="Confirm or cancel a pending action",
)
async def answer_confirmation(
    conversation_id: Opened,
    confirmation_id: ConfirmationId,
    body: ConfirmationAnswerIn,
    backend: BackendDep,
) -> TurnAccepted:
    """`approve: true` runs exactly the action the customer was shown; `false` cancels it.
    Either way a turn starts and its events follow on the stream."""
    answer = ConfirmationAnswer(confirmation_id=confirmation_id, approve=body.approve)
    return await backend.runner.begin(conversation_id, answer)
