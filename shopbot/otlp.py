"""Exporting traces: an SDK tracer provider that sends the agent's spans over OTLP/HTTP.

The interfaces that run turns for real (`shopbot chat`, each worker of `shopbot serve`)
install it when SHOPBOT_OTEL_ENDPOINT is set and shut it down as they exit, which sends what
is still queued. Spans leave in batches from a background thread (`BatchSpanProcessor`): a
turn never waits for the collector, and a collector that is down costs a logged error, not a
turn. The exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables for what is not set
here: headers for a collector that wants a key, a certificate, a timeout (10 s by default,
which bounds the flush at exit when the collector is unreachable).

The SDK is imported only when tracing is on; without it the agent's tracer is the API's
no-op one (`shopbot.tracing`).
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from opentelemetry import trace

from shopbot.config import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["SERVICE", "exporting", "install", "tracer_provider", "traces_url"]

SERVICE = "shopbot"
"""The `service.name` of every span ShopBot exports."""


def traces_url(endpoint: str) -> str:
    """The traces URL of a collector's OTLP/HTTP base URL: `/v1/traces` appended, as for
    OTEL_EXPORTER_OTLP_ENDPOINT; a URL that already ends with it is kept."""
    url = endpoint.rstrip("/")
    return url if url.endswith("/v1/traces") else f"{url}/v1/traces"


def tracer_provider(settings: Settings) -> TracerProvider | None:
    """A provider exporting to `settings.otel_endpoint`; None when it is unset."""
    if settings.otel_endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    try:
        release = version("shopbot")
    except PackageNotFoundError:
        release = "0"
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: SERVICE, SERVICE_VERSION: release})
    )
    exporter = OTLPSpanExporter(endpoint=traces_url(settings.otel_endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install(settings: Settings) -> TracerProvider | None:
    """Make the provider for `settings` the process's; None, and nothing installed, when
    tracing is off. The caller shuts it down (`provider.shutdown()`) at exit. OpenTelemetry
    takes a process's provider once: a second install is ignored with a warning."""
    provider = tracer_provider(settings)
    if provider is not None:
        trace.set_tracer_provider(provider)
    return provider


@contextmanager
def exporting(settings: Settings) -> Generator[TracerProvider | None]:
    """`install` for the block, then flush and shut down."""
    provider = install(settings)
    try:
        yield provider
    finally:
        if provider is not None:
            provider.shutdown()
