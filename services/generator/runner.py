"""Kafka and registry glue: topics, encoders, pacing, producing, metrics and the run summary."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge

from schemas.catalogue import Catalogue, load_catalogue, load_schema
from services.common.avro_codegen import writer_for
from services.common.kafka import Producer, Sender, ensure_topics, producer_config
from services.common.lifecycle import Shutdown
from services.common.metrics import ServiceMetrics
from services.common.serde import HEADER, MAGIC_BYTE, AvroSerde, Encoder, InvalidRecord, RegistryLike, subject_for
from services.common.settings import KafkaSettings, RemoteKafkaSettings
from services.generator.engine import Engine
from services.generator.records import ALL_TOPICS, ANOMALY_LABELS, Emitted
from services.generator.settings import GeneratorSettings

log = logging.getLogger(__name__)

SERVICE = "generator"
METRICS_BATCH = 2_000
CHECK_EVERY = 256  # records between checks of the stop conditions (and serving delivery reports) when unpaced

# Young-generation threshold of the cyclic garbage collector during a run: every event allocates a few dicts
# that reference counting frees (they form no cycles), so frequent young collections only cost time.
GC_YOUNG_THRESHOLD = 50_000


@contextmanager
def collector_tuned() -> Iterator[None]:
    """Fewer cyclic collections while generating; the objects alive at the start (world, schemas, modules) are
    left out of them. Settings restored afterwards."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class GeneratorMetrics:
    """Service-specific families on top of the standard ones."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.base = metrics
        self.events = PromCounter(
            "freightline_generator_events_total",
            "Records handed to the producer, by catalogue topic.",
            ["topic"],
            registry=metrics.registry,
        )
        self.anomalies = PromCounter(
            "freightline_generator_anomalies_injected_total",
            "Anomalies injected (and labelled), by kind.",
            ["kind"],
            registry=metrics.registry,
        )
        self.scheduled = Gauge(
            "freightline_generator_scheduled_records",
            "Records, ticks and labels the engine holds for later (the open orders' and shipments' future records).",
            registry=metrics.registry,
        )


@dataclass
class Summary:
    """What a run produced; printed as one JSON line at the end."""

    events: int = 0
    records: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    anomalies_injected: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    stopped_by: str = "limit"
    seed: int = 0
    start_time_ms: int = 0
    scheduled_peak: int = 0  # the most records, ticks and labels the engine held for later at once

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "start": dt.datetime.fromtimestamp(self.start_time_ms / 1000, dt.UTC).isoformat(),
            "events": self.events,
            "records": self.records,
            "topics": dict(sorted(self.topics.items())),
            "anomalies_injected": dict(sorted(self.anomalies_injected.items())),
            "anomalies_total": sum(self.anomalies_injected.values()),
            "elapsed_s": round(self.elapsed_s, 3),
            "records_per_s": round(self.records / self.elapsed_s, 1) if self.elapsed_s > 0 else None,
            "stopped_by": self.stopped_by,
            "scheduled_peak": self.scheduled_peak,
        }


class GeneratorRunner:
    """Produces an :class:`Engine`'s stream to the local and remote clusters through the registry."""

    def __init__(
        self,
        settings: GeneratorSettings,
        kafka: KafkaSettings,
        remote: RemoteKafkaSettings,
        registry: RegistryLike,
        *,
        shutdown: Shutdown | None = None,
        metrics: ServiceMetrics | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.remote = remote
        self.serde = AvroSerde(registry)
        self.shutdown = shutdown or Shutdown()
        self.metrics = metrics or ServiceMetrics(SERVICE)
        self.generator_metrics = GeneratorMetrics(self.metrics)
        self.catalogue = catalogue or load_catalogue()
        self.specs = {name: self.catalogue.topic(name) for name in ALL_TOPICS}
        self.names = {name: settings.topic(name) for name in ALL_TOPICS}
        self._producers: dict[str, Producer] = {}
        self._routes: dict[str, tuple[str, Encoder, Sender]] = {}
        self._published: Counter[str] = Counter()
        self._anomalies_published: dict[str, int] = {}
        self._scheduled_peak = 0

    # -- setup -----------------------------------------------------------------------------------------------
    def _cluster_settings(self, cluster: str) -> KafkaSettings:
        return self.remote if cluster == "remote" else self.kafka

    def setup(self) -> None:
        """Create the topics (catalogue partitions and configs), register the schemas, open the producers."""
        by_cluster: dict[str, list[tuple[str, int, dict[str, str]]]] = {}
        for name, spec in self.specs.items():
            by_cluster.setdefault(spec.cluster, []).append((self.names[name], spec.partitions, spec.topic_config()))
        for cluster, topics in by_cluster.items():
            if self.settings.create_topics:
                ensure_topics(self._cluster_settings(cluster), topics)
            self._producers[cluster] = Producer(
                producer_config(self._cluster_settings(cluster), f"{SERVICE}-{cluster}"),
                self.metrics,
                # Paced runs count each delivery as it is acknowledged (progress on the metrics while running);
                # full-speed runs ask for error reports only (no Python call per acknowledged record) and count
                # the deliveries when a flush confirms them.
                report_successes=self.settings.pace,
            )
        for name, spec in self.specs.items():
            topic = self.names[name]
            encoder = self.serde.encoder(subject_for(topic), load_schema(spec.value_schema))
            self._routes[name] = (topic, encoder, self._producers[spec.cluster].sender(topic))
        log.info("generator topics: %s", self.names)

    # -- run -------------------------------------------------------------------------------------------------
    def run(self, events: int | None = None, duration_s: float | None = None) -> Summary:
        """Generate until ``events`` events were produced, ``duration_s`` passed or shutdown was requested."""
        if not self._routes:
            self.setup()
        start_ms = self.settings.start_ms()
        engine = Engine(self.settings.engine_config(start_ms))
        self._published, self._anomalies_published, self._scheduled_peak = Counter(), {}, 0
        summary = Summary(seed=self.settings.seed, start_time_ms=start_ms)
        counts: Counter[str] = Counter(dict.fromkeys(self._routes, 0))
        started = time.monotonic()
        deadline = started + duration_s if duration_s is not None else None
        if self.settings.reference_snapshot:
            for item in engine.reference_snapshot():
                self._send(item)
                counts[item.topic] += 1
        if self.settings.pace:
            produced_events = self._run_paced(engine, counts, summary, events, deadline, start_ms, started)
        else:
            with collector_tuned():
                produced_events = self._run_unpaced(engine, counts, summary, events, deadline)
        for label in engine.finish():
            self._send(label)
            counts[label.topic] += 1
        for producer in self._producers.values():
            producer.flush(120.0)
        summary.elapsed_s = time.monotonic() - started
        summary.events = produced_events
        summary.records = sum(counts.values())
        summary.topics = {self.names[name]: count for name, count in counts.items() if count}
        summary.anomalies_injected = dict(engine.anomalies_injected)
        self._publish_metrics(counts, engine)
        summary.scheduled_peak = self._scheduled_peak
        return summary

    def _stopped(self, summary: Summary, deadline: float | None, produced: int = 0, events: int | None = None) -> bool:
        """Whether the run ends now (``events`` produced, the deadline passed, a stop requested); the summary
        records why."""
        if events is not None and produced >= events:
            reason = "events"
        elif deadline is not None and time.monotonic() >= deadline:
            reason = "duration"
        elif self.shutdown.requested:
            reason = self.shutdown.reason or "shutdown"
        else:
            return False
        summary.stopped_by = reason
        return True

    def _run_unpaced(
        self, engine: Engine, counts: Counter[str], summary: Summary, events: int | None, deadline: float | None
    ) -> int:
        """Full speed: records in chunks, the stop conditions checked between chunks. Returns the events sent."""
        # Per topic: the wire-format header, the schema's compiled writer and the sender (what Encoder.encode
        # does, without a call per record).
        routes = {
            name: (
                HEADER.pack(MAGIC_BYTE, encoder.schema_id),
                writer_for(self.serde.writer_schema(encoder.schema_id)).append,
                sender,
            )
            for name, (_, encoder, sender) in self._routes.items()
        }
        servers = [producer.poll for producer in self._producers.values()]
        clock = time.time_ns
        labels = ANOMALY_LABELS
        by_topic = attrgetter("topic")
        produced = 0
        since_metrics = 0
        while True:
            if self._stopped(summary, deadline, produced, events):
                return produced
            chunk = CHECK_EVERY if events is None else min(CHECK_EVERY, events - produced)
            items = engine.take(chunk)
            for item in items:
                header, append, send = routes[item.topic]
                value = item.value
                metadata = value["metadata"]
                now_ms = clock() // 1_000_000
                if metadata["ingest_time"] < now_ms:
                    metadata["ingest_time"] = now_ms  # never earlier than the producer's clock at send time
                buffer = bytearray(header)
                try:
                    append(buffer, value)
                except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
                    raise InvalidRecord(f"{item.topic} record does not match its schema: {error}") from error
                send(bytes(buffer), item.key, item.event_time_ms)
            labelled = counts[labels]
            counts.update(map(by_topic, items))
            produced += len(items) - (counts[labels] - labelled)  # events and reference updates; labels on top
            for serve in servers:
                serve(0)
            since_metrics += chunk
            if since_metrics >= METRICS_BATCH:
                self._publish_metrics(counts, engine)
                since_metrics = 0

    def _run_paced(
        self,
        engine: Engine,
        counts: Counter[str],
        summary: Summary,
        events: int | None,
        deadline: float | None,
        start_ms: int,
        started: float,
    ) -> int:
        """Follow the wall clock: each record leaves when its produce time is due. Returns the events sent."""
        produced = 0
        since_metrics = 0
        shutdown = self.shutdown
        while True:
            if self._stopped(summary, deadline, produced, events):
                return produced
            item = engine.next()
            while (ahead := (item.produce_time_ms - start_ms) / 1000 - (time.monotonic() - started)) > 0.005:
                # Sleep in slices so that a stop request is served promptly.
                for producer in self._producers.values():
                    producer.poll(0)
                shutdown.wait(min(ahead, 0.5))
                if self._stopped(summary, deadline):
                    return produced
            self._send(item)
            counts[item.topic] += 1
            if item.topic != ANOMALY_LABELS:
                produced += 1
            since_metrics += 1
            if since_metrics >= METRICS_BATCH:
                self._publish_metrics(counts, engine)
                since_metrics = 0

    def _send(self, item: Emitted) -> None:
        _, encoder, send = self._routes[item.topic]
        now_ms = int(time.time() * 1000)
        metadata = item.value["metadata"]
        if metadata["ingest_time"] < now_ms:
            metadata["ingest_time"] = now_ms  # never earlier than the producer's clock at send time
        send(encoder.encode(item.value), item.key, item.event_time_ms)

    def _publish_metrics(self, counts: Counter[str], engine: Engine) -> None:
        for name, count in counts.items():
            delta = count - self._published.get(name, 0)
            if delta:
                self.generator_metrics.events.labels(name).inc(delta)
        self._published = Counter(counts)
        for kind, count in engine.anomalies_injected.items():
            delta = count - self._anomalies_published.get(kind, 0)
            if delta:
                self.generator_metrics.anomalies.labels(kind).inc(delta)
        self._anomalies_published = dict(engine.anomalies_injected)
        scheduled = engine.scheduled
        self._scheduled_peak = max(self._scheduled_peak, scheduled)
        self.generator_metrics.scheduled.set(scheduled)
        for producer in self._producers.values():
            producer.poll(0)

    def close(self) -> None:
        for producer in self._producers.values():
            producer.flush(60.0)
