"""Helpers for the traces' tests: a stand-in collector that takes OTLP/HTTP posts on
loopback, and forgetting the process-wide tracer provider a test installed."""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.util._once import Once


class Collector(ThreadingHTTPServer):
    """Takes OTLP/HTTP posts as a collector does and keeps them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[tuple[str, str, bytes]] = []
        """(path, content type, body) of each request."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[tuple[str, str]]:
        """(service.name, span name) of every span posted, sorted."""
        found: list[tuple[str, str]] = []
        for _, _, body in self.posts:
            for batch in ExportTraceServiceRequest.FromString(body).resource_spans:
                resource = {a.key: a.value.string_value for a in batch.resource.attributes}
                found += [
                    (resource["service.name"], span.name)
                    for scope in batch.scope_spans
                    for span in scope.spans
                ]
        return sorted(found)


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


@contextmanager
def running_collector() -> Generator[Collector]:
    """A collector on a free loopback port, serving from a thread."""
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def forget_tracer_provider() -> None:
    """OpenTelemetry takes a process's provider once: forget the one a test installed, as
    OpenTelemetry's own test utilities do, so no other test inherits it."""
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
