"""The Parcelo label API contract: the JSON bodies both the sandbox and the client speak.

The sandbox serves these models through FastAPI, which turns them into the OpenAPI document
(`GET /openapi.json`); the client validates every response against them. A change here is a
change of the contract, so it changes both sides at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CARRIER_NAME = "Parcelo"
API_PREFIX = "/v1"
LABELS_PATH = f"{API_PREFIX}/labels"
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENT_REPLAY_HEADER = "Idempotent-Replayed"

ServiceLevel = Literal["standard", "express"]
LabelStatus = Literal["created", "voided"]
ErrorCode = Literal[
    "unauthorized",
    "invalid_request",
    "not_found",
    "idempotency_conflict",
    "rate_limited",
    "internal_error",
    "unavailable",
]

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{8,255}$"
"""A client-chosen key: 8-255 printable ASCII characters, no spaces."""


class Address(BaseModel):
    """A postal address as it is printed on the label."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100, examples=["Ada Lovelace"])
    line1: str = Field(min_length=1, max_length=100, examples=["12 Analytical Row"])
    line2: str | None = Field(default=None, max_length=100)
    city: str = Field(min_length=1, max_length=60, examples=["London"])
    postal_code: str = Field(min_length=1, max_length=16, examples=["N1 9GU"])
    country: str = Field(
        pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.", examples=["GB"]
    )


class LabelRequest(BaseModel):
    """What the shop asks for: a prepaid return label from the customer to its returns centre."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    return_reference: str = Field(
        min_length=1,
        max_length=64,
        description="The shop's reference for the return, printed on the label.",
        examples=["R-1042"],
    )
    from_address: Address = Field(description="The sender: the customer returning the parcel.")
    to_address: Address = Field(description="The recipient: the shop's returns centre.")
    weight_grams: int | None = Field(
        default=None, gt=0, le=30_000, description="Parcel weight, if known (at most 30 kg)."
    )
    service_level: ServiceLevel = Field(
        default="standard", description="`standard` (3-5 days) or `express` (next day)."
    )


class Label(BaseModel):
    """A label Parcelo has issued."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="Parcelo's id for the label.", examples=["lbl_3f9c2a7d51e04b8a"])
    carrier: str = Field(default=CARRIER_NAME, description="Always `Parcelo`.")
    tracking_number: str = Field(
        description="Printed under the barcode.", examples=["PRC004815162342"]
    )
    status: LabelStatus = Field(description="`created`, or `voided` once cancelled.")
    created_at: datetime
    voided_at: datetime | None = None
    request: LabelRequest = Field(description="The request the label was created from.")
    pdf_url: str = Field(
        description="Path of the printable label (A6 PDF) relative to the API root.",
        examples=["/v1/labels/lbl_3f9c2a7d51e04b8a/pdf"],
    )


class Error(BaseModel):
    """The body of every error response."""

    code: ErrorCode = Field(description="Stable, machine-readable reason.")
    message: str = Field(description="What went wrong, for a human.")


def label_path(label_id: str) -> str:
    """The API path of one label."""
    return f"{LABELS_PATH}/{label_id}"


__all__ = [
    "API_PREFIX",
    "CARRIER_NAME",
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENCY_KEY_PATTERN",
    "IDEMPOTENT_REPLAY_HEADER",
    "LABELS_PATH",
    "Address",
    "Error",
    "ErrorCode",
    "Label",
    "LabelRequest",
    "LabelStatus",
    "ServiceLevel",
    "label_path",
]
