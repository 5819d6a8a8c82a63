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

import functools
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from dueflow import config

if TYPE_CHECKING:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER = "dueflow"
TRACE_EXTENSIONS = ("traceparent", "tracestate")


def _loaded() -> bool:
    """Whether OpenTelemetry's API is loaded in this process. Until it is, no span can be
    current (nothing could have started one), so the helpers below have nothing to do, and a
    function with tracing off answers its first request without importing it (a cold start):
    the API comes with configured tracing, an incoming trace context, or the outbox relay."""
    return "opentelemetry.trace" in sys.modules


@functools.cache
def _w3c() -> TraceContextTextMapPropagator:
    """The extension is W3C Trace Context by definition, whatever OTEL_PROPAGATORS says for
    HTTP."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def configure_tracing() -> bool:
    """Export spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (once per process; a
    provider configured before, e.g. by a test or opentelemetry-instrument, is kept)."""
    if config.otel_endpoint() is None:
        return False
    from opentelemetry import trace
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
    span = _current_span()
    if span is not None and span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


#: the span attributes (old and new HTTP semantic conventions) that hold the request's path
_PATH_ATTRIBUTES = ("http.target", "url.path")


def redact_request_path(route: str) -> None:
    """Record the current request span's path as its route: the path holds a secret (the
    calendar feed's token) that traces must not carry."""
    span = _current_span()
    if span is not None and span.is_recording():
        for name in _PATH_ATTRIBUTES:
            span.set_attribute(name, route)


def with_trace_context(event: dict) -> dict:
    """`event` with the current span's traceparent (and tracestate) as extensions; unchanged
    outside a trace, or when it carries a trace context of its own."""
    if "traceparent" in event or not _loaded():
        return event
    carrier: dict[str, str] = {}
    _w3c().inject(carrier)  # writes nothing unless the current span context is valid
    return {**event, **carrier} if carrier else event


def trace_carrier(attributes: Mapping) -> dict[str, str]:
    return {k: str(attributes[k]) for k in TRACE_EXTENSIONS if attributes.get(k)}


def _current_span() -> Any:
    """The current span, or None while OpenTelemetry is not loaded (see `_loaded`)."""
    if not _loaded():
        return None
    from opentelemetry import trace

    return trace.get_current_span()


def current_ids() -> tuple[str, str] | None:
    """The current span's (trace id, span id) in hex, for log lines; None outside a trace."""
    span = _current_span()
    if span is None:
        return None
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class _NoSpan:
    """What `child_span` yields when there is nothing to trace: takes attributes and drops them
    (as the API's non-recording span does)."""

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: object) -> None:
        pass


@contextmanager
def child_span(
    name: str,
    carrier: Mapping[str, str],
    kind: Literal["CONSUMER", "PRODUCER"],
    attributes: Mapping[str, object],
) -> Iterator[Any]:
    """A current span (of SpanKind `kind`) whose parent is the context in `carrier`
    ({"traceparent": ...}), not whatever happens to be current; a new trace when the carrier
    holds none. With no trace context to carry on and OpenTelemetry not loaded (no tracing
    configured), a span that records nothing, without loading it."""
    if not carrier and not _loaded():
        yield _NoSpan()
        return
    from opentelemetry import trace
    from opentelemetry.context import Context

    parent = _w3c().extract(carrier, context=Context())
    tracer = trace.get_tracer(TRACER)  # looked up per use: the provider may be set later
    with tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind[kind], attributes=dict(attributes)
    ) as span:
        yield span


def mark_error(span: Any, description: str) -> None:
    """Set a recording span's status to ERROR."""
    if span.is_recording():
        from opentelemetry.trace import StatusCode

        span.set_status(StatusCode.ERROR, description)
