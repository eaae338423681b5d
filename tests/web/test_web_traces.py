"""A worker of `shopbot serve` with SHOPBOT_OTEL_ENDPOINT set: its turns reach the collector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web_support import create_conversation, open_api, say

from shopbot.config import Settings
from tests.tracing_support import Collector, forget_tracer_provider, running_collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    with running_collector() as found:
        yield found


@pytest.fixture
def forget_provider() -> Iterator[None]:
    """The app installs its provider process-wide: forgotten after the test."""
    yield
    forget_tracer_provider()


@pytest.mark.usefixtures("forget_provider")
async def test_a_workers_turns_are_exported_and_flushed_as_it_stops(
    settings: Settings, collector: Collector
) -> None:
    traced = settings.model_copy(update={"otel_endpoint": collector.url})
    async for api in open_api(traced):
        cid, auth = await create_conversation(api.client)
        await say(api, cid, auth, "Hello, where is my order?")
    # The lifespan has ended: what the batch held was sent on the way out.
    spans = collector.spans()
    assert ("shopbot", "invoke_agent shopbot") in spans
    assert ("shopbot", "chat shop-function-model") in spans
