"""What can go wrong when ShopBot asks the carrier for a label, in one tree.

    ToolFailure                    (shopbot.errors: the model should change course)
    └── CarrierError               the label API could not do what was asked
        ├── CarrierUnavailable     no good answer within the deadline: connection errors,
        │                          timeouts, 5xx or 429 until the attempts or the time ran out
        ├── CarrierRejected        a 4xx: the carrier refused the request; retrying won't help
        │   ├── CarrierAuthError       401/403: the API key is missing or wrong
        │   ├── InvalidLabelRequest    400/422: an address or field the carrier won't accept
        │   ├── LabelNotFound          404: no such label
        │   └── IdempotencyConflict    409: the key was already used for a different request
        └── CarrierProtocolError   the answer does not follow the contract (bad JSON, a status
                                   the contract does not have, a PDF that is not a PDF)

Every error is raised by `tools.carrier.client`, where httpx's exceptions and the carrier's
statuses are mapped in one place (`LabelClient._send`), with the cause chained (`from exc`).
The message is written for the model and the logs; it never contains the API key.
"""

from __future__ import annotations

from shopbot.errors import ToolFailure


class CarrierError(ToolFailure):
    """The carrier's label API could not do what was asked."""

    default_code = "carrier_error"

    def __init__(
        self, message: str, *, status_code: int | None = None, carrier_code: str | None = None
    ) -> None:
        super().__init__(message, code=self.default_code)
        self.status_code = status_code
        """The HTTP status of the last response, if there was one."""
        self.carrier_code = carrier_code
        """The `code` of the carrier's JSON error body, if there was one."""


class CarrierUnavailable(CarrierError):
    """No good answer within the deadline; the same call may succeed later."""

    default_code = "carrier_unavailable"

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        retry_after: float | None = None,
        status_code: int | None = None,
        carrier_code: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, carrier_code=carrier_code)
        self.attempts = attempts
        """Requests sent before giving up."""
        self.retry_after = retry_after
        """Seconds the carrier last asked us to wait (429/503 `Retry-After`), if it did."""


class CarrierRejected(CarrierError):
    """The carrier refused the request (4xx); the same call will fail again."""

    default_code = "carrier_rejected"


class CarrierAuthError(CarrierRejected):
    """The API key is missing or wrong: an operator must fix the configuration."""

    default_code = "carrier_auth"


class InvalidLabelRequest(CarrierRejected):
    """The carrier did not accept a field of the request, e.g. an address."""

    default_code = "carrier_invalid_request"


class LabelNotFound(CarrierRejected):
    """The carrier has no label with that id."""

    default_code = "carrier_label_not_found"


class IdempotencyConflict(CarrierRejected):
    """The idempotency key was already used for a different request."""

    default_code = "carrier_idempotency_conflict"


class CarrierProtocolError(CarrierError):
    """The carrier answered something the contract does not allow."""

    default_code = "carrier_protocol"


__all__ = [
    "CarrierAuthError",
    "CarrierError",
    "CarrierProtocolError",
    "CarrierRejected",
    "CarrierUnavailable",
    "IdempotencyConflict",
    "InvalidLabelRequest",
    "LabelNotFound",
]
