"""The dbt tests' world: generated events loaded into a private PostgreSQL database.

The reference data goes the real way: the generator's reference records are produced onto the test's own compacted
topics and loaded by the real Spark job (``freightline spark load-reference``, through ``deploy.spark.run_job``).
The event tables are loaded by this fixture instead of the lake and the other Spark jobs (which
``tests/integration/batch_spark`` already proves against the same oracle, and which would cost minutes here):
``raw.<family>`` gets each family's clean rows (the batch oracle: invariants met, one row per event id) with the
contract's columns (``batch_spark.contract``), ``analytics.*`` the batch oracle's daily tables with the Spark job's
DDL (``batch_spark.daily``), and ``streaming.*`` the Flink jobs' oracle windows (``stream_processors.oracle``, every
window, as after a drain) with the jobs' own DDL.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from batch_spark.contract import LAKE_TOPICS, family
from batch_spark.daily import TABLES
from schemas import topics
from schemas.catalogue import load_catalogue, load_schema
from services.common.kafka import Producer, ensure_topics, producer_config
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from services.generator.engine import Engine
from services.generator.records import Emitted
from services.generator.settings import GeneratorSettings
from stream_processors import (
    category_top_products,
    product_views,
    route_shipment_delays,
    service_error_rate,
    store_order_revenue,
)
from stream_processors.flink_sql import WindowJob
from tests.integration.batch_spark.oracle import Day, event_time
from tests.integration.batch_spark.support import GENERATED, Decoder, copy_rows, raw_row, write_windows

# the reference topics load_reference reads, and their keys
REFERENCE = {
    topics.REFERENCE_CUSTOMERS: "customer_id",
    topics.REFERENCE_PRODUCTS: "product_id",
    topics.REFERENCE_STORES: "store_id",
    topics.REFERENCE_SUPPLIERS: "supplier_id",
}


@dataclass
class World:
    """The generated records: lake events per family (generator form: times in ms, dates in days), the same
    decoded from Avro (datetimes, dates, decimals), and the reference records in produce order."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    decoded: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    reference: list[Emitted] = field(default_factory=list)

    def clean(self) -> dict[str, list[dict[str, Any]]]:
        """Per family, the decoded clean rows (contract invariants met, one per event id) of every day."""
        days = {event_time(v).date() for values in self.events.values() for v in values}
        result: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for day in sorted(days):
            for name, values in Day(day, self.events).clean.items():
                result[name] += [self.decoded[name][str(v["metadata"]["event_id"])] for v in values]
        return result

    def daily_tables(self) -> dict[str, set[tuple[Any, ...]]]:
        days = {event_time(v).date() for values in self.events.values() for v in values}
        result: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
        for day in sorted(days):
            for table, rows in Day(day, self.events).tables().items():
                result[table] |= rows
        return result


Events = dict[str, list[dict[str, Any]]]


def _family(name: str) -> Callable[[World, Events], list[dict[str, Any]]]:
    return lambda _world, clean: clean[name]


def enriched_views(world: World, clean: Events) -> list[dict[str, Any]]:
    """The clean product views as the enrichment emits them, in the fields the top-products job reads: the view
    (``event``) and its product's category from the reference data (the product's latest record)."""
    categories = {r.key: r.value["category"] for r in world.reference if r.topic == topics.REFERENCE_PRODUCTS}
    return [
        {"metadata": v["metadata"], "event": v, "product": {"category": categories.get(v["product_id"])}}
        for v in clean["product_views"]
    ]


# each Flink job's table, and the source events it reads
STREAMING: tuple[tuple[WindowJob, str, Callable[[World, Events], list[dict[str, Any]]]], ...] = (
    (product_views.JOB, "streaming.product_views_1m", _family("product_views")),
    (store_order_revenue.JOB, "streaming.store_order_revenue_5m", _family("orders")),
    (route_shipment_delays.JOB, "streaming.route_shipment_delays_1h", _family("shipment_events")),
    (service_error_rate.JOB, "streaming.service_error_rate_1m", _family("clickstream")),
    (category_top_products.JOB, "streaming.category_rankings_10m", enriched_views),
)


def generate(seed: int, start: dt.datetime, count: int) -> World:
    """The generator's reference snapshot and first ``count`` records from ``start``; lake events are encoded with
    the catalogue's schemas and decoded again (the form Avro readers see)."""
    settings = GeneratorSettings(seed=seed, start_time=start, rate_product_views=8, rate_clickstream=4)
    engine = Engine(settings.engine_config())
    world = World(reference=[r for r in engine.reference_snapshot() if r.topic in REFERENCE])
    family_of = {topic: name for name, topic in GENERATED.items()}
    decode = Decoder()
    for record in engine.take(count):
        if record.topic in REFERENCE:
            world.reference.append(record)
        elif record.topic in family_of:
            name = family_of[record.topic]
            world.events[name].append(record.value)
            world.decoded[name][str(record.value["metadata"]["event_id"])] = decode(name, record.value)
    return world


def produce_reference(env: dict[str, str], prefix: str, records: Sequence[Emitted]) -> None:
    """The reference records onto ``<prefix><topic>`` (compacted, as in the catalogue), keyed by entity id, with
    the event time as the record timestamp (as the generator's runner does)."""
    catalogue = load_catalogue()
    kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
    ensure_topics(kafka, [(f"{prefix}{topic}", 2, {"cleanup.policy": "compact"}) for topic in REFERENCE])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    encoders = {
        topic: serde.encoder(subject_for(f"{prefix}{topic}"), load_schema(catalogue.topic(topic).value_schema))
        for topic in REFERENCE
    }
    producer = Producer(producer_config(kafka, "dbt-test"))
    for record in records:
        value = encoders[record.topic].encode(record.value)
        producer.produce(f"{prefix}{record.topic}", value, record.key, timestamp=record.event_time_ms)
    producer.flush(120)


def create_schemas(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        for schema in ("raw", "analytics", "streaming"):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def load_events(dsn: str, world: World) -> None:
    """``raw.<family>``, ``analytics.*`` and ``streaming.*`` from the world's events (see the module's docstring)."""
    clean = world.clean()
    create_schemas(dsn)
    with psycopg.connect(dsn) as conn:
        for name in LAKE_TOPICS:
            fam = family(name)
            conn.execute(fam.create_table_sql().encode())
            copy_rows(conn, fam.table, [c.name for c in fam.columns], (raw_row(fam.columns, v) for v in clean[name]))
        daily = world.daily_tables()
        for table in TABLES:
            conn.execute(table.create_sql().encode())
            copy_rows(conn, table.table, [c for c, _ in table.columns], sorted(daily[table.name], key=repr))
        load_windows(conn, world, clean)


def load_windows(conn: psycopg.Connection[Any], world: World, clean: Events | None = None) -> None:
    """``streaming.*``: the Flink jobs' tables (their own DDL) with the oracle's windows of the world's clean events."""
    clean = world.clean() if clean is None else clean
    conn.execute(b"CREATE SCHEMA IF NOT EXISTS streaming")
    for job, target, source in STREAMING:
        write_windows(conn, job, target, source(world, clean))
