"""The Parcelo sandbox: a real ASGI app implementing the label API, with injectable faults.

Like a payment provider's test mode, it behaves as the real carrier does: bearer auth, JSON
errors, idempotency keys, real PDF labels, and, when asked, the failures a client must
survive (`tools.carrier.faults`). ShopBot talks to it in process by default
(`tools.carrier.transport.carrier_http_client`); `shopbot sandbox carrier --port N` serves it
on loopback, with the OpenAPI document at `/openapi.json` and its rendering at `/docs`.

    app = create_sandbox_app(Faults(error_rate=0.2))
    sandbox_state(app).labels        # every label issued, for test assertions
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from tools.carrier.contract import (
    API_PREFIX,
    CARRIER_NAME,
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    IDEMPOTENT_REPLAY_HEADER,
    Error,
    ErrorCode,
    Label,
    LabelRequest,
)
from tools.carrier.faults import ConnectionDropped, Faults
from tools.carrier.openapi import API_DESCRIPTION, COMMON_RESPONSES, ERROR_RESPONSES
from tools.carrier.pdf import render_label_pdf
from tools.carrier.store import IdempotencyMismatch, LabelStore

SANDBOX_API_KEY = "sandbox-key"
"""The sandbox's default API key; ShopBot's default `carrier_api_key` matches it."""


@dataclass(frozen=True)
class RecordedRequest:
    """One API request the sandbox received (before faults or auth were applied)."""

    method: str
    path: str
    idempotency_key: str | None


@dataclass
class SandboxState:
    """Everything the sandbox knows, at `app.state.carrier`; tests read and script it."""

    store: LabelStore
    faults: Faults
    api_key: str
    requests: list[RecordedRequest] = field(default_factory=list[RecordedRequest])
    """Every API request received, in order, including the ones a fault answered."""

    @property
    def labels(self) -> dict[str, Label]:
        """Every label issued, by id."""
        return self.store.labels

    def reset(self) -> None:
        """Forget labels, keys, recorded requests and scripted faults."""
        self.store.clear()
        self.faults.clear()
        self.requests.clear()


class ApiError(Exception):
    """Raised by the sandbox's handlers; answered as a JSON `Error`."""

    def __init__(
        self, status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code: ErrorCode = code
        self.message = message
        self.headers = headers


def create_sandbox_app(
    faults: Faults | None = None,
    *,
    api_key: str = SANDBOX_API_KEY,
    data_dir: Path | None = None,
) -> FastAPI:
    """A new sandbox with its own labels: in memory, or persisted in `data_dir` if given."""
    app = FastAPI(
        title=f"{CARRIER_NAME} Labels API (sandbox)",
        version="1.0.0",
        description=API_DESCRIPTION,
        openapi_tags=[{"name": "labels", "description": "Create, read and void return labels."}],
        redoc_url=None,
    )
    app.state.carrier = SandboxState(LabelStore(data_dir), faults or Faults(), api_key)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(_router, prefix=API_PREFIX)
    return app


def sandbox_state(app: FastAPI) -> SandboxState:
    """The state of a sandbox app, typed."""
    state: SandboxState = app.state.carrier
    return state


def _state(request: Request) -> SandboxState:
    return sandbox_state(request.app)


State = Annotated[SandboxState, Depends(_state)]
_bearer = HTTPBearer(
    scheme_name="ParceloApiKey",
    description="Your API key as a bearer token: `Authorization: Bearer <key>`.",
    auto_error=False,
)


async def _inject_faults(request: Request, state: State) -> None:
    state.requests.append(
        RecordedRequest(request.method, request.url.path, request.headers.get(IDEMPOTENCY_HEADER))
    )
    if state.faults.latency:
        await anyio.sleep(state.faults.latency)
    fault = state.faults.before_request()
    if fault is None:
        return
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
    if fault.status == 429:
        raise ApiError(429, "rate_limited", "Too many requests; retry later.", headers)
    code: ErrorCode = "internal_error" if fault.status == 500 else "unavailable"
    raise ApiError(fault.status, code, f"Sandbox fault: HTTP {fault.status}.", headers)


async def _authorize(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    given = credentials.credentials.encode() if credentials is not None else b""
    if not secrets.compare_digest(given, state.api_key.encode()):
        message = "Missing or invalid API key; send `Authorization: Bearer <key>`."
        raise ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


_router = APIRouter(
    tags=["labels"],
    dependencies=[Depends(_inject_faults), Depends(_authorize)],
    responses=COMMON_RESPONSES,
)


@_router.post(
    "/labels",
    status_code=201,
    response_model=Label,
    summary="Create a return label",
    response_description="The new label; it is charged unless voided.",
    responses={
        200: {
            "model": Label,
            "description": "The key was used before with this body: the "
            "same label, with `Idempotent-Replayed: true`. No second label is bought.",
        },
        409: ERROR_RESPONSES[409],
    },
)
async def create_label(
    body: LabelRequest,
    request: Request,
    response: Response,
    state: State,
    idempotency_key: Annotated[
        str,
        Header(
            alias=IDEMPOTENCY_HEADER,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Required. One key buys at most one label: resending the same key "
            "and body returns the first label; the same key with another body is a 409. "
            "Derive it from your own record (e.g. `shop-return-1042-label-1`) so that a retry "
            "after a crash sends the same key.",
        ),
    ],
) -> Label | Response:
    """Buy a prepaid return label and store it; the PDF is at the label's `pdf_url`."""
    try:
        label, created = state.store.create(body, idempotency_key, datetime.now(UTC))
    except IdempotencyMismatch:
        message = f"{IDEMPOTENCY_HEADER} was already used with a different request body."
        raise ApiError(409, "idempotency_conflict", message) from None
    if not created:
        response.status_code = 200
        response.headers[IDEMPOTENT_REPLAY_HEADER] = "true"
        return label
    match state.faults.after_create():
        case None:
            return label
        case "error":
            raise ApiError(500, "internal_error", "Sandbox fault after the label was created.")
        case "disconnect":
            return _DroppedResponse()
        case "hang":
            with anyio.move_on_after(state.faults.hang_seconds):
                await _disconnected(request)
            raise ApiError(500, "internal_error", "Sandbox fault: hung after creating the label.")


@_router.get(
    "/labels/{label_id}",
    response_model=Label,
    summary="Get a label",
    response_description="The label.",
    responses={404: ERROR_RESPONSES[404]},
)
async def get_label(label_id: str, state: State) -> Label:
    """The label as it is now (`status` becomes `voided` once it is voided)."""
    return _find(state, label_id)


@_router.get(
    "/labels/{label_id}/pdf",
    response_class=Response,
    summary="Download the printable label",
    responses={
        200: {
            "description": "An A6 PDF: carrier, service, sender, recipient, a Code 128 barcode "
            "of the tracking number, the return reference. Voided labels are stamped VOID.",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        404: ERROR_RESPONSES[404],
    },
)
async def get_label_pdf(label_id: str, state: State) -> Response:
    """The label as a PDF to print and stick on the parcel."""
    label = _find(state, label_id)
    pdf = await anyio.to_thread.run_sync(render_label_pdf, label)
    disposition = f'inline; filename="{label.tracking_number}.pdf"'
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})


@_router.post(
    "/labels/{label_id}/void",
    response_model=Label,
    summary="Void a label",
    response_description="The voided label.",
    responses={404: ERROR_RESPONSES[404]},
)
async def void_label(label_id: str, state: State) -> Label:
    """Cancel an unused label so it is not charged. Voiding a voided label returns it as is."""
    label = state.store.void(label_id, datetime.now(UTC))
    if label is None:
        raise _not_found(label_id)
    return label


def _find(state: SandboxState, label_id: str) -> Label:
    label = state.labels.get(label_id)
    if label is None:
        raise _not_found(label_id)
    return label


def _not_found(label_id: str) -> ApiError:
    return ApiError(404, "not_found", f"No label with id {label_id!r}.")


async def _disconnected(request: Request) -> None:
    """Wait until the client goes away (the body has been read, so nothing else arrives)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _DroppedResponse(Response):
    """Starts a 201 response, then drops the connection (the `disconnect` fault)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        raise ConnectionDropped("sandbox fault: connection dropped after the label was created")


def _error_response(
    status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = Error(code=code, message=message).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error_response(exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems: list[str] = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where}: {error['msg']}")
    return _error_response(422, "invalid_request", "; ".join(problems))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code: ErrorCode = "not_found" if exc.status_code == 404 else "invalid_request"
    headers: dict[str, Any] | None = getattr(exc, "headers", None)
    return _error_response(exc.status_code, code, str(exc.detail), headers)


__all__ = [
    "SANDBOX_API_KEY",
    "RecordedRequest",
    "SandboxState",
    "create_sandbox_app",
    "sandbox_state",
]
