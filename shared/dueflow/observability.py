"""OpenTelemetry tracing across functions.

Spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set, but the trace context travels
whenever a tracer provider is configured: an event written to the outbox carries the current span
as the CloudEvents Distributed Tracing extension (`traceparent`, `tracestate`), the relay sends it
along, and the function that receives the event starts its span as a child of it. So one trace
runs from an HTTP request through the outbox and the Broker into recurrence or notify. With no
provider, the API's no-op tracer still hands an incoming context on unchanged, so a function
without tracing does not cut the trace of those around it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dueflow import config

TRACER = "dueflow"
TRACE_EXTENSIONS = ("traceparent", "tracestate")
# The extension is W3C Trace Context by definition, whatever OTEL_PROPAGATORS says for HTTP.
_W3C = TraceContextTextMapPropagator()


def configure_tracing() -> bool:
    """Export spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (once per process; a
    provider configured before, e.g. by a test or opentelemetry-instrument, is kept)."""
    if config.otel_endpoint() is None:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create())  # OTEL_SERVICE_NAME etc. apply
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    return True


def instrument_flask(app) -> bool:
    """Trace every request of `app` and export spans over OTLP/HTTP; False when not configured."""
    if not configure_tracing():
        return False
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app)
    return True


def name_request_span(method: str, route: str) -> None:
    """Name the current request span after the route template: functions-framework routes every
    path through one catch-all Flask rule, so the Flask instrumentation cannot."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


#: the span attributes (old and new HTTP semantic conventions) that hold the request's path
_PATH_ATTRIBUTES = ("http.target", "url.path")


def redact_request_path(route: str) -> None:
    """Record the current request span's path as its route: the path holds a secret (the
    calendar feed's token) that traces must not carry."""
    span = trace.get_current_span()
    if span.is_recording():
        for name in _PATH_ATTRIBUTES:
            span.set_attribute(name, route)


def with_trace_context(event: dict) -> dict:
    """`event` with the current span's traceparent (and tracestate) as extensions; unchanged
    outside a trace, or when it carries a trace context of its own."""
    if "traceparent" in event:
        return event
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)  # writes nothing unless the current span context is valid
    return {**event, **carrier} if carrier else event


def trace_carrier(attributes: Mapping) -> dict[str, str]:
    return {k: str(attributes[k]) for k in TRACE_EXTENSIONS if attributes.get(k)}


@contextmanager
def child_span(
    name: str, carrier: Mapping[str, str], kind: SpanKind, attributes: Mapping[str, object]
) -> Iterator[Span]:
    """A current span whose parent is the context in `carrier` ({"traceparent": ...}), not
    whatever happens to be current; a new trace when the carrier holds none."""
    parent = _W3C.extract(carrier, context=Context())
    tracer = trace.get_tracer(TRACER)  # looked up per use: the provider may be set later
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes)
    ) as span:
        yield span
