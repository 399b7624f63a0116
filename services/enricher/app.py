"""The Faust app of the enricher: app factory, reference tables, topics, metrics and commit watchdog.

Nothing here runs at import time: ``build_enricher`` (called by ``__main__``) creates the Faust app from the
settings, declares the tables and topics and registers the agents of :mod:`services.enricher.agents`.

- **Reference tables** are Faust ``GlobalTable``s (memory store by default, RocksDB by ``ENRICHER_STORE``) whose
  changelog topic *is* the compacted reference topic (``reference.*.v1``), as Kafka Streams does for source
  tables: values are decoded by :class:`ReferenceCodec` (wire-format Avro, projected to the attributes
  enrichment needs). Faust recovers every table from its changelog before any agent runs, so the reference data
  is complete before the first event is enriched (a fresh start never races events against their references),
  and keeps applying later records (price changes) as standby updates while running. Nothing is written to
  these topics: the enricher only reads them, so a restart restores the tables without anyone re-producing them.
- **Commit watchdog.** Faust commits acknowledged offsets in the background; the watchdog compares what the
  agents acknowledged with the group's offsets on the broker and reports not healthy (and exits, to be restarted,
  unless ``ENRICHER_EXIT_ON_COMMIT_STALL=false``) when commits stopped advancing for ``ENRICHER_COMMIT_STALL_S``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from faust.serializers.codecs import Codec
from faust.tables import GlobalTable
from prometheus_client import Counter, Gauge, Histogram

from schemas.catalogue import Catalogue, load_catalogue, load_schema
from services.common.deadletter import DEAD_LETTER_SCHEMA, dead_letter_topic
from services.common.kafka import Producer, ensure_topics, producer_config
from services.common.metrics import AGE_BUCKETS, ServiceMetrics
from services.common.serde import AvroSerde, Encoder, RegistryLike, SerdeError, subject_for
from services.common.settings import KafkaSettings
from services.enricher import join
from services.enricher.codec import AvroCodec, decoding_codec, encoding_codec
from services.enricher.settings import OUTPUT_TOPICS, REFERENCE_TOPICS, SOURCE_TOPICS, EnricherSettings

log = logging.getLogger(__name__)

SERVICE = "enricher"
EXIT_COMMIT_STALL = 75
EXIT_DELIVERY_FAILED = 70
EXIT_OFFSET_GAP = 71


class EnricherMetrics:
    """Service-specific families on top of the standard ones."""

    def __init__(self, base: ServiceMetrics) -> None:
        self.base = base
        registry = base.registry
        self.enriched = Counter(
            "freightline_enricher_enriched_total",
            "Enriched records delivered, by output topic.",
            ["topic"],
            registry=registry,
        )
        self.unknown = Counter(
            "freightline_enricher_unknown_references_total",
            "References missing from the reference data (emitted as UNKNOWN), by kind.",
            ["kind"],
            registry=registry,
        )
        self.latency = Histogram(
            "freightline_enricher_event_to_enriched_seconds",
            "Event time to the enriched record's delivery.",
            ["topic"],
            buckets=AGE_BUCKETS,
            registry=registry,
        )
        self.reference_entries = Gauge(
            "freightline_enricher_reference_entries",
            "Entries held by each reference table.",
            ["kind"],
            registry=registry,
        )
        self.geo = Counter(
            "freightline_enricher_geo_lookups_total",
            "IP geo lookups of product views, by country (unknown when no prefix matched).",
            ["country"],
            registry=registry,
        )
        self.undecodable_references = Counter(
            "freightline_enricher_undecodable_references_total",
            "Reference records that did not decode (the entity stays UNKNOWN), by kind.",
            ["kind"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "freightline_enricher_batch_records",
            "Records per processed batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            registry=registry,
        )


class Utf8Codec(Codec):
    """Keys as text."""

    def _loads(self, s: bytes) -> Any:
        return s.decode() if isinstance(s, bytes | bytearray) else s

    def _dumps(self, s: Any) -> bytes:
        return s.encode() if isinstance(s, str) else bytes(s)


class ReferenceCodec(Codec):
    """Wire-format Avro reference records -> their projected attributes (``None`` for undecodable ones)."""

    def __init__(
        self,
        children: Any = None,
        *,
        kind: str,
        serde: AvroSerde,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        super().__init__(children, kind=kind, serde=serde, on_error=on_error)
        self.kind = kind
        self.serde = serde
        self.on_error = on_error

    def _loads(self, s: bytes) -> Any:
        try:
            return join.project_reference(self.kind, self.serde.decode(s))
        except (SerdeError, KeyError, TypeError, ValueError) as error:
            # The entity stays unknown (UNKNOWN markers downstream) instead of stopping the table's recovery.
            if self.on_error is not None:
                self.on_error(self.kind, error)
            return None

    def _dumps(self, s: Any) -> bytes:
        raise SerdeError("reference tables are read-only: their changelog is the reference topic")


class ReferenceTable(GlobalTable):
    """A global table whose changelog is an existing (compacted) topic, named by ``changelog_topic``."""

    def _changelog_topic_name(self) -> str:
        if self._changelog_topic is not None:
            return str(self._changelog_topic.get_topic_name())
        return str(super()._changelog_topic_name())


def initialize_group_offsets(kafka: KafkaSettings, group_id: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """Commit the log start offset for every source partition the group never committed; return all offsets.

    Faust drops records fetched while it pauses partitions for table recovery, and re-reads them only from a
    committed offset: a group that has none would silently skip the first fetched records. Starting from a
    committed offset everywhere closes that gap; the agents' offset guard catches any other.
    """
    consumer = Consumer(
        {**kafka.client_config(), "group.id": group_id, "enable.auto.commit": False, "client.id": f"{SERVICE}-init"}
    )
    offsets: dict[tuple[str, int], int] = {}
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            if topic in metadata.topics and metadata.topics[topic].error is None
            for p in sorted(metadata.topics[topic].partitions)
        ]
        if not partitions:
            return offsets
        fresh = []
        for tp in consumer.committed(partitions, timeout=10):
            if tp.offset >= 0:
                offsets[(tp.topic, tp.partition)] = tp.offset
            else:
                low, _high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
                fresh.append(TopicPartition(tp.topic, tp.partition, low))
                offsets[(tp.topic, tp.partition)] = low
        if fresh:
            consumer.commit(offsets=fresh, asynchronous=False)
            log.info("initialized the group's offsets of %d partitions at the log start", len(fresh))
    finally:
        consumer.close()
    return offsets


class CommitWatchdog:
    """Compares the offsets the agents acknowledged with the group's committed offsets on the broker."""

    def __init__(self, admin_config: dict[str, Any], group_id: str, stall_s: float) -> None:
        self.admin_config = admin_config
        self.group_id = group_id
        self.stall_s = stall_s
        self.acked: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._since: dict[tuple[str, int], float] = {}
        self.stalled = False
        self._admin: AdminClient | None = None

    def acknowledged(self, topic: str, partition: int, next_offset: int) -> None:
        key = (topic, partition)
        if next_offset > self.acked.get(key, -1):
            self.acked[key] = next_offset

    def _broker_offsets(self) -> dict[tuple[str, int], int]:
        from confluent_kafka import ConsumerGroupTopicPartitions

        if self._admin is None:
            self._admin = AdminClient(self.admin_config)
        futures = self._admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(self.group_id)])
        result = futures[self.group_id].result(timeout=10)
        return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or []}

    def check(self, now: float | None = None) -> bool:
        """Probe the broker once; True while commits keep up. Blocking: call it from a thread."""
        now = time.monotonic() if now is None else now
        try:
            committed = self._broker_offsets()
        except (KafkaException, TimeoutError, Exception) as error:  # a probe failure is not a stall
            log.debug("commit probe failed: %s", error)
            return not self.stalled
        return self.observe(committed, now)

    def observe(self, committed: dict[tuple[str, int], int], now: float) -> bool:
        stalled = False
        for key, acked in self.acked.items():
            offset = committed.get(key, -1)
            if offset != self._committed.get(key):
                self._committed[key] = offset
                self._since[key] = now
            behind = acked > offset
            if behind and now - self._since.setdefault(key, now) > self.stall_s:
                log.error(
                    "offset commits of %s[%d] stalled: acknowledged up to %d, committed %d for %.0fs",
                    key[0],
                    key[1],
                    acked,
                    offset,
                    now - self._since[key],
                )
                stalled = True
        self.stalled = stalled
        return not stalled


