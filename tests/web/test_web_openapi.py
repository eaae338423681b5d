"""Schemathesis against the OpenAPI document, over real HTTP: every answer must match it.

Generated cases for a conversation's routes get a real conversation and its token, so they
reach the handlers (turns start, confirmations are refused, streams end after 0.2 s);
cases whose path parameters were generated invalid on purpose keep them.

Bounded and repeatable, so it runs with the rest of the suite, unmarked (about 45 s for both
backends on a busy machine): at most `MAX_EXAMPLES` fuzzed cases per operation (plus
schemathesis's examples and coverage phases), from a fixed seed, derandomized, with no
example database. It asserts no server error (5xx), answers that conform to the document
(status, content type, headers, body schema), no 404 for the conversation that exists, and
that a request made invalid only in its body is a 422 `validation_error` (or 413), never a
2xx that would store it. (An unknown query parameter is ignored, as HTTP APIs do.)
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from web_support import TEST_WEB, ShopModel, serve_in_thread, services_for_tests

from shopbot.config import Settings
from shopbot.web import create_app
from tools import Services


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
    return create_app(settings, model=ShopModel(), services=Services()).openapi()


MAX_EXAMPLES = 25
SEED = 18
"""Any fixed number: the same cases on every run and every machine."""
schema = schemathesis.openapi.from_dict(openapi_document(), config=SchemathesisConfig(seed=SEED))


@schema.parametrize()  # pyright: ignore[reportUntypedFunctionDecorator]
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_matches_the_openapi_document(case: Any, served: Served) -> None:
    meta = case.meta
    negated = meta is not None and (
        meta.is_negative_at(ParameterLocation.PATH) or meta.is_negative_at(ParameterLocation.HEADER)
    )
    headers: dict[str, str] = {}
    opened = "conversation_id" in case.path_parameters and not negated
    if opened:
        case.path_parameters["conversation_id"] = served.conversation_id
        headers["Authorization"] = f"Bearer {served.token}"
    response = case.call(base_url=served.url, headers=headers)
    assert response.status_code < 500, f"server error: {response.status_code} {response.text}"
    documented = case.method.upper() == case.operation.method.upper()
    if opened and documented:
        # The conversation exists and the token opens it: whatever else is wrong, not a 404.
        assert response.status_code != 404, response.text
    if response.status_code == 413:
        # An oversize body is refused before the schema is read: a rejection all the same,
        # which schemathesis's list of rejection codes does not include.
        assert response.json()["error"]["code"] == "payload_too_large"
        return
    if (
        meta is not None
        and documented
        and not negated
        and meta.is_negative_at(ParameterLocation.BODY)
    ):
        # Only the body is invalid (the conversation and its token are real): bad input.
        assert response.status_code == 422, f"{response.status_code} {response.text}"
        assert response.json()["error"]["code"] == "validation_error"
    case.validate_response(response)
