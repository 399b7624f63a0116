"""Prometheus metrics every service exposes, and the HTTP server for /metrics, /healthz and /readyz."""

from __future__ import annotations

import json
import logging
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from services.common.settings import LOCAL_HOST, ServiceSettings

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# End-to-end latency (event time or ingest time to processed): fine below 100 ms so a 20 ms p50 and the SLO's
# 100 ms bound are read from real bucket edges, then coarse up to a day for backlogs of old events.
AGE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
    1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400,
)  # fmt: skip
# Records per batch or per write.
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 50000)
# The ingest-age histogram takes every n-th record of a batch, n = len(batch) // AGE_SAMPLE (at least 1): under
# 2 * AGE_SAMPLE records per batch, so its cost per batch stays flat whatever the batch size.
AGE_SAMPLE = 100


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
        self.event_age = self._age(
            "freightline_event_age_seconds", "Event time to processing time (end-to-end freshness)."
        )
        self.ingest_age = self._age(
            "freightline_ingest_age_seconds",
            "Ingest time (the Kafka record's timestamp) to processing time: the batch's outputs are durable.",
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
            "High watermark minus committed position, per consumer group and partition.",
            ["service", "group", "topic", "partition"],
            registry=r,
        )
        self.commits = Counter(
            "freightline_offset_commits_total", "Offset commits by outcome.", ["service", "outcome"], registry=r
        )
        self.last_commit = Gauge(
            "freightline_last_commit_timestamp_seconds",
            "Unix time of the last successful offset commit, per consumer group (its age: time() minus this).",
            ["service", "group"],
            registry=r,
        )

    def _age(self, name: str, documentation: str) -> BatchHistogram:
        """An end-to-end latency histogram per service and topic (``AGE_BUCKETS``, observed per batch)."""
        return BatchHistogram(name, documentation, ["service", "topic"], buckets=AGE_BUCKETS, registry=self.registry)

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
    """``/metrics`` (Prometheus text format), ``/healthz`` (alive) and ``/readyz`` (ready for traffic).

    With ``targets_dir`` the server also announces itself to Prometheus's file-based service discovery: while it
    runs, ``<targets_dir>/<service>/<pid>.json`` names its address (see ``TargetFile``).
    """

    def __init__(
        self,
        metrics: ServiceMetrics,
        host: str,
        port: int,
        *,
        live: Check | None = None,
        ready: Check | None = None,
        targets_dir: str | None = None,
    ) -> None:
        self.metrics = metrics
        self.target_file = TargetFile(Path(targets_dir), metrics.service) if targets_dir else None
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

    @classmethod
    def for_service(
        cls, metrics: ServiceMetrics, service: ServiceSettings, *, live: Check | None = None, ready: Check | None = None
    ) -> MetricsServer:
        """The server a service runs: address from ``METRICS_HOST``/``METRICS_PORT``, announced in
        ``METRICS_TARGETS_DIR`` when that is set."""
        return cls(
            metrics,
            service.metrics_host,
            service.metrics_port,
            live=live,
            ready=ready,
            targets_dir=service.metrics_targets_dir,
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        host = str(self._httpd.server_address[0])
        log.info("metrics on http://%s:%d/metrics", host, self.port)
        if self.target_file is not None:
            try:
                self.target_file.write(LOCAL_HOST if host in ("0.0.0.0", "::", "") else host, self.port)
            except OSError as error:  # monitoring must not stop the service: it runs, unannounced
                log.warning("METRICS_TARGETS_DIR: cannot announce this process to Prometheus: %s", error)
                self.target_file = None
        return self

    def stop(self) -> None:
        if self.target_file is not None:
            self.target_file.remove()
        self._httpd.shutdown()
        self._httpd.server_close()


class TargetFile:
    """One process's entry for Prometheus's file-based service discovery (``file_sd_configs``).

    ``<directory>/<service>/<pid>.json`` holds ``[{"targets": ["host:port"]}]``; Prometheus scrapes every file of
    the folder under the job ``<service>`` (``deploy/metrics_targets.py``). The file is written atomically (a
    temporary name Prometheus does not read, then a rename) and removed on stop; files left by processes that no
    longer run (a SIGKILL) are removed when the next process of the same service starts.
    """

    def __init__(self, directory: Path, service: str) -> None:
        self.folder = directory / service
        self.path = self.folder / f"{os.getpid()}.json"

    def write(self, host: str, port: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._prune()
        temporary = self.folder / f".{self.path.name}.tmp"
        temporary.write_text(json.dumps([{"targets": [f"{host}:{port}"]}]))
        temporary.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def _prune(self) -> None:
        for entry in self.folder.glob("*.json"):
            if entry.stem.isdigit() and not _alive(int(entry.stem)):
                entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