@dataclass
class Enricher:
    """The Faust app and everything its agents share."""

    settings: EnricherSettings
    kafka: KafkaSettings
    app: faust.App
    serde: AvroSerde
    metrics: ServiceMetrics
    enricher_metrics: EnricherMetrics
    watchdog: CommitWatchdog
    decoder: AvroCodec
    tables: dict[str, Any]
    lookups: join.Lookups
    sources: dict[str, Any]
    output_encoders: dict[str, Encoder]
    producer: Producer
    dead_letter_encoders: dict[str, Encoder]
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    geo: join.GeoLookup = field(default_factory=join.GeoLookup)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def source_topic_names(self) -> set[str]:
        return {self.settings.source(kind) for kind in SOURCE_TOPICS}

    def live(self) -> bool:
        return not self.watchdog.stalled

    def ready(self) -> bool:
        recovery = getattr(self.app.tables, "recovery", None)
        return recovery is not None and recovery.completed.is_set() and not self.watchdog.stalled

    def start_delivery_poller(self) -> threading.Thread:
        """Serve the producer's delivery reports continuously (the agents await them per batch)."""

        def poll() -> None:
            while True:
                self.producer.poll(0.05)

        thread = threading.Thread(target=poll, name="enricher-delivery-reports", daemon=True)
        thread.start()
        return thread

    def fatal(self, message: str, code: int) -> None:
        """Stop at once without committing anything more (records not acknowledged are replayed on restart)."""
        log.critical("%s: exiting with status %d without committing", message, code)
        logging.shutdown()
        os._exit(code)


