"""`LabelClient`: ShopBot's client for the carrier's label API (`tools.carrier.contract`).

    client = LabelClient(http, api_key=settings.carrier_api_key.get_secret_value())
    key = idempotency_key_for_return(ret.id, ret.uid)
    label = await client.create_label(request, idempotency_key=key)
    pdf = await client.label_pdf(label.id)

The `httpx.AsyncClient` is passed in (`tools.carrier.transport.carrier_http_client` builds
one for the embedded sandbox or a real URL), so tests drive the same code through ASGI or
loopback. Every call retries connection errors, timeouts, 5xx and 429 with exponential
backoff and full jitter, honouring `Retry-After`, until `max_attempts` or the `deadline`
(seconds for the whole call, retries and waits included) runs out. Creates are safe to
retry because they carry an idempotency key; `get` and `void` are idempotent by nature.
Failures come out as the typed `tools.carrier.errors`, mapped in `_send` and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from tools.carrier.contract import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    LABELS_PATH,
    Label,
    LabelRequest,
    label_path,
)
from tools.carrier.errors import (
    CarrierAuthError,
    CarrierError,
    CarrierProtocolError,
    CarrierRejected,
    CarrierUnavailable,
    IdempotencyConflict,
    InvalidLabelRequest,
    LabelNotFound,
)
from tools.carrier.retry import Backoff, parse_retry_after

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

log = logging.getLogger("tools.carrier")

DEFAULT_BACKOFF = Backoff()
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.ProtocolError, TimeoutError)


def idempotency_key_for_return(
    return_id: int, uid: str, *, generation: int = 1, namespace: str = "shopbot"
) -> str:
    """The idempotency key for the label of a return: `shopbot-return-1042-<uid>-label-1`.

    It is derived from the return, never drawn at the call, so every retry of the create,
    including one made after a crash by a process that only has the return row, sends the
    same key and gets the same label back instead of buying a second one. `uid` is the
    return's random id (`db.Return.uid`): return ids restart after a reseed or a restored
    backup and every shop has a return 1, so a key made of the id alone would get a new
    return the label the carrier sold for an old one. `generation` is for the rare
    deliberate second label (the first was voided); `namespace` names the caller.
    """
    if return_id < 1 or generation < 1:
        raise ValueError("return_id and generation must be positive")
    if not re.fullmatch(r"[0-9A-Za-z]{8,64}", uid):
        raise ValueError(f"uid {uid!r} is not 8-64 letters and digits")
    key = f"{namespace}-return-{return_id}-{uid}-label-{generation}"
    if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        raise ValueError(f"namespace {namespace!r} makes an invalid idempotency key")
    return key


class LabelClient:
    """Creates, reads and voids return labels with the carrier, within a deadline."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str | SecretStr,
        base_url: str | None = None,
        deadline: float = 10.0,
        attempt_timeout: float = 4.0,
        max_attempts: int = 4,
        backoff: Backoff = DEFAULT_BACKOFF,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """`base_url` None means the `http` client's own `base_url`.

        `deadline` bounds a whole call, `attempt_timeout` one request; `sleep`, `clock` and
        `rng` are injectable so tests neither wait nor depend on chance.
        """
        if deadline <= 0 or attempt_timeout <= 0 or max_attempts < 1:
            raise ValueError("deadline and attempt_timeout must be positive, max_attempts >= 1")
        self._http = http
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        self._base_url = base_url.rstrip("/") if base_url is not None else ""
        self._deadline = deadline
        self._attempt_timeout = attempt_timeout
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    async def create_label(self, request: LabelRequest, *, idempotency_key: str) -> Label:
        """Buy the label for `request`; with the same key, every retry returns the same label."""
        body = request.model_dump(mode="json")
        headers = {IDEMPOTENCY_HEADER: idempotency_key}
        return await self._send("POST", LABELS_PATH, _label, json=body, headers=headers)

    async def get_label(self, label_id: str) -> Label:
        """The label as the carrier has it now."""
        return await self._send("GET", label_path(quote(label_id, safe="")), _label)

    async def label_pdf(self, label_id: str) -> bytes:
        """The printable label, as PDF bytes."""
        return await self._send("GET", f"{label_path(quote(label_id, safe=''))}/pdf", _pdf)

    async def void_label(self, label_id: str) -> Label:
        """Cancel an unused label; voiding a voided label is not an error."""
        return await self._send("POST", f"{label_path(quote(label_id, safe=''))}/void", _label)

    async def _send(
        self,
        method: str,
        path: str,
        decode: Callable[[httpx.Response], T],
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> T:
        """Send with retries and decode the answer: the one place errors are mapped."""
        what = f"{method} {path}"
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            remaining = self._deadline - (self._clock() - started)
            cause: Exception | None = None
            response: httpx.Response | None = None
            retry_after: float | None = None
            try:
                async with asyncio.timeout(min(self._attempt_timeout, remaining)):
                    response = await self._http.request(
                        method,
                        self._base_url + path,
                        json=json,
                        headers={**self._headers, **(headers or {})},
                    )
            except _RETRYABLE_ERRORS as exc:
                cause = exc
                last = _describe(exc)
            except httpx.HTTPError as exc:
                raise CarrierProtocolError(f"The carrier request {what} failed: {exc}") from exc
            else:
                if response.is_success:
                    try:
                        return decode(response)
                    except (ValidationError, ValueError) as exc:
                        message = f"The carrier's answer to {what} does not follow the contract."
                        raise CarrierProtocolError(
                            message, status_code=response.status_code
                        ) from exc
                if not (response.status_code == 429 or response.status_code >= 500):
                    raise _rejection(what, response)
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), datetime.now(UTC)
                )
                last = f"HTTP {response.status_code}"

            delay = (
                retry_after if retry_after is not None else self._backoff.delay(attempt, self._rng)
            )
            remaining = self._deadline - (self._clock() - started)
            if attempt >= self._max_attempts or delay >= remaining:
                status = response.status_code if response is not None else None
                body = _error_body(response) if response is not None else None
                message = (
                    f"The carrier is unavailable: {what} failed {attempt} time(s) within "
                    f"{self._clock() - started:.1f}s (last: {last}). Try again later."
                )
                raise CarrierUnavailable(
                    message,
                    attempts=attempt,
                    retry_after=retry_after,
                    status_code=status,
                    carrier_code=body.code if body is not None else None,
                ) from cause
            log.warning("carrier %s failed (%s); retry %d in %.2fs", what, last, attempt, delay)
            await self._sleep(delay)


