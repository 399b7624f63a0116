"""Prometheus metrics every service exposes, and the HTTP server for /metrics, /healthz and /readyz."""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
AGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


class ServiceMetrics:
    """The standard metric families, registered in a registry of their own (one per service)."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "freightline_records_consumed_total",
            "Records consumed, by topic and outcome (ok, dead_lettered, retried).",
            ["service", "topic", "outcome"],
            registry=r,
        )
        self.records_out = Counter(
            "freightline_records_produced_total",
            "Records whose delivery the broker acknowledged or refused, by topic and outcome.",
            ["service", "topic", "outcome"],
            registry=r,
        )
        self.processing_latency = Histogram(
            "freightline_processing_latency_seconds",
            "Time from a batch's consumption to its commit.",
            ["service", "topic"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_age = BatchHistogram(
            "freightline_event_age_seconds",
            "Event time to processing time (end-to-end freshness).",
            ["service", "topic"],
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.errors = Counter("freightline_errors_total", "Errors by kind.", ["service", "kind"], registry=r)
        self.dead_letters = Counter(
            "freightline_dead_letters_total",
            "Records sent to a dead-letter topic, by source topic and error type.",
            ["service", "topic", "error_type"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "freightline_consumer_lag_records",
            "High watermark minus committed position, per partition.",
            ["service", "topic", "partition"],
            registry=r,
        )
        self.commits = Counter(
            "freightline_offset_commits_total", "Offset commits by outcome.", ["service", "outcome"], registry=r
        )

    def record_in(self, topic: str, outcome: str = "ok", count: int = 1) -> None:
        self.records_in.labels(self.service, topic, outcome).inc(count)

    def record_out(self, topic: str, outcome: str = "ok", count: int = 1) -> None:
        self.records_out.labels(self.service, topic, outcome).inc(count)

    def error(self, kind: str) -> None:
        self.errors.labels(self.service, kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


Check = Callable[[], bool]


class MetricsServer:
    """``/metrics`` (Prometheus text format), ``/healthz`` (alive) and ``/readyz`` (ready for traffic)."""

    def __init__(
        self,
        metrics: ServiceMetrics,
        host: str,
        port: int,
        *,
        live: Check | None = None,
        ready: Check | None = None,
    ) -> None:
        self.metrics = metrics
        self.live = live or (lambda: True)
        self.ready = ready or (lambda: True)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, server.metrics.render(), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/readyz"):
                    check = server.live if path == "/healthz" else server.ready
                    try:
                        ok = check()
                    except Exception:
                        log.exception("health check %s failed", path)
                        ok = False
                    self._send(200 if ok else 503, b"ok\n" if ok else b"not ready\n", "text/plain")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self._httpd.server_address[0], self.port)
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class BatchHistogram:
    """A labelled histogram that also takes a whole batch of values at once (``observe_many``).

    prometheus_client's ``Histogram`` takes one value per call (a lock and a walk over the buckets each time),
    which costs more than the per-event work on a hot path. This keeps its own bucket counts and exposes them
    through the client's public custom-collector API (``HistogramMetricFamily``), in the same text format, so a
    batch of n values costs n bisections and one locked update.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.bounds = [*sorted(float(b) for b in buckets if b != float("inf")), float("inf")]
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], BatchHistogramChild] = {}
        registry.register(self)

    def labels(self, *values: str) -> BatchHistogramChild:
        key = tuple(str(v) for v in values)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {key}")
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = BatchHistogramChild(self.bounds)
            return child

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            children = list(self._children.items())
        for key, child in children:
            counts, total = child.snapshot()
            cumulative, running = [], 0
            for bound, count in zip(self.bounds, counts, strict=True):
                running += count
                cumulative.append((floatToGoString(bound), running))
            family.add_metric(list(key), cumulative, total)
        yield family


class BatchHistogramChild:
    """One label set of a ``BatchHistogram``: per-bucket (not cumulative) counts and the sum."""

    def __init__(self, bounds: list[float]) -> None:
        self._bounds = bounds
        self._counts = [0] * len(bounds)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        self.observe_many((value,))

    def observe_many(self, values: Iterable[float]) -> None:
        """The same bucket counts and sum as one ``observe`` per value (a value equal to a bound is in it)."""
        bounds = self._bounds
        counts = [0] * len(bounds)
        total = 0.0
        for value in values:
            total += value
            counts[bisect_left(bounds, value)] += 1
        with self._lock:
            self._sum += total
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]

    def snapshot(self) -> tuple[list[int], float]:
        with self._lock:
            return list(self._counts), self._sum
