"""Fixtures for the carrier: a scripted sandbox in process and a client on a fake clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tools.carrier import (
    SANDBOX_API_KEY,
    Faults,
    LabelClient,
    LabelRequest,
    create_sandbox_app,
    sandbox_state,
)
from tools.carrier.retry import Backoff
from tools.carrier.sandbox import SandboxState
from tools.carrier.testing import FakeTime, example_label_request
from tools.carrier.transport import carrier_http_client

ClientFactory = Callable[..., LabelClient]


@pytest.fixture
def faults() -> Faults:
    return Faults(seed=7)


@pytest.fixture
def sandbox(faults: Faults) -> FastAPI:
    return create_sandbox_app(faults)


@pytest.fixture
def state(sandbox: FastAPI) -> SandboxState:
    return sandbox_state(sandbox)


@pytest.fixture
async def http(sandbox: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with carrier_http_client(None, sandbox=sandbox) as client:
        yield client


@pytest.fixture
def label_request() -> LabelRequest:
    return example_label_request()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(http: httpx.AsyncClient, fake_time: FakeTime) -> ClientFactory:
    """LabelClients on the in-process sandbox that sleep on the fake clock."""

    def make(**overrides: Any) -> LabelClient:
        options: dict[str, Any] = {
            "api_key": SANDBOX_API_KEY,
            "deadline": 10.0,
            "attempt_timeout": 0.5,
            "max_attempts": 4,
            "backoff": Backoff(base=0.25, cap=4.0),
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
            "rng": random.Random(1),
        }
        return LabelClient(overrides.pop("http", http), **(options | overrides))

    return make


@pytest.fixture
def client(make_client: ClientFactory) -> LabelClient:
    return make_client()
