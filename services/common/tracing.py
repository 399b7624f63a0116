"""OpenTelemetry tracing with W3C trace context carried in Kafka headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

KafkaHeaders = list[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()


class _HeaderSetter(Setter[KafkaHeaders]):
    def set(self, carrier: KafkaHeaders, key: str, value: str) -> None:
        carrier[:] = [(k, v) for k, v in carrier if k != key]
        carrier.append((key, value.encode()))


class _HeaderGetter(Getter[Sequence[tuple[str, bytes | None]]]):
    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        values = [v.decode(errors="replace") for k, v in carrier if k == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [k for k, _ in carrier]


def configure_tracing(service_name: str, exporter: str = "none") -> TracerProvider:
    """Install a tracer provider for ``service_name``; ``exporter`` is none, console or otlp."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError as error:  # pragma: no cover - depends on the deployment image
            raise ValueError("OTEL_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http") from error
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter != "none":
        raise ValueError(f"unknown OTEL_EXPORTER {exporter!r}: use none, console or otlp")
    trace.set_tracer_provider(provider)
    return provider


def inject(headers: KafkaHeaders | None = None, ctx: otel_context.Context | None = None) -> KafkaHeaders | None:
    """``headers`` plus the current (or given) trace context as ``traceparent``/``tracestate``.

    Returns ``headers`` untouched (possibly None) when there is no span to propagate: the common case on hot
    paths outside any trace costs one context lookup.
    """
    if ctx is None:
        ctx = otel_context.get_current()
        if not ctx:  # an empty context holds no span
            return headers
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return headers
    carrier: KafkaHeaders = list(headers or [])
    _PROPAGATOR.inject(carrier, context=ctx, setter=_HeaderSetter())
    return carrier


def extract(headers: Iterable[tuple[str, bytes | None]] | None) -> otel_context.Context:
    """The trace context carried by a record's headers (an empty context when there is none)."""
    return _PROPAGATOR.extract(list(headers or []), getter=_HeaderGetter())


def traceparent(headers: Iterable[tuple[str, bytes | None]] | None) -> str | None:
    for key, value in headers or []:
        if key == "traceparent" and value is not None:
            return value.decode(errors="replace")
    return None


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