def broker_url(kafka: KafkaSettings) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in kafka.bootstrap_servers.split(",") if host.strip())


def _credentials(kafka: KafkaSettings) -> Any:
    if not kafka.security_protocol.upper().startswith("SASL"):
        return None
    if not (kafka.sasl_mechanism and kafka.sasl_username and kafka.sasl_password):
        raise ValueError("a SASL cluster needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value(),
        mechanism=kafka.sasl_mechanism,
    )


def create_faust_app(settings: EnricherSettings, kafka: KafkaSettings) -> faust.App:
    """The Faust app: at-least-once, manual batching, no web server, isolated from the process environment."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        env={},  # configuration comes from EnricherSettings only
        broker=broker_url(kafka),
        broker_credentials=_credentials(kafka),
        store=settings.store,
        datadir=settings.data_dir,
        autodiscover=False,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger=0.005,
        producer_max_batch_size=1_048_576,
        producer_max_request_size=4_194_304,
        broker_commit_interval=settings.commit_interval_s,
        broker_max_poll_records=1000,
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        stream_wait_empty=True,
        stream_ack_exceptions=False,
        stream_ack_cancelled_tasks=False,
        table_standby_replicas=0,
        topic_replication_factor=1,
        topic_disable_leader=True,
        cython_optimizations=settings.cython_optimizations,
    )


def ensure_enricher_topics(settings: EnricherSettings, kafka: KafkaSettings, catalogue: Catalogue) -> None:
    """Outputs with the catalogue's configuration, and a dead-letter topic per event topic."""
    wanted: list[tuple[str, int, dict[str, str]]] = []
    for kind, name in OUTPUT_TOPICS.items():
        spec = catalogue.topic(name)
        wanted.append((settings.output(kind), spec.partitions, spec.topic_config()))
    consumed = [settings.source(k) for k in SOURCE_TOPICS]
    dlq = catalogue.topic(dead_letter_topic(SOURCE_TOPICS[join.PRODUCT_VIEWS]))
    for topic in consumed:
        wanted.append((dead_letter_topic(topic), dlq.partitions, dlq.topic_config()))
    ensure_topics(kafka.client_config(), wanted)


