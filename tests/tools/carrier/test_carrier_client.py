"""LabelClient against the in-process sandbox and scripted transports, on a fake clock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from shopbot.errors import ToolFailure
from tools.carrier import (
    SANDBOX_API_KEY,
    CarrierAuthError,
    CarrierError,
    CarrierProtocolError,
    CarrierRejected,
    CarrierUnavailable,
    Faults,
    IdempotencyConflict,
    InvalidLabelRequest,
    LabelClient,
    LabelNotFound,
    LabelRequest,
    idempotency_key_for_return,
)
from tools.carrier.contract import IDEMPOTENCY_KEY_PATTERN
from tools.carrier.faults import AfterCreate
from tools.carrier.retry import Backoff
from tools.carrier.sandbox import SandboxState
from tools.carrier.testing import FakeTime
from tools.carrier.transport import carrier_http_client

ClientFactory = Callable[..., LabelClient]
UID = "9f1c2e4b7a6d4c3e8b5a0f1e2d3c4b5a"
KEY = idempotency_key_for_return(1042, UID)


def scripted(outcomes: Sequence[httpx.Response | Exception]) -> httpx.AsyncClient:
    """An AsyncClient whose transport answers `outcomes` in order, and fails when they run out."""
    remaining = list(outcomes)

    def handler(request: httpx.Request) -> httpx.Response:
        outcome = remaining.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://carrier.test")


def json_error(status: int, code: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": f"{code}!"}, headers=headers)


# -- the happy path ------------------------------------------------------------------------


async def test_create_get_pdf_void(
    client: LabelClient, state: SandboxState, label_request: LabelRequest
) -> None:
    label = await client.create_label(label_request, idempotency_key=KEY)
    assert state.labels == {label.id: label}
    assert state.requests[0].idempotency_key == KEY
    assert await client.get_label(label.id) == label
    pdf = await client.label_pdf(label.id)
    assert pdf.startswith(b"%PDF-")
    voided = await client.void_label(label.id)
    assert voided.status == "voided"
    assert (await client.void_label(label.id)) == voided


async def test_explicit_base_url_and_secret_key(
    sandbox: FastAPI, label_request: LabelRequest
) -> None:
    transport = httpx.ASGITransport(app=sandbox)
    async with httpx.AsyncClient(transport=transport) as http:
        client = LabelClient(
            http, api_key=SecretStr(SANDBOX_API_KEY), base_url="http://parcelo.example/"
        )
        label = await client.create_label(label_request, idempotency_key=KEY)
    assert label.request == label_request


async def test_embedded_default_needs_no_configuration(label_request: LabelRequest) -> None:
    async with carrier_http_client(None) as http:
        label = await LabelClient(http, api_key=SANDBOX_API_KEY).create_label(
            label_request, idempotency_key=KEY
        )
    assert label.status == "created"


# -- retries -------------------------------------------------------------------------------


async def test_5xx_twice_then_success_buys_exactly_one_label(
    client: LabelClient,
    faults: Faults,
    state: SandboxState,
    fake_time: FakeTime,
    label_request: LabelRequest,
) -> None:
    faults.fail_next(1, status=503).fail_next(1, status=500)
    label = await client.create_label(label_request, idempotency_key=KEY)
    assert list(state.labels) == [label.id]
    assert [r.idempotency_key for r in state.requests] == [KEY, KEY, KEY]
    # Full jitter: each wait is within that attempt's ceiling (0.25 s, then 0.5 s).
    first, second = fake_time.sleeps
    assert 0 <= first <= 0.25
    assert 0 <= second <= 0.5


async def test_429_waits_retry_after_seconds(
    client: LabelClient, faults: Faults, fake_time: FakeTime, label_request: LabelRequest
) -> None:
    faults.rate_limit_next(retry_after=2).rate_limit_next(retry_after=3)
    await client.create_label(label_request, idempotency_key=KEY)
    assert fake_time.sleeps == [2.0, 3.0]


async def test_429_waits_until_retry_after_date(
    client: LabelClient, faults: Faults, fake_time: FakeTime, label_request: LabelRequest
) -> None:
    faults.rate_limit_next(retry_after=datetime.now(UTC) + timedelta(seconds=5))
    await client.create_label(label_request, idempotency_key=KEY)
    (wait,) = fake_time.sleeps
    assert 3.5 < wait <= 5.0  # HTTP dates have whole seconds


async def test_503_retry_after_is_honoured_too(
    client: LabelClient, faults: Faults, fake_time: FakeTime, label_request: LabelRequest
) -> None:
    faults.fail_next(status=503, retry_after=1)
    await client.create_label(label_request, idempotency_key=KEY)
    assert fake_time.sleeps == [1.0]


@pytest.mark.parametrize("mode", ["error", "disconnect", "hang"])
async def test_failure_after_create_is_retried_into_the_same_label(
    make_client: ClientFactory,
    faults: Faults,
    state: SandboxState,
    label_request: LabelRequest,
    mode: AfterCreate,
) -> None:
    client = make_client(attempt_timeout=0.05)
    faults.fail_after_create(mode=mode)
    label = await client.create_label(label_request, idempotency_key=KEY)
    assert list(state.labels) == [label.id]
    assert len(state.requests) == 2
    assert faults.injected == [f"after-create:{mode}"]


async def test_a_new_process_after_a_crash_gets_the_same_label(
    sandbox: FastAPI, faults: Faults, state: SandboxState, label_request: LabelRequest
) -> None:
    faults.fail_after_create(mode="hang")
    # The first process sends the create, the carrier stores the label, and the process dies
    # before the answer arrives: all it leaves behind is the return row (id 1042).
    async with carrier_http_client(None, sandbox=sandbox) as http:
        first = LabelClient(http, api_key=SANDBOX_API_KEY)
        task = asyncio.create_task(
            first.create_label(label_request, idempotency_key=idempotency_key_for_return(1042, UID))
        )
        async with asyncio.timeout(5):
            while not state.labels:  # noqa: ASYNC110 -- no event to wait on inside the sandbox
                await asyncio.sleep(0.001)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with carrier_http_client(None, sandbox=sandbox) as http:
        second = LabelClient(http, api_key=SANDBOX_API_KEY)
        label = await second.create_label(
            label_request, idempotency_key=idempotency_key_for_return(1042, UID)
        )
    assert list(state.labels) == [label.id]


async def test_connection_errors_are_retried(
    fake_time: FakeTime, label_request: LabelRequest
) -> None:
    label_json = {
        "id": "lbl_1",
        "tracking_number": "PRC1",
        "status": "created",
        "created_at": "2026-11-21T12:00:00Z",
        "request": label_request.model_dump(mode="json"),
        "pdf_url": "/v1/labels/lbl_1/pdf",
    }
    http = scripted(
        [
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.RemoteProtocolError("eof"),
            httpx.Response(201, json=label_json),
        ]
    )
    client = LabelClient(
        http, api_key="k", sleep=fake_time.sleep, clock=fake_time.clock, max_attempts=4
    )
    label = await client.create_label(label_request, idempotency_key=KEY)
    assert label.id == "lbl_1"
    assert len(fake_time.sleeps) == 3


# -- giving up -----------------------------------------------------------------------------


async def test_deadline_exhausted_raises_carrier_unavailable(
    make_client: ClientFactory,
    faults: Faults,
    state: SandboxState,
    fake_time: FakeTime,
    label_request: LabelRequest,
) -> None:
    faults.fail_next(50, status=503)
    client = make_client(deadline=3.0, max_attempts=100, backoff=Backoff(base=0.5, cap=2.0))
    with pytest.raises(CarrierUnavailable) as caught:
        await client.create_label(label_request, idempotency_key=KEY)
    error = caught.value
    assert sum(fake_time.sleeps) < 3.0
    assert error.attempts == len(state.requests) == len(fake_time.sleeps) + 1
    assert error.status_code == 503
    assert error.carrier_code == "unavailable"
    assert error.code == "carrier_unavailable"
    assert "HTTP 503" in str(error)
    assert state.labels == {}


async def test_max_attempts_exhausted(
    make_client: ClientFactory, faults: Faults, fake_time: FakeTime, label_request: LabelRequest
) -> None:
    faults.fail_next(10, status=500)
    with pytest.raises(CarrierUnavailable) as caught:
        await make_client(max_attempts=3).create_label(label_request, idempotency_key=KEY)
    assert caught.value.attempts == 3
    assert len(fake_time.sleeps) == 2


async def test_retry_after_beyond_the_deadline_gives_up_at_once(
    make_client: ClientFactory, faults: Faults, fake_time: FakeTime, label_request: LabelRequest
) -> None:
    faults.rate_limit_next(retry_after=60)
    with pytest.raises(CarrierUnavailable) as caught:
        await make_client(deadline=10.0).create_label(label_request, idempotency_key=KEY)
    assert fake_time.sleeps == []
    assert caught.value.retry_after == 60.0
    assert caught.value.status_code == 429
    assert faults.pending == 0


async def test_connection_errors_exhausted_chain_the_cause(fake_time: FakeTime) -> None:
    http = scripted([httpx.ConnectError("refused")] * 2)
    client = LabelClient(
        http, api_key="k", sleep=fake_time.sleep, clock=fake_time.clock, max_attempts=2
    )
    with pytest.raises(CarrierUnavailable, match="ConnectError: refused") as caught:
        await client.get_label("lbl_1")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.status_code is None


async def test_each_attempt_is_bounded_by_the_deadline(
    make_client: ClientFactory, faults: Faults, label_request: LabelRequest
) -> None:
    faults.fail_after_create(5, mode="hang")
    client = make_client(deadline=0.2, attempt_timeout=5.0, max_attempts=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CarrierUnavailable, match="timed out") as caught:
        await client.create_label(label_request, idempotency_key=KEY)
    assert loop.time() - started < 1.0
    assert isinstance(caught.value.__cause__, TimeoutError)


# -- refusals and broken answers -----------------------------------------------------------


async def test_wrong_key_is_an_auth_error_without_retries(
    make_client: ClientFactory, state: SandboxState, label_request: LabelRequest
) -> None:
    client = make_client(api_key="wrong-key-123")
    with pytest.raises(CarrierAuthError) as caught:
        await client.create_label(label_request, idempotency_key=KEY)
    assert (caught.value.status_code, caught.value.carrier_code) == (401, "unauthorized")
    assert "wrong-key-123" not in str(caught.value)
    assert len(state.requests) == 1


async def test_unknown_label_is_not_found(client: LabelClient) -> None:
    for call in (client.get_label, client.label_pdf, client.void_label):
        with pytest.raises(LabelNotFound):
            await call("lbl_nope")


async def test_label_ids_are_escaped_into_one_path_segment(client: LabelClient) -> None:
    # Unescaped, "?" would start a query string and the carrier would look up "x".
    with pytest.raises(LabelNotFound, match=re.escape("No label with id 'x?y=1 z'")):
        await client.get_label("x?y=1 z")


async def test_reused_key_with_another_request_is_a_conflict(
    client: LabelClient, state: SandboxState, label_request: LabelRequest
) -> None:
    await client.create_label(label_request, idempotency_key=KEY)
    other = label_request.model_copy(update={"service_level": "express"})
    with pytest.raises(IdempotencyConflict) as caught:
        await client.create_label(other, idempotency_key=KEY)
    assert caught.value.status_code == 409
    assert len(state.labels) == 1


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (json_error(422, "invalid_request"), InvalidLabelRequest),
        (json_error(400, "address_unserviceable"), InvalidLabelRequest),
        (json_error(403, "forbidden"), CarrierAuthError),
        (json_error(409, "already_shipped"), CarrierRejected),
        (httpx.Response(418, text="teapot"), CarrierRejected),
        (httpx.Response(302, headers={"Location": "/elsewhere"}), CarrierProtocolError),
    ],
)
async def test_statuses_map_to_typed_errors(
    response: httpx.Response, error: type[CarrierError], fake_time: FakeTime
) -> None:
    client = LabelClient(scripted([response]), api_key="k", sleep=fake_time.sleep)
    with pytest.raises(error) as caught:
        await client.get_label("lbl_1")
    assert type(caught.value) is error
    assert caught.value.status_code == response.status_code
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"id": "lbl_1"}),
        httpx.Response(200, json={"code": "ok"}),
    ],
)
async def test_answers_off_contract_are_protocol_errors(response: httpx.Response) -> None:
    client = LabelClient(scripted([response]), api_key="k")
    with pytest.raises(CarrierProtocolError) as caught:
        await client.get_label("lbl_1")
    assert isinstance(caught.value.__cause__, ValidationError)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"%PDF-1.4 ...", headers={"content-type": "text/plain"}),
        httpx.Response(200, content=b"<html>", headers={"content-type": "application/pdf"}),
    ],
)
async def test_a_pdf_that_is_not_a_pdf_is_a_protocol_error(response: httpx.Response) -> None:
    client = LabelClient(scripted([response]), api_key="k")
    with pytest.raises(CarrierProtocolError):
        await client.label_pdf("lbl_1")


async def test_every_carrier_error_is_a_tool_failure() -> None:
    for error in (
        CarrierUnavailable("x", attempts=1),
        CarrierAuthError("x"),
        IdempotencyConflict("x"),
        CarrierProtocolError("x"),
    ):
        assert isinstance(error, CarrierError)
        assert isinstance(error, ToolFailure)
        assert not error.retryable
        assert error.code.startswith("carrier_")


def test_client_settings_are_validated() -> None:
    http = httpx.AsyncClient()
    with pytest.raises(ValueError, match="positive"):
        LabelClient(http, api_key="k", deadline=0)
    with pytest.raises(ValueError, match="positive"):
        LabelClient(http, api_key="k", attempt_timeout=-1)
    with pytest.raises(ValueError, match="positive"):
        LabelClient(http, api_key="k", max_attempts=0)


# -- idempotency keys ----------------------------------------------------------------------


def test_idempotency_key_is_derived_from_the_return() -> None:
    assert idempotency_key_for_return(1042, UID) == f"shopbot-return-1042-{UID}-label-1"
    assert idempotency_key_for_return(1042, UID) == KEY
    assert (
        idempotency_key_for_return(1042, UID, generation=2) == f"shopbot-return-1042-{UID}-label-2"
    )
    assert (
        idempotency_key_for_return(7, UID, namespace="shop-eu") == f"shop-eu-return-7-{UID}-label-1"
    )
    assert re.fullmatch(IDEMPOTENCY_KEY_PATTERN, idempotency_key_for_return(1, UID))


def test_the_same_return_id_with_another_uid_is_another_key() -> None:
    # A reseeded shop, a restored backup or a second shop: return 1 again, a new return.
    assert idempotency_key_for_return(1, UID) != idempotency_key_for_return(1, UID[::-1])


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"return_id": 0, "uid": UID}, "positive"),
        ({"return_id": 1, "uid": UID, "generation": 0}, "positive"),
        ({"return_id": 1, "uid": UID, "namespace": "my shop"}, "invalid idempotency key"),
        ({"return_id": 1, "uid": ""}, "not 8-64 letters and digits"),
        ({"return_id": 1, "uid": "a b c d e f"}, "not 8-64 letters and digits"),
    ],
)
def test_idempotency_key_arguments_are_checked(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        idempotency_key_for_return(**kwargs)
