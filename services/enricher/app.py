"""The Faust app of the enricher: app factory, reference tables, the agents' channel, topics and metrics.

Nothing here runs at import time: ``build_enricher`` (called by ``__main__``) creates the Faust app from the
settings, declares the tables and the channel and registers the agent of :mod:`services.enricher.agents`.

- **Reference tables** are Faust ``GlobalTable``s (memory store by default, RocksDB by ``ENRICHER_STORE``) whose
  changelog topic *is* the compacted reference topic (``reference.*.v1``), as Kafka Streams does for source
  tables: values are decoded by :class:`ReferenceCodec` (wire-format Avro, projected to the attributes
  enrichment needs). Faust recovers every table from its changelog before the source loop starts, so the
  reference data is complete before the first event is enriched, and keeps applying later records (price
  changes) as standby updates while running. Nothing is written to these topics: a restart restores the tables
  without anyone re-producing them.
- **Sources.** Events reach the agent in batches from the shared ``ConsumerLoop`` (see
  :mod:`services.enricher.agents`), which commits a batch only after its outputs are acknowledged. Faust's own
  consumer reads only the reference topics (group ``<app id>-reference``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from confluent_kafka import Message
from faust.serializers.codecs import Codec
from faust.tables import GlobalTable
from faust.transport.consumer import RecordMap
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from prometheus_client import Counter, Gauge, Histogram

from schemas.catalogue import Catalogue, load_catalogue, load_schema
from services.common.deadletter import DEAD_LETTER_SCHEMA, dead_letter_topic
from services.common.kafka import ConsumerLoop, Producer, consumer_config, ensure_topics, producer_config
from services.common.lifecycle import Shutdown
from services.common.metrics import AGE_BUCKETS, BatchHistogram, ServiceMetrics
from services.common.serde import AvroSerde, Encoder, RegistryLike, SerdeError, subject_for
from services.common.settings import KafkaSettings
from services.enricher import join
from services.enricher.codec import AvroCodec, SplicingEncoder, decoding_codec, encoding_codec
from services.enricher.settings import OUTPUT_TOPICS, REFERENCE_TOPICS, SOURCE_TOPICS, EnricherSettings

log = logging.getLogger(__name__)

SERVICE = "enricher"
EXIT_SOURCES_FAILED = 70


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
        self.latency = BatchHistogram(
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
        on_error: Callable[[str, Exception], None] | None = None,
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
    """A global table whose changelog is an existing (compacted) topic, named by ``changelog_topic``.

    ``key_codec``/``value_codec`` are what the store decodes with: the memory store keeps what the changelog
    topic decoded, RocksDB keeps the records' bytes and decodes them on every read.
    """

    def __init__(self, app: faust.App, *, key_codec: Codec, value_codec: Codec, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.key_serializer = key_codec
        self.value_serializer = value_codec

    def _changelog_topic_name(self) -> str:
        # Faust's partition assignor finds a global table's changelog partitions by this name, ignoring the
        # public ``changelog_topic=`` option (faust-streaming 0.15.3): without it the assignment fails.
        if self._changelog_topic is not None:
            return str(self._changelog_topic.get_topic_name())
        return str(super()._changelog_topic_name())


@dataclass
class Enricher:
    """The Faust app and everything the agent and the source loop share."""

    settings: EnricherSettings
    kafka: KafkaSettings
    app: faust.App
    serde: AvroSerde
    metrics: ServiceMetrics
    enricher_metrics: EnricherMetrics
    decoder: AvroCodec
    tables: dict[str, Any]
    lookups: join.Lookups
    jobs: Any  # the agent's in-memory Faust channel
    output_encoders: dict[str, SplicingEncoder]
    producer: Producer
    dead_letter_encoders: dict[str, Encoder]
    geo: join.GeoLookup = field(default_factory=join.GeoLookup)
    loop: asyncio.AbstractEventLoop | None = None
    shutdown: Shutdown = field(default_factory=Shutdown)
    source_loop: ConsumerLoop | None = None
    source_thread: threading.Thread | None = None

    @property
    def outputs(self) -> dict[str, str]:
        """Output topic by event kind."""
        return {kind: self.settings.output(kind) for kind in OUTPUT_TOPICS}

    def live(self) -> bool:
        return self.source_thread is None or self.source_thread.is_alive() or self.shutdown.requested

    def ready(self) -> bool:
        return self.source_thread is not None and self.source_thread.is_alive()

    def start_sources(self, loop: asyncio.AbstractEventLoop, handler: Callable[[list[Message]], None]) -> None:
        """Start consuming the source topics in a thread; ``handler`` gets each batch (see the agents module)."""
        self.loop = loop
        settings = self.settings
        config = consumer_config(
            self.kafka, settings.app_id, f"{SERVICE}-{settings.app_id}", instance_id=settings.instance_id
        )
        self.source_loop = ConsumerLoop(
            config,
            [settings.source(kind) for kind in SOURCE_TOPICS],
            handler,
            shutdown=self.shutdown,
            producer=self.producer,
            metrics=self.metrics,
            batch_size=settings.batch_size,
            batch_timeout_s=settings.batch_within_s,
            batch_idle_s=settings.batch_idle_s,
            flush_timeout_s=settings.flush_timeout_s,
        )

        def run() -> None:
            assert self.source_loop is not None
            try:
                self.source_loop.run()
            except Exception as error:  # a fatal consumer error: nothing more is committed
                self.fatal(f"the source loop failed: {error}", EXIT_SOURCES_FAILED)

        self.source_thread = threading.Thread(target=run, name="enricher-sources", daemon=True)
        self.source_thread.start()
        log.info("reference tables recovered; consuming %s", sorted(self.source_loop.topics))

    def stop_sources(self, timeout: float) -> None:
        """Finish the batch in hand (its outputs flushed and offsets committed), then close the consumer."""
        self.shutdown.request("stop")
        if self.source_thread is not None:
            self.source_thread.join(timeout)
            if self.source_thread.is_alive():
                log.warning("the source loop did not stop within %.0fs", timeout)

    def fatal(self, message: str, code: int) -> None:
        """Stop at once without committing anything more (records not committed are replayed on restart)."""
        log.critical("%s: exiting with status %d without committing", message, code)
        logging.shutdown()
        os._exit(code)


class SnapshotFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, fetching for a snapshot of the active partitions, never for none.

    Faust hands the fetch its live set of active partitions. When table recovery pauses the last active
    partitions while a fetch is queued for the consumer thread, the set is empty by the time aiokafka reads it,
    and aiokafka reads an empty set as *every* partition: it returns the records buffered for paused partitions
    and advances their positions, and Faust then drops those records because their partitions are not active.
    (With topic-fed agents this silently skipped the first records of stream partitions on fresh starts.)
    Fetching nothing for an empty snapshot keeps them buffered.

    The events no longer go through Faust's consumer, but the reference changelogs still do, and they meet the same
    window: when recovery ends, Faust pauses every changelog partition (in its own bookkeeping, not in aiokafka)
    before resuming them as standbys, so a fetch queued in between would return, and Faust drop, the reference
    updates (price changes) that arrived meanwhile. This and ``ReferenceTable._changelog_topic_name`` (a method Faust
    declares on its ``TableT`` interface) are the only places the enricher reaches below Faust's public API.
    """

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: set[TP],
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> RecordMap:
        partitions = set(active_partitions)
        if not partitions:
            return {}
        return await super()._fetch_records(consumer, partitions, timeout=timeout, max_records=max_records)


class SnapshotFetchConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return SnapshotFetchThread(self, loop=self.loop, beacon=self.beacon)


class EnricherTransport(faust_aiokafka.Transport):
    Consumer = SnapshotFetchConsumer


class EnricherApp(faust.App):
    """The Faust app on :class:`EnricherTransport`; on stop, the source loop drains before Faust stops."""

    before_stop: Callable[[], None] | None = None

    def _new_transport(self) -> Any:
        return EnricherTransport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        # The agent is still running here (Faust stops its children after ``on_stop``), so the batch in hand
        # is enriched, delivered and committed before anything else stops.
        if self.before_stop is not None:
            await asyncio.to_thread(self.before_stop)
        await super().on_stop()


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
    """The Faust app: reference tables and the agent, no web server, isolated from the process environment."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return EnricherApp(
        f"{settings.app_id}-reference",
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
        broker_max_poll_records=1000,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=True,
        table_standby_replicas=0,
        # Static membership of the reference group too: a restarted instance rejoins at once instead of
        # waiting out the dead member's session before the tables can recover (None: dynamic membership).
        consumer_group_instance_id=settings.instance_id,
        topic_replication_factor=1,
        topic_disable_leader=True,
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
    ensure_topics(kafka, wanted)


def build_enricher(
    settings: EnricherSettings,
    kafka: KafkaSettings,
    registry: RegistryLike,
    *,
    metrics: ServiceMetrics | None = None,
    catalogue: Catalogue | None = None,
) -> Enricher:
    """Create topics, register the output schemas and build the app with its tables, channel and agent."""
    from services.enricher import agents

    catalogue = catalogue or load_catalogue()
    metrics = metrics or ServiceMetrics(SERVICE)
    if settings.create_topics:
        ensure_enricher_topics(settings, kafka, catalogue)
    serde = AvroSerde(registry)
    app = create_faust_app(settings, kafka)

    enricher_metrics = EnricherMetrics(metrics)

    def on_reference_error(kind: str, error: Exception) -> None:
        log.warning("undecodable %s reference record (the entity stays UNKNOWN): %s", kind, error)
        enricher_metrics.undecodable_references.labels(kind).inc()

    tables: dict[str, Any] = {}
    for kind in REFERENCE_TOPICS:
        reference_codec = ReferenceCodec(kind=kind, serde=serde, on_error=on_reference_error)
        changelog = app.topic(
            settings.reference(kind), key_serializer=Utf8Codec(), value_serializer=reference_codec, partitions=1
        )
        tables[kind] = app.tables.add(
            ReferenceTable(
                app,
                name=f"{kind}s",
                key_codec=Utf8Codec(),
                value_codec=reference_codec,
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
            # Straight from the table's store (a dict for the memory store): a global table's reads need none
            # of the per-key bookkeeping Faust's table interface does for partitioned tables.
            store = table.data
            data = getattr(store, "data", None)
            value: join.Reference | None = data.get(key) if isinstance(data, dict) else store.get(key)
            return value

        return get

    lookups = join.Lookups(lookup(join.PRODUCT), lookup(join.CUSTOMER), lookup(join.STORE), lookup(join.WAREHOUSE))

    output_encoders: dict[str, SplicingEncoder] = {}
    for kind, name in OUTPUT_TOPICS.items():
        schema = load_schema(catalogue.topic(name).value_schema)
        codec = encoding_codec(serde, subject_for(settings.output(kind)), schema)
        assert codec.encoder is not None
        event_schema = load_schema(catalogue.topic(SOURCE_TOPICS[kind]).value_schema)
        output_encoders[kind] = SplicingEncoder(serde, codec.encoder, schema, event_schema)
    dead_letter_schema = load_schema(DEAD_LETTER_SCHEMA)
    consumed = [settings.source(k) for k in SOURCE_TOPICS]
    dead_letter_encoders = {
        topic: serde.encoder(subject_for(dead_letter_topic(topic)), dead_letter_schema) for topic in consumed
    }
    producer = Producer(producer_config(kafka, f"{SERVICE}-{settings.app_id}"), metrics)
    enricher = Enricher(
        settings=settings,
        kafka=kafka,
        app=app,
        serde=serde,
        metrics=metrics,
        enricher_metrics=enricher_metrics,
        decoder=decoding_codec(serde),
        tables=tables,
        lookups=lookups,
        jobs=app.channel(maxsize=2),
        output_encoders=output_encoders,
        producer=producer,
        dead_letter_encoders=dead_letter_encoders,
    )
    agents.register(enricher)
    if isinstance(app, EnricherApp):
        app.before_stop = lambda: enricher.stop_sources(settings.flush_timeout_s + settings.agent_timeout_s)
    return enricher
