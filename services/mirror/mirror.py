"""The mirror: copies topics from the remote (SASL) cluster to the local one, exactly once.

Records keep their key, headers, timestamp and partition; values get their schema id translated when the
two clusters use different registries. Exactly once (the default): each batch is one transaction on the local
cluster holding the copied records and the batch's source positions (``services.common.source_offsets``), so a
crash aborts what the batch had copied and the restarted mirror resumes at the positions committed with the last
copied records. At least once (``MIRROR_EXACTLY_ONCE=false``): the shared :class:`ConsumerLoop` commits a batch's
source offsets only after the local cluster acknowledged every record of it (``acks=all``, idempotent producer), so
a crash replays at most the last uncommitted batch: duplicates are possible, loss is not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, KafkaException, Message
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions
from prometheus_client import Counter, Gauge

from schemas import topics
from schemas.catalogue import load_catalogue, load_schema
from services.common.deadletter import DeadLetterPublisher, dead_letter_topic
from services.common.kafka import Producer, ensure_topics, producer_config
from services.common.metrics import ServiceMetrics
from services.common.serde import AvroSerde, SerdeError, UndecodableRecord, subject_for
from services.common.settings import KafkaSettings
from services.common.source_offsets import SourceOffsets, TransactionalCommits
from services.mirror.translate import SchemaTranslator

log = logging.getLogger(__name__)

SERVICE = "mirror"
COPIED_CONFIGS = ("cleanup.policy", "retention.ms")
_AUTH_ERRORS = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
_DOWN_ERRORS = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE}


def destination_producer(
    local: KafkaSettings, metrics: ServiceMetrics | None = None, transactional_id: str | None = None
) -> Producer:
    """The local cluster's producer: delivery reports for failures only (no Python call per record); the loop's
    flush before each commit confirms the rest. With ``transactional_id``, a transactional producer (exactly once:
    ``services.common.source_offsets``)."""
    overrides: dict[str, Any] = {}
    if transactional_id:
        # A transaction an instance left open (it died and did not come back) holds read_committed consumers of
        # the destination until the broker aborts it: a minute; deliveries must fit in it.
        overrides = {
            "transactional.id": transactional_id,
            "transaction.timeout.ms": 60_000,
            "delivery.timeout.ms": 60_000,
        }
    return Producer(producer_config(local, f"{SERVICE}-producer", **overrides), metrics, report_successes=False)


def exactly_once(
    producer: Producer, local: KafkaSettings, serde: AvroSerde, group: str, offsets_topic: str
) -> TransactionalCommits:
    """The loop's transactional commits: source positions of ``group`` on ``offsets_topic`` (created like the
    catalogue's ``mirror.source_offsets.v1``)."""
    spec = load_catalogue().topic(topics.MIRROR_SOURCE_OFFSETS)
    ensure_topics(local, [(offsets_topic, spec.partitions, spec.topic_config())])
    offsets = SourceOffsets(local, serde, group, offsets_topic, load_schema(spec.value_schema))
    return TransactionalCommits(producer, offsets)


class MirrorMetrics:
    """Mirror-specific families, registered next to the standard ones."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        r = metrics.registry
        self.records = Counter(
            "freightline_mirror_records_total",
            "Records copied, by source and destination topic.",
            ["source_topic", "destination_topic"],
            registry=r,
        )
        self.bytes = Counter("freightline_mirror_bytes_total", "Key and value bytes copied.", registry=r)
        self.heartbeat = Gauge(
            "freightline_mirror_last_poll_timestamp_seconds",
            "Unix time of the last poll of the remote cluster while it was reachable.",
            registry=r,
        )
        self.source_up = Gauge(
            "freightline_mirror_source_up", "1 while a remote broker is connected and authenticated.", registry=r
        )
        self.auth_failures = Counter(
            "freightline_mirror_source_auth_failures_total",
            "Authentication failures reported by the remote cluster (wrong SASL credentials).",
            registry=r,
        )
        self.translations = Counter(
            "freightline_mirror_schema_registrations_total",
            "Writer schemas registered under a destination subject (schema id cache misses).",
            registry=r,
        )
        self.untranslated = Counter(
            "freightline_mirror_untranslated_records_total",
            "Values copied unchanged because they are not in the Avro wire format (or are tombstones).",
            ["source_topic"],
            registry=r,
        )


class SourceHealth:
    """Connection state of the remote cluster, fed by librdkafka's error and statistics callbacks."""

    def __init__(self, metrics: MirrorMetrics, username: str | None) -> None:
        self.metrics = metrics
        self.username = username
        self.connected = False
        self.auth_failed = False
        self.last_error: str | None = None

    def on_error(self, error: KafkaError) -> None:
        code = error.code()
        if code in _AUTH_ERRORS or "Authentication failed" in error.str():
            if not self.auth_failed:
                log.error(
                    "the remote cluster rejected the SASL credentials of user %r (%s); check "
                    "REMOTE_KAFKA_SASL_USERNAME and REMOTE_KAFKA_SASL_PASSWORD. Retrying.",
                    self.username,
                    error.str(),
                )
            self.metrics.auth_failures.inc()
            self.auth_failed = True
            self._set(False)
        elif code in _DOWN_ERRORS:
            if self.connected:
                log.warning("remote cluster unreachable (%s); retrying", error.str())
            self._set(False)
        else:
            log.warning("remote cluster error: %s", error.str())
        self.last_error = error.str()

    def on_stats(self, payload: str) -> None:
        try:
            stats = json.loads(payload)
        except ValueError:
            return
        up = any(
            broker.get("nodeid", -1) >= 0 and broker.get("state") == "UP"
            for broker in (stats.get("brokers") or {}).values()
        )
        if up and not self.connected:
            log.info("remote cluster connected")
        if up:
            self.auth_failed = False
        self._set(up)

    def _set(self, up: bool) -> None:
        self.connected = up
        self.metrics.source_up.set(1 if up else 0)

    @property
    def ready(self) -> bool:
        return self.connected and not self.auth_failed