def build_enricher(
    settings: EnricherSettings,
    kafka: KafkaSettings,
    registry: RegistryLike,
    *,
    metrics: ServiceMetrics | None = None,
    catalogue: Catalogue | None = None,
) -> Enricher:
    """Create topics, register the output schemas and build the app with its tables and agents."""
    from services.enricher import agents

    catalogue = catalogue or load_catalogue()
    metrics = metrics or ServiceMetrics(SERVICE)
    if settings.create_topics:
        ensure_enricher_topics(settings, kafka, catalogue)
    serde = AvroSerde(registry)
    next_offsets = initialize_group_offsets(kafka, settings.app_id, [settings.source(k) for k in SOURCE_TOPICS])
    app = create_faust_app(settings, kafka)

    enricher_metrics = EnricherMetrics(metrics)

    def on_reference_error(kind: str, error: BaseException) -> None:
        log.warning("undecodable %s reference record (the entity stays UNKNOWN): %s", kind, error)
        enricher_metrics.undecodable_references.labels(kind).inc()

    tables: dict[str, Any] = {}
    for kind in REFERENCE_TOPICS:
        changelog = app.topic(
            settings.reference(kind),
            key_serializer=Utf8Codec(),
            value_serializer=ReferenceCodec(kind=kind, serde=serde, on_error=on_reference_error),
            partitions=1,
        )
        tables[kind] = app.tables.add(
            ReferenceTable(
                app,
                name=f"{kind}s",
                default=None,
                beacon=app.tables.beacon,
                partitions=1,
                changelog_topic=changelog,
                recovery_buffer_size=1000,
                standby_buffer_size=1,
                is_global=True,
                synchronize_all_active_partitions=True,
                help=f"{kind} reference attributes by id, from {settings.reference(kind)}",
            )
        )

    def lookup(kind: str) -> join.Lookup:
        table = tables[kind]

        def get(key: str) -> join.Reference | None:
            value: join.Reference | None = table.get(key)
            return value

        return get

    lookups = join.Lookups(lookup(join.PRODUCT), lookup(join.CUSTOMER), lookup(join.STORE), lookup(join.WAREHOUSE))

    sources = {kind: app.topic(settings.source(kind), key_type=bytes, value_type=bytes) for kind in SOURCE_TOPICS}
    output_encoders = {
        kind: encoding_codec(serde, subject_for(settings.output(kind)), load_schema(catalogue.topic(name).value_schema))
        for kind, name in OUTPUT_TOPICS.items()
    }
    dead_letter_schema = load_schema(DEAD_LETTER_SCHEMA)
    consumed = [settings.source(k) for k in SOURCE_TOPICS]
    dead_letter_encoders = {
        topic: serde.encoder(subject_for(dead_letter_topic(topic)), dead_letter_schema) for topic in consumed
    }
    watchdog = CommitWatchdog(kafka.client_config(), settings.app_id, settings.commit_stall_s)
    producer = Producer(producer_config(kafka, f"{SERVICE}-{settings.app_id}"), metrics)
    enricher = Enricher(
        settings=settings,
        kafka=kafka,
        app=app,
        serde=serde,
        metrics=metrics,
        enricher_metrics=enricher_metrics,
        watchdog=watchdog,
        decoder=decoding_codec(serde),
        tables=tables,
        lookups=lookups,
        sources=sources,
        output_encoders={kind: codec.encoder for kind, codec in output_encoders.items() if codec.encoder},
        producer=producer,
        next_offsets=next_offsets,
        dead_letter_encoders=dead_letter_encoders,
    )
    agents.register(enricher)
    return enricher