def _label(response: httpx.Response) -> Label:
    return Label.model_validate_json(response.content)


def _pdf(response: httpx.Response) -> bytes:
    if not response.headers.get("content-type", "").startswith("application/pdf"):
        raise ValueError("not application/pdf")
    if not response.content.startswith(b"%PDF-"):
        raise ValueError("no PDF header")
    return response.content


class _ErrorBody(BaseModel):
    """The contract's `Error`, read leniently: a real carrier may add codes."""

    code: str
    message: str


def _error_body(response: httpx.Response) -> _ErrorBody | None:
    try:
        return _ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return None


def _rejection(what: str, response: httpx.Response) -> CarrierError:
    """The typed error for a response that retrying will not fix."""
    status = response.status_code
    body = _error_body(response)
    code = body.code if body is not None else None
    detail = f"HTTP {status}" + (f" {code}: {body.message}" if body is not None else "")
    error: type[CarrierError]
    if code == "idempotency_conflict":
        error = IdempotencyConflict
    elif status in (401, 403):
        error = CarrierAuthError
    elif status == 404:
        error = LabelNotFound
    elif status in (400, 422):
        error = InvalidLabelRequest
    elif 400 <= status < 500:
        error = CarrierRejected
    else:
        error = CarrierProtocolError
    message = f"The carrier refused {what} ({detail})."
    return error(message, status_code=status, carrier_code=code)


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = ["LabelClient", "idempotency_key_for_return"]
