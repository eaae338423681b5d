"""Traces over OTLP/HTTP to a collector on loopback, and the endpoint setting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from agent_support import act, turn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pydantic import ValidationError

from shopbot.app import start_conversation
from shopbot.config import Settings
from shopbot.loop import Agent, CustomerText
from shopbot.otlp import tracer_provider, traces_url
from shopbot.tracing import Tracing


class Collector(ThreadingHTTPServer):
    """Takes OTLP/HTTP posts as a collector does and keeps them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[tuple[str, str, bytes]] = []
        """(path, content type, body) of each request."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        assert isinstance(self.server, Collector)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def test_a_turn_reaches_the_collector_as_shopbot_when_the_provider_shuts_down(
    agent: Agent, collector: Collector
) -> None:
    provider = tracer_provider(settings(otel_endpoint=collector.url + "/"))
    assert provider is not None
    agent.tracing = Tracing(provider.get_tracer("shopbot"))
    cid = await start_conversation(agent.sessions, agent.settings)
    verify = act("verify_identity", order_id="482913", email="jane.doe@example.com")
    await turn(
        agent,
        cid,
        CustomerText("482913, jane.doe@example.com"),
        verify,
        act("reply", message="Hi."),
    )
    provider.shutdown()  # sends what is still queued

    assert {(path, kind) for path, kind, _ in collector.posts} == {
        ("/v1/traces", "application/x-protobuf")
    }
    names: list[str] = []
    for _, _, body in collector.posts:
        sent = ExportTraceServiceRequest.FromString(body)
        for batch in sent.resource_spans:
            resource = {a.key: a.value.string_value for a in batch.resource.attributes}
            assert resource["service.name"] == "shopbot"
            names += [span.name for scope in batch.scope_spans for span in scope.spans]
    assert sorted(names) == sorted(
        [
            "invoke_agent shopbot",
            "step",
            "chat scripted",
            "guard verify_identity",
            "execute_tool verify_identity",
            "step",
            "chat scripted",
            "guard reply",
        ]
    )


def test_no_endpoint_no_provider() -> None:
    assert tracer_provider(settings()) is None
    assert tracer_provider(settings(otel_endpoint="")) is None  # set but empty, as in compose


def test_the_traces_path_is_added_to_a_base_url_once() -> None:
    assert traces_url("http://localhost:4318") == "http://localhost:4318/v1/traces"
    assert traces_url("http://otel:4318/v1/traces") == "http://otel:4318/v1/traces"


@pytest.mark.parametrize("bad", ["localhost:4318", "grpc://otel:4317", "http://"])
def test_an_endpoint_that_is_not_an_http_url_is_refused_with_an_example(bad: str) -> None:
    with pytest.raises(ValidationError, match="http://localhost:4318"):
        settings(otel_endpoint=bad)
