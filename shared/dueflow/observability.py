"""OpenTelemetry: Flask tracing, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

from dueflow import config


def instrument_flask(app) -> bool:
    """Trace every request of `app` and export spans over OTLP/HTTP; False when not configured."""
    if config.otel_endpoint() is None:
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create())  # OTEL_SERVICE_NAME etc. apply
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    FlaskInstrumentor().instrument_app(app)
    return True
