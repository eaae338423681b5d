"""Every error the API answers, as `{"error": {"code": ..., "message": ...}}` with a stable code.

    code                     status  when
    invalid_token            401     the conversation token is missing, forged, expired or for
                                     another conversation (on staff routes: not the staff token)
    invalid_identity         401     the shop's signed customer identity is forged or expired
    not_found                404     no such route or conversation
    method_not_allowed       405
    conversation_busy        409     ShopBot is still answering this conversation's last message
    no_pending_confirmation  409     the confirmation was answered, superseded or has expired
    confirmation_withdrawn   409     the customer wrote instead of answering it: it was
                                     withdrawn, and approving it now does nothing
    message_too_long         413     longer than `max_message_chars`; nothing was stored
    payload_too_large        413     the request body is larger than `max_body_bytes`
    validation_error         422     the request does not match the schema (or is not JSON), or
                                     holds text no database stores (a NUL character or a
                                     lone surrogate), said in plain words
    rate_limited             429     too many requests; `Retry-After` says when to try again
    internal_error           500

ShopBot's own exceptions are mapped here, in one place.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shopbot.errors import (
    ConversationBusy,
    ConversationError,
    ConversationNotFound,
    MessageTooLong,
    NoPendingConfirmation,
    RateLimited,
    ShopBotError,
    WithdrawnConfirmation,
)
from shopbot.identity import InvalidIdentity
from shopbot.redact import mask_emails
from shopbot.web.schemas import IN_WORDS
from shopbot.web.tokens import InvalidToken

log = logging.getLogger(__name__)

ErrorCode = Literal[
    "invalid_token",
    "invalid_identity",
    "not_found",
    "method_not_allowed",
    "conversation_busy",
    "no_pending_confirmation",
    "confirmation_withdrawn",
    "message_too_long",
    "payload_too_large",
    "validation_error",
    "rate_limited",
    "internal_error",
]


class ErrorDetail(BaseModel):
    code: ErrorCode
    """Stable: clients branch on it."""
    message: str
    """For people; may change."""


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An error answer decided by the API itself (limits, missing conversations)."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code: ErrorCode = code
        self.message = message
        self.retry_after = retry_after
        self.headers = dict(headers or {})


# Most specific first: the first matching class decides.
_MAPPED: list[tuple[type[ShopBotError], int, ErrorCode]] = [
    (InvalidToken, 401, "invalid_token"),
    (InvalidIdentity, 401, "invalid_identity"),
    (ConversationBusy, 409, "conversation_busy"),
    (WithdrawnConfirmation, 409, "confirmation_withdrawn"),
    (NoPendingConfirmation, 409, "no_pending_confirmation"),
    (MessageTooLong, 413, "message_too_long"),
    (ConversationNotFound, 404, "not_found"),
    # Input the conversation cannot take (the schema refuses what it knows of first).
    (ConversationError, 422, "validation_error"),
]
_BY_STATUS: dict[int, ErrorCode] = {
    401: "invalid_token",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(error: ApiError) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=error.code, message=error.message))
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return JSONResponse(body.model_dump(), status_code=error.status, headers=headers)


def from_shopbot_error(exc: ShopBotError) -> ApiError:
    if isinstance(exc, RateLimited):
        return ApiError(429, "rate_limited", str(exc), retry_after=exc.retry_after)
    for kind, status, code in _MAPPED:
        if isinstance(exc, kind):
            return ApiError(status, code, str(exc))
    log.error("unmapped ShopBot error: %s", mask_emails(repr(exc)))
    return ApiError(500, "internal_error", "Something went wrong on our side.")


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def shopbot_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ShopBotError)
        return error_response(from_shopbot_error(exc))

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(ApiError(422, "validation_error", _describe(exc.errors())))

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode: one more request off the schema.
            return error_response(ApiError(422, "validation_error", str(exc.detail)))
        code = _BY_STATUS.get(exc.status_code, "internal_error")
        return error_response(ApiError(exc.status_code, code, str(exc.detail), headers=exc.headers))

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(ApiError(500, "internal_error", "Something went wrong on our side."))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ShopBotError, shopbot_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _describe(errors: Any) -> str:
    parts: list[str] = []
    for error in list(errors)[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'request'}: {_in_words(error)}")
    return "; ".join(parts) or "The request is not valid."


def _in_words(error: Any) -> str:
    """The error's message, in plain words where pydantic's would quote a pattern or speak of
    raw data (a lone surrogate, which no database stores)."""
    if error.get("type") == "string_unicode":
        return "contains a character that cannot be stored (an unpaired surrogate)"
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in IN_WORDS:
        return IN_WORDS[pattern]
    return str(error.get("msg", "invalid"))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error answers a route may give."""
    described = {
        401: "The conversation token (or customer identity) is not valid.",
        404: "No such conversation.",
        409: "The conversation cannot take this now.",
        413: "The message or request body is too large.",
        422: "The request does not match the schema.",
        429: "Too many requests; see Retry-After.",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": described[status]}
        if status == 429:
            entry["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
        out[status] = entry
    return out
