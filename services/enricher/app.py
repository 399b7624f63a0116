"""The enricher: app factory, reference tables, the agents' channel, topics and metrics.

Nothing here runs at import time: ``build_enricher`` (called by ``__main__``) creates the Faust app from the
settings, the reference tables and their reader, the channel, and registers the agent of
:mod:`services.enricher.agents`.

- **Reference tables** are read from the compacted reference topics (``reference.*.v1``) by our own
  confluent-kafka reader (:mod:`services.enricher.reference`): every topic is read to its end before the source
  loop starts, so the reference data is complete before the first event is enriched, and later records (price
  changes) keep being applied while running. Nothing is written to these topics.
- **Sources.** Events reach the agent in batches from the shared ``ConsumerLoop`` (see
  :mod:`services.enricher.agents`), which commits a batch only after its outputs are acknowledged.
- **Faust** runs the agent, its channel, the timers and the lifecycle; its own Kafka clients are off
  (:class:`EnricherBoot`, Faust's public boot strategy): nothing of the enricher goes through them.
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
from confluent_kafka import KafkaException, Message
from faust.app import BootStrategy
from prometheus_client import Counter, Gauge, Histogram

from schemas.catalogue import Catalogue, load_catalogue, load_schema
from services.common.deadletter import DEAD_LETTER_SCHEMA, dead_letter_topic
from services.common.kafka import ConsumerLoop, Producer, consumer_config, ensure_topics, producer_config
from services.common.lifecycle import Shutdown
from services.common.metrics import AGE_BUCKETS, BatchHistogram, ServiceMetrics
from services.common.serde import AvroSerde, Encoder, RegistryLike, subject_for
from services.common.settings import KafkaSettings
from services.enricher import join, reference
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
    tables: dict[str, reference.ReferenceTable]
    references: reference.ReferenceReader
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
        running = self.source_thread is None or self.source_thread.is_alive()
        return (running and self.references.alive()) or self.shutdown.requested

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

    def recover_references(self) -> None:
        """Read every reference topic to its end, then keep following it (before the sources start)."""
        try:
            self.references.recover()
        except KafkaException as error:  # nothing was consumed yet: a restart recovers again
            self.fatal(f"the reference tables could not be recovered: {error}", EXIT_SOURCES_FAILED)
        self.references.start()

    def stop_sources(self, timeout: float) -> None:
        """Finish the batch in hand (its outputs flushed and offsets committed), close the consumer, then stop
        following the reference topics."""
        self.shutdown.request("stop")
        if self.source_thread is not None:
            self.source_thread.join(timeout)
            if self.source_thread.is_alive():
                log.warning("the source loop did not stop within %.0fs", timeout)
        self.references.stop()

    def fatal(self, message: str, code: int) -> None:
        """Stop at once without committing anything more (records not committed are replayed on restart)."""
        log.critical("%s: exiting with status %d without committing", message, code)
        logging.shutdown()
        os._exit(code)


class EnricherBoot(BootStrategy):
    """Faust's services without its Kafka clients: agents, timers and tasks only (the enricher's Kafka clients
    are the shared ``ConsumerLoop`` and ``Producer`` and the reference reader)."""

    enable_kafka = False


class EnricherApp(faust.App):
    """The Faust app on :class:`EnricherBoot`; on stop, the source loop drains before Faust stops."""

    BootStrategy = EnricherBoot
    before_stop: Callable[[], None] | None = None

    async def on_stop(self) -> None:
        # The agent is still running here (Faust stops its children after ``on_stop``), so the batch in hand
        # is enriched, delivered and committed before anything else stops.
        if self.before_stop is not None:
            await asyncio.to_thread(self.before_stop)
        await super().on_stop()


def create_faust_app(settings: EnricherSettings) -> faust.App:
    """The Faust app: the agent, its channel and timers; no Kafka clients, no web server, isolated from the
    process environment."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return EnricherApp(
        settings.app_id,
        env={},  # configuration comes from EnricherSettings only
        datadir=settings.data_dir,
        autodiscover=False,
        web_enabled=False,
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
    app = create_faust_app(settings)

    enricher_metrics = EnricherMetrics(metrics)

    def on_reference_error(kind: str, error: Exception) -> None:
        log.warning("undecodable %s reference record (the entity stays UNKNOWN): %s", kind, error)
        enricher_metrics.undecodable_references.labels(kind).inc()

    directory = Path(settings.data_dir) / settings.app_id
    tables = {
        kind: reference.open_table(
            settings.store, directory, settings.reference(kind), reference.projector(kind, serde, on_reference_error)
        )
        for kind in REFERENCE_TOPICS
    }
    references = reference.ReferenceReader(
        kafka,
        {settings.reference(kind): table for kind, table in tables.items()},
        client_id=f"{SERVICE}-{settings.app_id}-reference",
    )
    lookups = join.Lookups(
        tables[join.PRODUCT].lookup,
        tables[join.CUSTOMER].lookup,
        tables[join.STORE].lookup,
        tables[join.WAREHOUSE].lookup,
    )

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
        references=references,
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
