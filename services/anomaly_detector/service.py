"""Kafka glue of the detector's two stages, each a shared ``ConsumerLoop`` with its own producer (outputs are
durable before the batch's offsets are committed); undecodable or invalid records go to ``<topic>.dlq``.

- :class:`RepartitionService` (stage 1, group ``<GROUP_ID>-repartition``): raw topics -> ``DetectorInput``
  records on the repartition topic, keyed by the detector's entity. Stateless.
- :class:`DetectorService` (stage 2, group ``GROUP_ID``): repartition topic -> one detection task per partition
  (:class:`~services.anomaly_detector.topology.Tasks`) -> ``com.freightline.analytics.Anomaly``.

Window state lives in memory: a restart replays only the uncommitted batch, so windows open at a crash start
empty again (an anomaly straddling a crash can be missed; none is emitted twice with another id, since anomaly
ids are derived from type, entity and window). A partition revoked in a rebalance has its open windows
evaluated on what they hold and its task dropped; its new owner starts it afresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Message
from prometheus_client import Counter

from schemas.catalogue import Catalogue, load_catalogue, load_schema
from services.anomaly_detector.settings import ANOMALIES, DETECTOR_INPUT, INPUT_TOPICS, DetectorSettings
from services.anomaly_detector.topology import SERVICE, Tasks, detector_input
from services.common.deadletter import (
    INVALID_RECORD,
    UNPROCESSABLE,
    DeadLetterPublisher,
    dead_letter_topic,
    decoded,
)
from services.common.kafka import ConsumerLoop, Producer, ensure_topics
from services.common.metrics import ServiceMetrics
from services.common.serde import AvroSerde, Encoder, subject_for
from services.common.settings import KafkaSettings

log = logging.getLogger(__name__)


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
            "Events fed to the detectors, by raw topic.",
            ["topic"],
            registry=base.registry,
        )


class _Stage:
    """What both stages hold: settings, producer, serde, metrics, dead letters and the encoder of their output
    (catalogue topic ``output``)."""

    OUTPUT = ANOMALIES

    def __init__(
        self,
        settings: DetectorSettings,
        producer: Producer,
        serde: AvroSerde,
        metrics: ServiceMetrics,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.catalogue = catalogue or load_catalogue()
        self.settings = settings
        self.producer = producer
        self.serde = serde
        self.metrics = metrics
        self.output = settings.topic(self.OUTPUT)
        self.encoder: Encoder = serde.encoder(
            subject_for(self.output), load_schema(self.catalogue.topic(self.OUTPUT).value_schema)
        )
        self.dead_letters = DeadLetterPublisher(producer, serde, service=SERVICE, metrics=metrics)
        self.prepare()

    def prepare(self) -> None:
        """The stage's own state (called at the end of ``__init__``)."""


class RepartitionService(_Stage):
    """Stage 1: re-keys the raw events the detectors use onto the repartition topic."""

    OUTPUT = DETECTOR_INPUT

    def prepare(self) -> None:
        self.sources = {self.settings.topic(name): name for name in INPUT_TOPICS}
        self.forwarded = 0

    @property
    def input_topics(self) -> list[str]:
        return list(self.sources)

    def handle(self, batch: list[Message]) -> None:
        for message, event in decoded(batch, self.serde, self.dead_letters):
            topic = message.topic() or ""
            try:
                record = detector_input(self.sources[topic], event, message.partition() or 0, message.offset() or 0)
                if record is not None:
                    self.producer.produce(self.output, self.encoder.encode(record), record["entity_key"])
                    self.forwarded += 1
            except UNPROCESSABLE as error:
                self.dead_letters.publish(message, error, "invalid_record")
                continue
            self.metrics.record_in(topic)


class DetectorService(_Stage):
    """Stage 2: the batch handler, the per-partition tasks and idle flushing."""

    OUTPUT = ANOMALIES

    def prepare(self) -> None:
        self.detector_metrics = DetectorMetrics(self.metrics)
        self.tasks = Tasks(self.settings, catalogue=self.catalogue)
        self.last_record = time.monotonic()
        self.pending_flush = False
        self.emitted = 0

    @property
    def input_topics(self) -> list[str]:
        return [self.settings.topic(DETECTOR_INPUT)]

    def ensure_topics(self, kafka: KafkaSettings, catalogue: Catalogue | None = None) -> None:
        """The repartition topic, the anomalies topic and the dead-letter topics of every topic consumed."""
        catalogue = catalogue or load_catalogue()
        dlq = catalogue.topic(dead_letter_topic(ANOMALIES))
        wanted = []
        for name in (DETECTOR_INPUT, ANOMALIES):
            spec = catalogue.topic(name)
            wanted.append((self.settings.topic(name), spec.partitions, spec.topic_config()))
        consumed = [self.settings.topic(name) for name in (*INPUT_TOPICS, DETECTOR_INPUT)]
        wanted += [(dead_letter_topic(t), dlq.partitions, dlq.topic_config()) for t in consumed]
        ensure_topics(kafka, wanted)

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
        for message, record in decoded(batch, self.serde, self.dead_letters):
            topic = message.topic() or ""
            try:
                found.extend(self.tasks.observe(message.partition() or 0, record))
            except INVALID_RECORD as error:
                self.dead_letters.publish(message, error)
                continue
            self.detector_metrics.events.labels(record["source_topic"]).inc()
            self.metrics.record_in(topic)
        self.emit(found)
        self.last_record = time.monotonic()
        self.pending_flush = True

    def tick(self) -> bool:
        """Called by the loop between batches: close open windows once the input went idle. Never pauses."""
        if self.pending_flush and time.monotonic() - self.last_record >= self.settings.idle_flush_s:
            self.flush()
        return False

    def revoked(self, partitions: list[tuple[str, int]]) -> None:
        """A rebalance took ``partitions``: evaluate their open windows and drop their tasks."""
        self._emit_durably(self.tasks.flush((p for t, p in partitions if t in self.input_topics), drop=True))

    def flush(self) -> None:
        self.pending_flush = False
        self._emit_durably(self.tasks.flush())

    def _emit_durably(self, anomalies: Iterable[dict[str, Any]]) -> None:
        found = list(anomalies)
        if found:
            self.emit(found)
            self.producer.flush(60.0)


def build_loop(
    stage: RepartitionService | DetectorService,
    consumer_config: dict[str, Any],
    shutdown: Any,
    batch_size: int,
    *,
    batch_timeout_s: float = 0.1,
    batch_idle_s: float | None = 0.002,
) -> ConsumerLoop:
    """A stage's consumer loop; the detection stage adds its hooks (idle flushing between batches, revoked
    partitions' windows evaluated), the stateless repartition stage needs none."""
    hooks: dict[str, Any] = {}
    if isinstance(stage, DetectorService):
        hooks = {"pause_while": stage.tick, "on_revoked": stage.revoked}
    return ConsumerLoop(
        consumer_config,
        stage.input_topics,
        stage.handle,
        shutdown=shutdown,
        producer=stage.producer,
        metrics=stage.metrics,
        batch_size=batch_size,
        batch_timeout_s=batch_timeout_s,
        batch_idle_s=batch_idle_s,
        **hooks,
    )
