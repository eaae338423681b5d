"""The sandbox's faults: scripted and seeded, seen over raw HTTP in process."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest

from tools.carrier import SANDBOX_API_KEY, Faults, LabelRequest, create_sandbox_app
from tools.carrier.sandbox import SandboxState
from tools.carrier.transport import carrier_http_client

AUTH = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}


async def post(http: httpx.AsyncClient, request: LabelRequest, key: str) -> httpx.Response:
    headers = AUTH | {"Idempotency-Key": key}
    return await http.post("/v1/labels", json=request.model_dump(mode="json"), headers=headers)


async def test_fail_next_answers_5xx_then_recovers(
    http: httpx.AsyncClient, faults: Faults, state: SandboxState, label_request: LabelRequest
) -> None:
    faults.fail_next(2).fail_next(1, status=500, retry_after=4)
    statuses: list[int] = []
    for _ in range(4):
        response = await post(http, label_request, "return-1-label-1")
        statuses.append(response.status_code)
    assert statuses == [503, 503, 500, 201]
    assert faults.injected == ["503", "503", "500"]
    assert faults.pending == 0
    assert len(state.labels) == 1
    assert len(state.requests) == 4


async def test_scripted_5xx_bodies_and_headers(
    http: httpx.AsyncClient, faults: Faults, label_request: LabelRequest
) -> None:
    faults.fail_next(status=503, retry_after=4).fail_next(status=500)
    unavailable = await post(http, label_request, "return-1-label-1")
    internal = await post(http, label_request, "return-1-label-1")
    assert unavailable.json()["code"] == "unavailable"
    assert unavailable.headers["Retry-After"] == "4"
    assert internal.json()["code"] == "internal_error"
    assert "Retry-After" not in internal.headers


async def test_rate_limit_next_sends_retry_after_seconds_or_date(
    http: httpx.AsyncClient, faults: Faults
) -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    faults.rate_limit_next(retry_after=3).rate_limit_next(retry_after=when)
    seconds = await http.get("/v1/labels/lbl_x", headers=AUTH)
    date = await http.get("/v1/labels/lbl_x", headers=AUTH)
    assert (seconds.status_code, seconds.headers["Retry-After"]) == (429, "3")
    assert (date.status_code, date.headers["Retry-After"]) == (429, "Wed, 02 Jan 2030 03:04:05 GMT")
    assert seconds.json()["code"] == "rate_limited"
    assert (await http.get("/v1/labels/lbl_x", headers=AUTH)).status_code == 404


async def test_faults_come_before_auth(http: httpx.AsyncClient, faults: Faults) -> None:
    faults.fail_next()
    assert (await http.get("/v1/labels/lbl_x")).status_code == 503
    assert (await http.get("/v1/labels/lbl_x")).status_code == 401


async def test_faults_spare_the_openapi_document(http: httpx.AsyncClient, faults: Faults) -> None:
    faults.fail_next()
    assert (await http.get("/openapi.json")).status_code == 200
    assert faults.pending == 1


async def test_fail_after_create_error_keeps_the_label(
    http: httpx.AsyncClient, faults: Faults, state: SandboxState, label_request: LabelRequest
) -> None:
    faults.fail_after_create(mode="error")
    failed = await post(http, label_request, "return-1-label-1")
    assert failed.status_code == 500
    assert failed.json()["code"] == "internal_error"
    (stored,) = state.labels.values()
    retried = await post(http, label_request, "return-1-label-1")
    assert retried.status_code == 200
    assert retried.json()["id"] == stored.id
    assert faults.injected == ["after-create:error"]


async def test_fail_after_create_disconnect_drops_the_connection(
    http: httpx.AsyncClient, faults: Faults, state: SandboxState, label_request: LabelRequest
) -> None:
    faults.fail_after_create(mode="disconnect")
    with pytest.raises(httpx.RemoteProtocolError, match="connection dropped"):
        await post(http, label_request, "return-1-label-1")
    assert len(state.labels) == 1


async def test_fail_after_create_hang_answers_nothing(
    http: httpx.AsyncClient, faults: Faults, state: SandboxState, label_request: LabelRequest
) -> None:
    faults.fail_after_create(mode="hang")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await post(http, label_request, "return-1-label-1")
    assert len(state.labels) == 1


async def test_hang_gives_up_after_hang_seconds(label_request: LabelRequest) -> None:
    faults = Faults(hang_seconds=0.05)
    faults.fail_after_create(mode="hang")
    async with carrier_http_client(None, sandbox=create_sandbox_app(faults)) as http:
        response = await post(http, label_request, "return-1-label-1")
    assert response.status_code == 500


async def test_fail_after_create_ignores_replays_and_other_routes(
    http: httpx.AsyncClient, faults: Faults, label_request: LabelRequest
) -> None:
    created = await post(http, label_request, "return-1-label-1")
    faults.fail_after_create()
    await http.get(f"/v1/labels/{created.json()['id']}", headers=AUTH)
    assert (await post(http, label_request, "return-1-label-1")).status_code == 200
    assert faults.pending == 1
    assert (await post(http, label_request, "return-2-label-1")).status_code == 500
    assert faults.pending == 0


async def test_latency_delays_every_api_request(label_request: LabelRequest) -> None:
    app = create_sandbox_app(Faults(latency=0.05))
    async with carrier_http_client(None, sandbox=app) as http:
        started = time.perf_counter()
        await http.get("/v1/labels/lbl_x", headers=AUTH)
        assert time.perf_counter() - started >= 0.045


async def seeded_statuses(faults: Faults, n: int) -> list[int]:
    async with carrier_http_client(None, sandbox=create_sandbox_app(faults)) as http:
        return [(await http.get("/v1/labels/lbl_x", headers=AUTH)).status_code for _ in range(n)]


async def test_rates_are_seeded_and_deterministic() -> None:
    first = await seeded_statuses(Faults(error_rate=0.3, rate_limit_rate=0.3, seed=42), 60)
    second = await seeded_statuses(Faults(error_rate=0.3, rate_limit_rate=0.3, seed=42), 60)
    assert first == second
    assert {500, 503, 429, 404} <= set(first)
    assert 10 < sum(s >= 500 for s in first) < 30


async def test_random_faults_carry_retry_after(http: httpx.AsyncClient) -> None:
    faults = Faults(rate_limit_rate=1.0, retry_after=2)
    async with carrier_http_client(None, sandbox=create_sandbox_app(faults)) as client:
        response = await client.get("/v1/labels/lbl_x", headers=AUTH)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")


def test_faults_validate_their_settings() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=1.5)
    with pytest.raises(ValueError, match="negative"):
        Faults(latency=-1)
    with pytest.raises(ValueError, match="5xx"):
        Faults().fail_next(status=429)
    with pytest.raises(ValueError, match="at least 1"):
        Faults().fail_after_create(0)


def test_clear_forgets_the_script_but_keeps_rates() -> None:
    faults = Faults(error_rate=0.5)
    faults.fail_next(2).fail_after_create()
    faults.clear()
    assert faults.pending == 0
    assert faults.error_rate == 0.5
