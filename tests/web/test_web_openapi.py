"""Schemathesis against the OpenAPI document, over real HTTP: every answer must match it.

Generated cases for a conversation's routes get a real conversation and its token, so they
reach the handlers (turns start, confirmations are refused, streams end after 0.2 s);
cases whose path parameters were generated invalid on purpose keep them.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from web_support import TEST_WEB, ShopModel, serve_in_thread, services_for_tests

from shopbot.config import Settings
from shopbot.web import create_app

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Served:
    url: str
    conversation_id: str
    token: str


@pytest.fixture
def served(settings: Settings) -> Generator[Served]:
    web = TEST_WEB.model_copy(update={"sse_max_seconds": 0.2, "sse_poll_seconds": 0.05})
    app = create_app(settings, model=ShopModel(), services=services_for_tests, web=web)
    with serve_in_thread(app) as url:
        created = httpx.post(f"{url}/v1/conversations", json={}).json()
        yield Served(url, created["conversation_id"], created["token"])


def openapi_document() -> dict[str, Any]:
    """The document as any server serves it (it depends on no database)."""
    settings = Settings(_env_file=None, database_url="sqlite://")  # type: ignore[call-arg]
    return create_app(settings, model=ShopModel(), services={}).openapi()


schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()  # pyright: ignore[reportUntypedFunctionDecorator]
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_matches_the_openapi_document(case: Any, served: Served) -> None:
    meta = case.meta
    negated = meta is not None and (
        meta.is_negative_at(ParameterLocation.PATH) or meta.is_negative_at(ParameterLocation.HEADER)
    )
    headers: dict[str, str] = {}
    if "conversation_id" in case.path_parameters and not negated:
        case.path_parameters["conversation_id"] = served.conversation_id
        headers["Authorization"] = f"Bearer {served.token}"
    response = case.call(base_url=served.url, headers=headers)
    if response.status_code == 413:
        # An oversize body is refused before the schema is read: a rejection all the same,
        # which schemathesis's list of rejection codes does not include.
        assert response.json()["error"]["code"] == "payload_too_large"
        return
    case.validate_response(response)
