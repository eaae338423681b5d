"""Return labels from the carrier, Parcelo: contract, sandbox, client.

contract.py   the API's JSON bodies and paths (the OpenAPI document is built from them)
sandbox.py    a real ASGI app implementing the contract, with faults (faults.py), a store
              (store.py) and PDF labels (pdf.py)
client.py     LabelClient: timeouts, retries with backoff (retry.py), idempotency keys
errors.py     the typed errors the client raises
transport.py  the in-process or real httpx client, and serving the sandbox on loopback
"""

from tools.carrier.client import LabelClient, idempotency_key_for_return
from tools.carrier.contract import Address, Error, Label, LabelRequest
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
from tools.carrier.faults import Faults
from tools.carrier.retry import Backoff
from tools.carrier.sandbox import SANDBOX_API_KEY, create_sandbox_app, sandbox_state
from tools.carrier.transport import carrier_http_client, sandbox_server, serve_sandbox

__all__ = [
    "SANDBOX_API_KEY",
    "Address",
    "Backoff",
    "CarrierAuthError",
    "CarrierError",
    "CarrierProtocolError",
    "CarrierRejected",
    "CarrierUnavailable",
    "Error",
    "Faults",
    "IdempotencyConflict",
    "InvalidLabelRequest",
    "Label",
    "LabelClient",
    "LabelNotFound",
    "LabelRequest",
    "carrier_http_client",
    "create_sandbox_app",
    "idempotency_key_for_return",
    "sandbox_server",
    "sandbox_state",
    "serve_sandbox",
]
