"""OpenTelemetry tracing with W3C trace context carried in Kafka headers.

Off unless configured: without an exporter no tracer provider is installed, so every tracer is the API's no-op
one and the hot paths skip their tracing branches (``active()`` is False). With ``OTEL_EXPORTER_OTLP_ENDPOINT``
set, spans go over OTLP/HTTP (protobuf) to that collector (Jaeger takes OTLP directly); ``TRACE_SAMPLE_RATIO``
is the share of new traces kept (parent-based: a record that arrives sampled is followed by every hop).

One record, one trace: the generator starts a trace per record it sends (``send <topic>``), and every consumer
loop gives each record that arrives with a sampled context a span of its own (``process <topic>``, a child of the
sender's span) and rewrites the record's ``traceparent`` to that span before its handler sees it, so whatever the
service produces from it (copied headers) continues the record's trace into the next hop.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common.settings import ServiceSettings

if TYPE_CHECKING:  # the SDK is imported only when tracing is configured (it costs a service's start-up otherwise)
    from opentelemetry.sdk.trace import TracerProvider

SDK_TRACE_MODULE = "opentelemetry.sdk.trace"

KafkaHeaders = list[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = frozenset(_PROPAGATOR.fields)
OTLP_TRACES_PATH = "/v1/traces"


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


def configure_tracing(
    service_name: str, exporter: str = "none", *, otlp_endpoint: str | None = None, sample_ratio: float = 1.0
) -> TracerProvider | None:
    """Install a tracer provider for ``service_name`` exporting to ``otlp_endpoint`` (an OTLP/HTTP base URL) when
    set, or to the console for ``exporter="console"``; None (tracing off, nothing installed) otherwise.
    ``sample_ratio`` is the share of new traces kept; spans under a sampled parent are always kept."""
    if exporter not in ("none", "console", "otlp"):
        raise ValueError(f"unknown OTEL_EXPORTER {exporter!r}: use none, console or otlp")
    if exporter == "otlp" and not otlp_endpoint:
        raise ValueError("OTEL_EXPORTER=otlp needs OTEL_EXPORTER_OTLP_ENDPOINT (the collector's OTLP/HTTP URL)")
    if exporter == "none" and not otlp_endpoint:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/")
        if not endpoint.endswith(OTLP_TRACES_PATH):
            endpoint += OTLP_TRACES_PATH
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)  # the provider exports what it still holds when the process exits
    return provider


def configure_service_tracing(settings: ServiceSettings) -> TracerProvider | None:
    """``configure_tracing`` from a service's settings (``OTEL_EXPORTER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``TRACE_SAMPLE_RATIO``)."""
    return configure_tracing(
        settings.service_name,
        settings.otel_exporter,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        sample_ratio=settings.trace_sample_ratio,
    )


def active() -> bool:
    """Whether a tracer provider is installed (``configure_tracing`` with an exporter): the hot paths trace
    records only then. No SDK provider can exist before the SDK was imported (it is imported when one is made)."""
    sdk = sys.modules.get(SDK_TRACE_MODULE)
    return sdk is not None and isinstance(trace.get_tracer_provider(), sdk.TracerProvider)


def inject(headers: KafkaHeaders | None = None, ctx: otel_context.Context | None = None) -> KafkaHeaders | None:
    """``headers`` plus the current (or given) trace context as ``traceparent``/``tracestate``.

    Returns ``headers`` untouched (possibly None) when there is no span to propagate: the common case on hot
    paths outside any trace costs one context lookup. Headers that already carry a ``traceparent`` (copied from
    the record they were made from) keep it unless ``ctx`` is given: a record continues its own trace rather
    than the batch's.
    """
    if ctx is None:
        if headers and any(key == "traceparent" for key, _ in headers):
            return headers
        ctx = otel_context.get_current()
        if not ctx:  # an empty context holds no span
            return headers
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return headers
    carrier: KafkaHeaders = [(k, v) for k, v in headers or [] if k not in TRACE_HEADERS]
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


def record_span(
    tracer: trace.Tracer,
    name: str,
    headers: Sequence[tuple[str, bytes | None]] | None,
    attributes: Mapping[str, str | int],
) -> tuple[trace.Span, KafkaHeaders] | None:
    """A consumer span for one record whose headers carry a sampled trace context: the span (a child of the
    record's sender's span; end it when the record is done) and the record's headers with its context replaced
    by the span's (to hand on to what is made from the record). None for a record outside any sampled trace."""
    if not headers:
        return None
    parent = extract(headers)
    if not trace.get_current_span(parent).get_span_context().trace_flags.sampled:
        return None
    span = tracer.start_span(name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes)
    kept = [(k, v) for k, v in headers if v is not None]
    carrier = inject(kept, trace.set_span_in_context(span))
    return span, carrier or kept
