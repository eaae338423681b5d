"""The sandbox over raw HTTP (in process): auth, idempotency, errors, persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tools.carrier import SANDBOX_API_KEY, Label, LabelRequest, create_sandbox_app, sandbox_state
from tools.carrier.sandbox import SandboxState
from tools.carrier.testing import example_label_request
from tools.carrier.transport import carrier_http_client

AUTH = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}


async def create(
    http: httpx.AsyncClient,
    request: LabelRequest | dict[str, Any],
    key: str | None = "return-1-label-1",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = request.model_dump(mode="json") if isinstance(request, LabelRequest) else request
    sent = AUTH | ({"Idempotency-Key": key} if key is not None else {}) | (headers or {})
    return await http.post("/v1/labels", json=body, headers=sent)


async def test_create_get_and_void(http: httpx.AsyncClient, label_request: LabelRequest) -> None:
    response = await create(http, label_request)
    assert response.status_code == 201
    label = Label.model_validate_json(response.content)
    assert label.status == "created"
    assert label.carrier == "Parcelo"
    assert label.request == label_request
    assert label.tracking_number.startswith("PRC")
    assert label.pdf_url == f"/v1/labels/{label.id}/pdf"

    got = await http.get(f"/v1/labels/{label.id}", headers=AUTH)
    assert got.status_code == 200
    assert Label.model_validate_json(got.content) == label

    voided = await http.post(f"/v1/labels/{label.id}/void", headers=AUTH)
    assert voided.status_code == 200
    first_void = Label.model_validate_json(voided.content)
    assert first_void.status == "voided"
    assert first_void.voided_at is not None

    again = await http.post(f"/v1/labels/{label.id}/void", headers=AUTH)
    assert Label.model_validate_json(again.content) == first_void


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {SANDBOX_API_KEY}"},
        {"Authorization": SANDBOX_API_KEY},
    ],
)
async def test_missing_or_wrong_key_is_a_401_json_error(
    http: httpx.AsyncClient, state: SandboxState, headers: dict[str, str]
) -> None:
    for response in (
        await http.post("/v1/labels", json={}, headers=headers | {"Idempotency-Key": "k" * 8}),
        await http.get("/v1/labels/lbl_x", headers=headers),
        await http.get("/v1/labels/lbl_x/pdf", headers=headers),
        await http.post("/v1/labels/lbl_x/void", headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json() == {
            "code": "unauthorized",
            "message": "Missing or invalid API key; send `Authorization: Bearer <key>`.",
        }
    assert state.labels == {}


async def test_sandbox_api_key_is_configurable(label_request: LabelRequest) -> None:
    app = create_sandbox_app(api_key="s3cret-key")
    async with carrier_http_client(None, sandbox=app) as http:
        refused = await create(http, label_request)
        accepted = await create(http, label_request, headers={"Authorization": "Bearer s3cret-key"})
    assert (refused.status_code, accepted.status_code) == (401, 201)


async def test_same_key_and_body_returns_the_same_label(
    http: httpx.AsyncClient, state: SandboxState, label_request: LabelRequest
) -> None:
    first = await create(http, label_request)
    second = await create(http, label_request)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert first.json() == second.json()
    assert len(state.labels) == 1


async def test_same_key_with_another_body_is_a_conflict(
    http: httpx.AsyncClient, state: SandboxState, label_request: LabelRequest
) -> None:
    await create(http, label_request)
    other = label_request.model_copy(update={"weight_grams": 900})
    response = await create(http, other)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"
    assert len(state.labels) == 1


async def test_equivalent_bodies_share_a_key(
    http: httpx.AsyncClient, state: SandboxState, label_request: LabelRequest
) -> None:
    # Whitespace the contract strips and defaults left out are the same request.
    body = label_request.model_dump(mode="json", exclude={"service_level"})
    body["return_reference"] = f"  {body['return_reference']} "
    first = await create(http, label_request)
    second = await create(http, body)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert len(state.labels) == 1


async def test_different_keys_buy_different_labels(
    http: httpx.AsyncClient, state: SandboxState, label_request: LabelRequest
) -> None:
    a = await create(http, label_request, key="return-1-label-1")
    b = await create(http, label_request, key="return-1-label-2")
    assert a.json()["id"] != b.json()["id"]
    assert a.json()["tracking_number"] != b.json()["tracking_number"]
    assert len(state.labels) == 2


@pytest.mark.parametrize("key", [None, "short", "has space in it", "x" * 256, "ключ-ключ-ключ"])
async def test_create_needs_a_valid_idempotency_key(
    http: httpx.AsyncClient, state: SandboxState, label_request: LabelRequest, key: str | None
) -> None:
    headers = {name.encode(): value.encode() for name, value in AUTH.items()}
    if key is not None:
        headers[b"Idempotency-Key"] = key.encode()
    body = label_request.model_dump(mode="json")
    response = await http.post("/v1/labels", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert "Idempotency-Key" in response.json()["message"]
    assert state.labels == {}


async def test_invalid_body_is_a_422_json_error(http: httpx.AsyncClient) -> None:
    body = example_label_request().model_dump(mode="json")
    body["from_address"]["country"] = "United Kingdom"
    response = await create(http, body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert "body.from_address.country" in response.json()["message"]


async def test_unknown_label_and_unknown_route_are_404_json(http: httpx.AsyncClient) -> None:
    for response in (
        await http.get("/v1/labels/lbl_missing", headers=AUTH),
        await http.get("/v1/labels/lbl_missing/pdf", headers=AUTH),
        await http.post("/v1/labels/lbl_missing/void", headers=AUTH),
        await http.get("/v2/anything", headers=AUTH),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_wrong_method_is_a_json_error(http: httpx.AsyncClient) -> None:
    response = await http.delete("/v1/labels/lbl_x", headers=AUTH)
    assert response.status_code == 405
    assert response.json()["code"] == "invalid_request"


async def test_requests_are_recorded(
    http: httpx.AsyncClient, state: SandboxState, label_request: LabelRequest
) -> None:
    await create(http, label_request, key="return-9-label-1")
    await http.get("/v1/labels/lbl_x", headers=AUTH)
    await http.get("/openapi.json")
    assert [(r.method, r.path, r.idempotency_key) for r in state.requests] == [
        ("POST", "/v1/labels", "return-9-label-1"),
        ("GET", "/v1/labels/lbl_x", None),
    ]


async def test_data_dir_keeps_labels_across_restarts(
    tmp_path: Path, label_request: LabelRequest
) -> None:
    first_app = create_sandbox_app(data_dir=tmp_path)
    async with carrier_http_client(None, sandbox=first_app) as http:
        created = (await create(http, label_request)).json()

    restarted = create_sandbox_app(data_dir=tmp_path)
    assert list(sandbox_state(restarted).labels) == [created["id"]]
    async with carrier_http_client(None, sandbox=restarted) as http:
        replay = await create(http, label_request)
        voided = await http.post(f"/v1/labels/{created['id']}/void", headers=AUTH)
    assert replay.status_code == 200
    assert replay.json()["id"] == created["id"]
    assert voided.json()["status"] == "voided"
    assert sandbox_state(create_sandbox_app(data_dir=tmp_path)).labels[created["id"]].status == (
        "voided"
    )


async def test_reset_forgets_everything(
    http: httpx.AsyncClient, state: SandboxState, label_request: LabelRequest
) -> None:
    await create(http, label_request)
    state.faults.fail_next(3)
    state.reset()
    assert (state.labels, state.store.keys, state.requests, state.faults.pending) == ({}, {}, [], 0)