class TopicMirror:
    """Creates destination topics like their sources and copies batches of records into them."""

    def __init__(
        self,
        *,
        source_admin: AdminClient,
        destination_kafka: KafkaSettings,
        producer: Producer,
        translator: SchemaTranslator,
        destination_for: Callable[[str], str],
        metrics: ServiceMetrics,
        mirror_metrics: MirrorMetrics,
        dead_letters: DeadLetterPublisher | None = None,
        create_topics: bool = True,
    ) -> None:
        self.source_admin = source_admin
        self.destination_kafka = destination_kafka
        self.destination_admin = AdminClient(dict(destination_kafka.client_config()))
        self.producer = producer
        self.translator = translator
        self.destination_for = destination_for
        self.metrics = metrics
        self.mirror_metrics = mirror_metrics
        self.dead_letters = dead_letters
        self.create_topics = create_topics
        self._ready: dict[str, str] = {}
        self._subjects: dict[str, str] = {}  # destination topic -> its value subject
        self._copy = producer.copier()
        self._record_counters: dict[str, Any] = {}
        self._dlq_ready: set[str] = set()
        self._registrations_seen = 0

    # -- destination topics --------------------------------------------------------------------------------
    def source_layout(self, topic: str) -> tuple[int, dict[str, str]]:
        """Partition count and the copied configs of a source topic (Admin API)."""
        metadata = self.source_admin.list_topics(topic, timeout=30)
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            raise KafkaException(described.error if described else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        partitions = len(described.partitions)
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        entries = self.source_admin.describe_configs([resource])[resource].result(timeout=30)
        configs = {name: entries[name].value for name in COPIED_CONFIGS if name in entries and entries[name].value}
        return partitions, configs

    def ensure_destination(self, source_topic: str) -> str:
        destination = self._ready.get(source_topic)
        if destination is not None:
            return destination
        destination = self.destination_for(source_topic)
        if self.create_topics:
            partitions, configs = self.source_layout(source_topic)
            ensure_topics(self.destination_kafka, [(destination, partitions, configs)])
            existing = self.destination_admin.list_topics(destination, timeout=30).topics[destination]
            if len(existing.partitions) < partitions:
                log.warning("%s has %d partitions, growing to %d", destination, len(existing.partitions), partitions)
                futures = self.destination_admin.create_partitions([NewPartitions(destination, partitions)])
                for future in futures.values():
                    future.result(timeout=30)
            log.info("mirroring %s -> %s (%d partitions, %s)", source_topic, destination, partitions, configs)
        self._subjects[destination] = subject_for(destination)
        self._ready[source_topic] = destination
        self._record_counters[source_topic] = self.mirror_metrics.records.labels(source_topic, destination)
        return destination

    def _ensure_dead_letter_topic(self, source_topic: str) -> None:
        topic = dead_letter_topic(source_topic)
        if topic in self._dlq_ready:
            return
        try:
            spec = load_catalogue().topic(topic)
            ensure_topics(self.destination_kafka, [(topic, spec.partitions, spec.topic_config())])
        except Exception:  # not a catalogue topic: one partition, two weeks
            ensure_topics(
                self.destination_kafka,
                [(topic, 1, {"cleanup.policy": "delete", "retention.ms": "1209600000"})],
            )
        self._dlq_ready.add(topic)

    # -- copying -------------------------------------------------------------------------------------------
    def handle(self, batch: list[Message]) -> None:
        """Queue every record of ``batch`` on the destination (the loop flushes before committing)."""
        copy = self._copy
        translate = self.translator.translate
        ready = self._ready
        subjects = self._subjects
        copied: dict[str, int] = {}
        size = 0
        for message in batch:
            source_topic = message.topic() or ""
            destination = ready.get(source_topic) or self.ensure_destination(source_topic)
            value = message.value()
            key = message.key()
            if value is not None:
                try:
                    value = translate(subjects[destination], value)
                except UndecodableRecord:
                    self.mirror_metrics.untranslated.labels(source_topic).inc()
                except SerdeError as error:
                    self._dead_letter(message, error)
                    continue
                size += len(value)
            else:
                self.mirror_metrics.untranslated.labels(source_topic).inc()
            timestamp_type, timestamp = message.timestamp()
            copy(
                destination,
                value,
                key,
                message.headers(),
                message.partition() or 0,
                timestamp if timestamp_type != TIMESTAMP_NOT_AVAILABLE else 0,
            )
            copied[source_topic] = copied.get(source_topic, 0) + 1
            if key is not None:
                size += len(key)
        for source_topic, count in copied.items():
            self._record_counters[source_topic].inc(count)
            self.metrics.record_in(source_topic, "ok", count)
        self.mirror_metrics.bytes.inc(size)
        registrations = self.translator.registrations
        if registrations > self._registrations_seen:
            self.mirror_metrics.translations.inc(registrations - self._registrations_seen)
            self._registrations_seen = registrations

    def _dead_letter(self, message: Message, error: SerdeError) -> None:
        if self.dead_letters is None:
            raise error
        self._ensure_dead_letter_topic(message.topic() or "")
        self.dead_letters.publish(message, error)
