"""The Parcelo contract: the OpenAPI document and the models it is built from."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from tools.carrier import Address, LabelRequest
from tools.carrier.testing import example_label_request


@pytest.fixture
def openapi(sandbox: FastAPI) -> dict[str, Any]:
    return sandbox.openapi()


OPERATIONS = [
    ("/v1/labels", "post"),
    ("/v1/labels/{label_id}", "get"),
    ("/v1/labels/{label_id}/pdf", "get"),
    ("/v1/labels/{label_id}/void", "post"),
]


def test_openapi_has_every_operation_and_only_those(openapi: dict[str, Any]) -> None:
    found = {(path, method) for path, ops in openapi["paths"].items() for method in ops}
    assert found == set(OPERATIONS)
    for path, method in OPERATIONS:
        operation = openapi["paths"][path][method]
        assert operation["summary"]
        assert operation["description"]


def test_openapi_declares_bearer_auth_on_every_operation(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes == {
        "ParceloApiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "Your API key as a bearer token: `Authorization: Bearer <key>`.",
        }
    }
    for path, method in OPERATIONS:
        operation = openapi["paths"][path][method]
        assert operation["security"] == [{"ParceloApiKey": []}]
        assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


def test_openapi_documents_429_and_503_with_retry_after(openapi: dict[str, Any]) -> None:
    for path, method in OPERATIONS:
        responses = openapi["paths"][path][method]["responses"]
        for status in ("429", "503"):
            assert "Retry-After" in responses[status]["headers"], (path, method, status)
            assert "Retry-After" in responses[status]["description"]
        assert "500" in responses


def test_openapi_documents_idempotency(openapi: dict[str, Any]) -> None:
    create = openapi["paths"]["/v1/labels"]["post"]
    (header,) = create["parameters"]
    assert header["name"] == "Idempotency-Key"
    assert header["in"] == "header"
    assert header["required"] is True
    assert set(create["responses"]) >= {"200", "201", "409", "422"}
    assert "Idempotent-Replayed" in create["responses"]["200"]["description"]
    assert "Idempotency-Key" in openapi["info"]["description"]


def test_openapi_documents_the_pdf(openapi: dict[str, Any]) -> None:
    pdf = openapi["paths"]["/v1/labels/{label_id}/pdf"]["get"]["responses"]["200"]
    assert list(pdf["content"]) == ["application/pdf"]


def test_openapi_schemas_are_the_contract_models(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert set(schemas) == {"Address", "Error", "Label", "LabelRequest"}
    assert set(schemas["Error"]["properties"]) == {"code", "message"}
    assert "rate_limited" in schemas["Error"]["properties"]["code"]["enum"]
    assert schemas["Label"]["properties"]["status"]["enum"] == ["created", "voided"]


def test_openapi_is_served(sandbox: FastAPI) -> None:
    assert sandbox.openapi_url == "/openapi.json"
    assert sandbox.docs_url == "/docs"


def test_label_request_rejects_bad_fields() -> None:
    with pytest.raises(ValidationError):
        example_label_request(weight_grams=0)
    with pytest.raises(ValidationError):
        example_label_request(service_level="overnight")
    with pytest.raises(ValidationError):
        Address(name="A", line1="B", city="C", postal_code="D", country="gb")
    with pytest.raises(ValidationError):
        LabelRequest.model_validate(example_label_request().model_dump() | {"unexpected": True})


def test_label_request_strips_whitespace() -> None:
    request = example_label_request("  R-7  ")
    assert request.return_reference == "R-7"
