"""The same LabelClient against the sandbox served by uvicorn on loopback, over real HTTP."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pypdf
import pytest

from tools.carrier import (
    SANDBOX_API_KEY,
    CarrierAuthError,
    CarrierUnavailable,
    Faults,
    LabelClient,
    LabelRequest,
    create_sandbox_app,
    idempotency_key_for_return,
    sandbox_state,
)
from tools.carrier.faults import AfterCreate
from tools.carrier.retry import Backoff
from tools.carrier.sandbox import SandboxState
from tools.carrier.testing import FakeTime, serve_in_thread
from tools.carrier.transport import carrier_http_client

KEY = idempotency_key_for_return(1042, "9f1c2e4b7a6d4c3e8b5a0f1e2d3c4b5a")


@dataclass
class Live:
    url: str
    state: SandboxState


@pytest.fixture(scope="module")
def live_server() -> Iterator[Live]:
    app = create_sandbox_app(Faults(seed=7))
    with serve_in_thread(app) as url:
        yield Live(url, sandbox_state(app))


@pytest.fixture
def live(live_server: Live) -> Live:
    live_server.state.reset()
    return live_server


@pytest.fixture
async def live_http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with carrier_http_client(live.url) as http:
        yield http


@pytest.fixture
def live_client(live_http: httpx.AsyncClient, fake_time: FakeTime) -> LabelClient:
    return LabelClient(
        live_http,
        api_key=SANDBOX_API_KEY,
        attempt_timeout=0.5,
        backoff=Backoff(base=0.01, cap=0.05),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rng=random.Random(1),
    )


async def test_round_trip_over_loopback(
    live: Live, live_client: LabelClient, label_request: LabelRequest
) -> None:
    label = await live_client.create_label(label_request, idempotency_key=KEY)
    assert live.state.labels == {label.id: label}
    assert await live_client.get_label(label.id) == label
    pdf = await live_client.label_pdf(label.id)
    assert label.tracking_number in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert (await live_client.void_label(label.id)).status == "voided"
    assert (await live_client.create_label(label_request, idempotency_key=KEY)).id == label.id
    assert len(live.state.labels) == 1


async def test_openapi_is_served(live_http: httpx.AsyncClient) -> None:
    response = await live_http.get("/openapi.json")
    assert response.status_code == 200
    assert "/v1/labels" in response.json()["paths"]
    assert (await live_http.get("/docs")).status_code == 200


async def test_5xx_and_429_then_success_over_loopback(
    live: Live, live_client: LabelClient, fake_time: FakeTime, label_request: LabelRequest
) -> None:
    live.state.faults.fail_next(2).rate_limit_next(retry_after=2)
    label = await live_client.create_label(label_request, idempotency_key=KEY)
    assert list(live.state.labels) == [label.id]
    assert len(live.state.requests) == 4
    assert fake_time.sleeps[-1] == 2.0


@pytest.mark.parametrize("mode", ["error", "disconnect", "hang"])
async def test_failure_after_create_over_loopback_buys_one_label(
    live: Live, live_http: httpx.AsyncClient, label_request: LabelRequest, mode: AfterCreate
) -> None:
    live.state.faults.fail_after_create(mode=mode)
    client = LabelClient(live_http, api_key=SANDBOX_API_KEY, attempt_timeout=0.3)
    label = await client.create_label(label_request, idempotency_key=KEY)
    assert list(live.state.labels) == [label.id]
    assert len(live.state.requests) == 2


async def test_socket_timeout_is_retried(live: Live, label_request: LabelRequest) -> None:
    # httpx's own read timeout (not the client's attempt timeout) fires here.
    live.state.faults.fail_after_create(mode="hang")
    async with carrier_http_client(live.url, timeout=httpx.Timeout(0.2)) as http:
        client = LabelClient(http, api_key=SANDBOX_API_KEY, attempt_timeout=5.0)
        label = await client.create_label(label_request, idempotency_key=KEY)
    assert list(live.state.labels) == [label.id]


async def test_wrong_key_over_loopback(live_http: httpx.AsyncClient) -> None:
    client = LabelClient(live_http, api_key="nope-nope")
    with pytest.raises(CarrierAuthError):
        await client.get_label("lbl_x")


async def test_nothing_listening_is_unavailable(fake_time: FakeTime) -> None:
    with serve_in_thread(create_sandbox_app()) as url:
        pass  # started and stopped: the port is free again and refuses connections
    async with carrier_http_client(url) as http:
        client = LabelClient(
            http, api_key=SANDBOX_API_KEY, sleep=fake_time.sleep, clock=fake_time.clock
        )
        with pytest.raises(CarrierUnavailable) as caught:
            await client.get_label("lbl_x")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.attempts == 4


async def test_served_sandbox_with_data_dir_survives_a_restart(
    tmp_path: Path, label_request: LabelRequest
) -> None:
    ids: list[str] = []
    for _ in range(2):
        with serve_in_thread(create_sandbox_app(data_dir=tmp_path)) as url:
            async with carrier_http_client(url) as http:
                client = LabelClient(http, api_key=SANDBOX_API_KEY)
                ids.append((await client.create_label(label_request, idempotency_key=KEY)).id)
    assert ids[0] == ids[1]
