from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from services.common import tracing
from services.common.logging import configure_logging
from services.common.metrics import MetricsServer, ServiceMetrics
from services.common.settings import ServiceSettings


def test_trace_context_round_trips_through_kafka_headers() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("produce") as span:
        headers = tracing.inject([("other", b"x")])
        expected = span.get_span_context()
    assert headers is not None
    assert ("other", b"x") in headers
    parent = trace.get_current_span(tracing.extract(headers)).get_span_context()
    assert parent.trace_id == expected.trace_id
    assert parent.span_id == expected.span_id
    assert tracing.traceparent(headers) is not None


def test_inject_outside_any_trace_leaves_headers_alone() -> None:
    assert tracing.inject(None) is None
    assert tracing.inject([("k", b"v")]) == [("k", b"v")]


def test_inject_keeps_the_trace_a_record_already_carries_unless_given_one() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("record") as record:
        carried = tracing.inject([("k", b"v")])
    assert carried is not None
    with tracer.start_as_current_span("batch") as batch:
        assert tracing.inject(carried) == carried  # the record's own trace goes on
        replaced = tracing.inject(carried, trace.set_span_in_context(batch))
    assert replaced is not None
    assert [key for key, _ in replaced].count("traceparent") == 1
    assert _parent(replaced).span_id == batch.get_span_context().span_id != record.get_span_context().span_id


def _parent(headers: list[tuple[str, bytes]]) -> trace.SpanContext:
    return trace.get_current_span(tracing.extract(headers)).get_span_context()


def test_record_span_continues_a_sampled_record_and_hands_its_own_context_on() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("send") as sender:
        headers = tracing.inject([("k", b"v")])
    assert headers is not None
    traced = tracing.record_span(tracer, "process t", headers, {"messaging.kafka.offset": 7})
    assert traced is not None
    span, handed_on = traced
    span.end()
    assert isinstance(span, ReadableSpan)
    assert span.parent is not None and span.parent.span_id == sender.get_span_context().span_id
    assert ("k", b"v") in handed_on
    assert _parent(handed_on).span_id == span.get_span_context().span_id
    assert _parent(handed_on).trace_id == sender.get_span_context().trace_id


def test_record_span_leaves_records_outside_a_sampled_trace_alone() -> None:
    tracer = TracerProvider().get_tracer("test")
    assert tracing.record_span(tracer, "process t", None, {}) is None
    assert tracing.record_span(tracer, "process t", [("k", b"v")], {}) is None
    unsampled = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
    assert tracing.record_span(tracer, "process t", unsampled, {}) is None


def test_tracing_is_off_without_an_exporter_and_otlp_needs_its_endpoint() -> None:
    assert tracing.configure_tracing("svc") is None
    assert not tracing.active()
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        tracing.configure_tracing("svc", "otlp")
    with pytest.raises(ValueError, match="unknown OTEL_EXPORTER"):
        tracing.configure_tracing("svc", "zipkin")


def test_extract_without_headers_is_empty() -> None:
    assert not trace.get_current_span(tracing.extract(None)).get_span_context().is_valid


def test_json_logs_carry_trace_ids(capsys: object) -> None:
    stream = io.StringIO()
    configure_logging("svc", "INFO")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("x").info("hello %s", "world")
        trace_id = format(span.get_span_context().trace_id, "032x")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "hello world"
    assert line["service"] == "svc"
    assert line["trace_id"] == trace_id
    assert line["level"] == "INFO"


def test_metrics_server_endpoints() -> None:
    metrics = ServiceMetrics("svc")
    metrics.record_in("topic-a", "ok", 3)
    ready = {"value": False}
    server = MetricsServer(metrics, "127.0.0.1", 0, ready=lambda: ready["value"]).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        body = httpx.get(f"{base}/metrics").text
        assert 'freightline_records_consumed_total{outcome="ok",service="svc",topic="topic-a"} 3.0' in body
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").status_code == 503
        ready["value"] = True
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.stop()


def test_metrics_server_announces_itself_for_file_discovery_while_it_runs(tmp_path: Path) -> None:
    service = ServiceSettings(service_name="svc", metrics_port=0, metrics_targets_dir=str(tmp_path))
    stale = tmp_path / "svc" / "999999999.json"  # a process that no longer runs (no pid is this high)
    stale.parent.mkdir()
    stale.write_text("[]")
    server = MetricsServer.for_service(ServiceMetrics("svc"), service).start()
    announced = tmp_path / "svc" / f"{os.getpid()}.json"
    try:
        assert json.loads(announced.read_text()) == [{"targets": [f"127.0.0.1:{server.port}"]}]
        assert not stale.exists()
        assert sorted(p.name for p in (tmp_path / "svc").iterdir()) == [announced.name]
    finally:
        server.stop()
    assert not announced.exists()


def test_metrics_server_without_a_targets_dir_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METRICS_TARGETS_DIR", raising=False)
    server = MetricsServer.for_service(ServiceMetrics("svc"), ServiceSettings(service_name="svc")).start()
    server.stop()
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_targets_dir_leaves_the_service_running_unannounced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    service = ServiceSettings(service_name="svc", metrics_targets_dir=str(blocker))
    server = MetricsServer.for_service(ServiceMetrics("svc"), service).start()
    try:
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200
        assert "METRICS_TARGETS_DIR" in caplog.text
    finally:
        server.stop()
