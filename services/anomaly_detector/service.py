"""Kafka glue of the detector: the shared ConsumerLoop feeds decoded events to the detectors, and the anomalies
they find are produced as ``com.freightline.analytics.Anomaly`` through the loop's producer (so they are durable
before the batch's offsets are committed). Undecodable records go to ``<topic>.dlq``.

Window state lives in memory: a restart replays only the uncommitted batch, so windows open at a crash start
empty again (an anomaly straddling a crash can be missed; none is emitted twice with another id, since anomaly
ids are derived from type, entity and window).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message
from prometheus_client import Counter

from schemas.catalogue import Catalogue, load_catalogue, load_schema
from services.anomaly_detector import detectors
from services.anomaly_detector.settings import (
    ANOMALIES,
    CLICKSTREAM,
    INPUT_TOPICS,
    INVOICES,
    PAYMENTS,
    SHIPMENTS,
    VIEWS,
    DetectorSettings,
)
from services.common.deadletter import DeadLetterPublisher, dead_letter_topic
from services.common.kafka import ConsumerLoop, Producer, ensure_topics
from services.common.metrics import ServiceMetrics
from services.common.serde import AvroSerde, Encoder, SerdeError, subject_for

log = logging.getLogger(__name__)

SERVICE = "anomaly_detector"


class DetectorMetrics:
    def __init__(self, base: ServiceMetrics) -> None:
        self.anomalies = Counter(
            "freightline_anomaly_detector_anomalies_total",
            "Anomalies emitted, by anomaly type.",
            ["type"],
            registry=base.registry,
        )
        self.events = Counter(
            "freightline_anomaly_detector_events_total",
            "Events fed to the detectors, by topic.",
            ["topic"],
            registry=base.registry,
        )


class Detection:
    """Routes events to the detectors and turns their findings into Anomaly records."""

    def __init__(
        self, settings: DetectorSettings, clock: Callable[[], float] = time.time, catalogue: Catalogue | None = None
    ) -> None:
        catalogue = catalogue or load_catalogue()
        lateness = int(settings.lateness_s * 1000)
        idle = settings.idle_timeout_s
        self.spikes = detectors.ReferrerSpikeDetector(
            lateness_ms=lateness,
            min_views=settings.spike_min_views,
            partitions=catalogue.topic(VIEWS).partitions,
            idle_timeout_s=idle,
        )
        self.errors = detectors.ErrorBurstDetector(
            lateness_ms=lateness,
            threshold=settings.error_threshold,
            partitions=catalogue.topic(CLICKSTREAM).partitions,
            idle_timeout_s=idle,
        )
        self.delays = detectors.ShipmentDelayDetector(
            min_delay_days=settings.delay_min_days, min_shipments=settings.delay_min_shipments
        )
        self.payments = detectors.PaymentAmountDetector(min_ratio=settings.payment_min_ratio)
        self.clock = clock
        names = {name: settings.topic(name) for name in INPUT_TOPICS}
        self.routes: dict[str, Callable[[dict[str, Any], int], list[dict[str, Any]]]] = {
            names[VIEWS]: self.spikes.observe,
            names[CLICKSTREAM]: self.errors.observe,
            names[SHIPMENTS]: self.delays.observe,
            names[INVOICES]: self.payments.observe_invoice,
            names[PAYMENTS]: self.payments.observe_payment,
        }

    def observe(self, topic: str, event: dict[str, Any], partition: int = 0) -> list[dict[str, Any]]:
        return [self.envelope(found) for found in self.routes[topic](event, partition)]

    def flush(self) -> list[dict[str, Any]]:
        found = detectors.flush_all([self.spikes, self.errors, self.delays, self.payments])
        return [self.envelope(item) for item in found]

    def envelope(self, found: dict[str, Any]) -> dict[str, Any]:
        now = int(self.clock() * 1000)
        return {
            "metadata": {
                "event_id": found["anomaly_id"],
                "event_time": found["window_end"] - 1,
                "ingest_time": now,
                "producer": SERVICE,
                "trace_context": None,
            },
            **found,
            "detected_at": now,
        }


class DetectorService:
    """The batch handler and idle flushing around :class:`Detection`."""

    def __init__(
        self,
        settings: DetectorSettings,
        producer: Producer,
        serde: AvroSerde,
        metrics: ServiceMetrics,
        catalogue: Catalogue | None = None,
    ) -> None:
        catalogue = catalogue or load_catalogue()
        self.settings = settings
        self.producer = producer
        self.metrics = metrics
        self.detector_metrics = DetectorMetrics(metrics)
        self.detection = Detection(settings, catalogue=catalogue)
        self.output = settings.topic(ANOMALIES)
        self.encoder: Encoder = serde.encoder(
            subject_for(self.output), load_schema(catalogue.topic(ANOMALIES).value_schema)
        )
        self.serde = serde
        self.dead_letters = DeadLetterPublisher(producer, serde, service=SERVICE, metrics=metrics)
        self.last_record = time.monotonic()
        self.pending_flush = False
        self.emitted = 0

    @property
    def input_topics(self) -> list[str]:
        return [self.settings.topic(name) for name in INPUT_TOPICS]

    def ensure_topics(self, admin_config: dict[str, Any], catalogue: Catalogue | None = None) -> None:
        catalogue = catalogue or load_catalogue()
        spec = catalogue.topic(ANOMALIES)
        dlq = catalogue.topic(dead_letter_topic(ANOMALIES))
        wanted = [(self.output, spec.partitions, spec.topic_config())]
        wanted += [(dead_letter_topic(t), dlq.partitions, dlq.topic_config()) for t in self.input_topics]
        ensure_topics(admin_config, wanted)

    def emit(self, anomalies: list[dict[str, Any]]) -> None:
        for anomaly in anomalies:
            self.producer.produce(self.output, self.encoder.encode(anomaly), anomaly["entity_key"])
            self.detector_metrics.anomalies.labels(anomaly["anomaly_type"]).inc()
            self.emitted += 1
            log.info(
                "anomaly %s %s score %.1f",
                anomaly["anomaly_type"],
                anomaly["entity_key"],
                anomaly["score"],
                extra={"window_start": anomaly["window_start"], "window_end": anomaly["window_end"]},
            )

    def handle(self, batch: list[Message]) -> None:
        found: list[dict[str, Any]] = []
        for message in batch:
            topic = message.topic() or ""
            try:
                event = self.serde.decode(message.value())
            except SerdeError as error:
                self.dead_letters.publish(message, error)
                continue
            try:
                found.extend(self.detection.observe(topic, event, message.partition() or 0))
            except (KeyError, TypeError, ValueError, ArithmeticError) as error:
                self.dead_letters.publish(message, error, "invalid_record")
                continue
            self.detector_metrics.events.labels(topic).inc()
            self.metrics.record_in(topic)
        self.emit(found)
        self.last_record = time.monotonic()
        self.pending_flush = True

    def tick(self) -> bool:
        """Called by the loop between batches: close open windows once the input went idle. Never pauses."""
        if self.pending_flush and time.monotonic() - self.last_record >= self.settings.idle_flush_s:
            self.flush()
        return False

    def flush(self) -> None:
        self.pending_flush = False
        anomalies = self.detection.flush()
        if anomalies:
            self.emit(anomalies)
            self.producer.flush(60.0)


def build_loop(
    service: DetectorService,
    consumer_config: dict[str, Any],
    shutdown: Any,
    batch_size: int,
    *,
    batch_timeout_s: float = 0.1,
    batch_idle_s: float | None = 0.002,
) -> ConsumerLoop:
    return ConsumerLoop(
        consumer_config,
        service.input_topics,
        service.handle,
        shutdown=shutdown,
        producer=service.producer,
        metrics=service.metrics,
        batch_size=batch_size,
        batch_timeout_s=batch_timeout_s,
        batch_idle_s=batch_idle_s,
        pause_while=service.tick,
    )
