"""The prose of the Parcelo OpenAPI document: the API description and the error responses.

FastAPI builds the document from the sandbox's routes and `tools.carrier.contract`; this
module holds what it cannot infer: how auth, idempotency, errors and rate limits work.
"""

from __future__ import annotations

from typing import Any

from tools.carrier.contract import Error

API_DESCRIPTION = """\
Prepaid **return labels**: a shop asks for a label from its customer to its returns centre,
gets a tracking number and a printable PDF, and may void the label while it is unused.

**Authentication.** Every request carries the account's API key as a bearer token
(`Authorization: Bearer <key>`). A missing or wrong key is a `401` with code `unauthorized`.

**Idempotency.** `POST /v1/labels` requires an `Idempotency-Key` header (8-255 printable
ASCII characters). The first request with a key buys a label (`201`); any later request with
the same key and the same body returns that label again (`200`, header
`Idempotent-Replayed: true`) and buys nothing, even when the first response was lost to a
timeout or a 5xx. The same key with a different body is a `409` (`idempotency_conflict`).
Keys never expire in the sandbox. `GET` and `void` are idempotent by nature.

**Errors.** Every error has a JSON body `{"code": ..., "message": ...}`; `code` is stable.
`4xx` means the request will fail again as it is; `429`, `500` and `503` are transient.

**Rate limits and outages.** A `429` (and a `503` when the carrier knows) carries
`Retry-After`, in seconds or as an HTTP date: wait at least that long. Retry `5xx`, `429` and
connection errors with exponential backoff and jitter; with an idempotency key, retrying a
create is safe.

**Sandbox.** This server is Parcelo's test mode: labels are not charged, and it can be
told to add latency, fail with 5xx or 429, or fail after a label was created, so clients can
prove they survive it.
"""

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (an integer), or an HTTP date.",
        "schema": {"type": "string", "examples": ["2", "Wed, 21 Oct 2026 07:28:00 GMT"]},
    }
}

ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    401: {"model": Error, "description": "Missing or wrong API key (`unauthorized`)."},
    404: {"model": Error, "description": "No label with that id (`not_found`)."},
    409: {
        "model": Error,
        "description": "The `Idempotency-Key` was already used with a different request body "
        "(`idempotency_conflict`). Nothing was bought.",
    },
    422: {
        "model": Error,
        "description": "The request does not match the schema, or a required header is "
        "missing or malformed (`invalid_request`).",
    },
    429: {
        "model": Error,
        "description": "Rate limited (`rate_limited`): wait `Retry-After`, then retry.",
        "headers": _RETRY_AFTER,
    },
    500: {
        "model": Error,
        "description": "Carrier error (`internal_error`). Transient: retry with backoff; "
        "a create retried with the same key never buys a second label.",
    },
    503: {
        "model": Error,
        "description": "Temporarily unavailable (`unavailable`): retry after `Retry-After` "
        "if given, else with backoff.",
        "headers": _RETRY_AFTER,
    },
}

COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: ERROR_RESPONSES[status] for status in (401, 422, 429, 500, 503)
}
"""Responses every API operation can give."""
