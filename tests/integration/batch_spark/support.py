"""Test support of the Spark jobs: a generated day landed by the real HDFS sink into a private lake root, a
private PostgreSQL database, and the jobs run as processes in the Spark environment (``deploy.spark``)."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import psycopg
from psycopg import sql

from batch_spark.contract import GCS_TOPICS, HDFS_TOPICS, LAKE_TOPICS, Column
from schemas import topics
from schemas.catalogue import load_catalogue, load_schema
from services.common.kafka import Producer, ensure_topics, producer_config
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import MONGODB_PRODUCT_VIEWS_COLLECTION, KafkaSettings, SchemaRegistrySettings
from services.generator.engine import Engine
from services.generator.settings import GeneratorSettings
from stream_processors.flink_sql import WindowJob
from stream_processors.oracle import ORACLES
from tests.integration.processes import service_process, wait_for
from tests.integration.registry import with_database
from tests.integration.sinks.helpers import consumer_lag

# The generator's catalogue topic of each lake family (product views come from upstream, mirrored unchanged).
GENERATED = {
    "product_views": topics.UPSTREAM_PRODUCT_VIEWS,
    "clickstream": topics.CLICKSTREAM,
    "orders": topics.ORDERS,
    "shipment_events": topics.SHIPMENT_EVENTS,
    "supplier_invoices": topics.SUPPLIER_INVOICES,
    "supplier_payments": topics.SUPPLIER_PAYMENTS,
}


def generate(seed: int, start: dt.datetime, count: int) -> list[tuple[str, dict[str, Any]]]:
    """The generator's first ``count`` records from ``start`` (fixed seed), in produce order, as (family, value);
    fewer views and clicks per second than by default, so that a short span holds orders and shipments too, and
    12 s steps (10 s of lateness at most) so that shipments booked in it are delivered in it."""
    settings = GeneratorSettings(
        seed=seed, start_time=start, rate_product_views=8, rate_clickstream=4, step_s=12, max_lateness_s=10
    )
    engine = Engine(settings.engine_config())
    family_of = {topic: family for family, topic in GENERATED.items()}
    return [(family_of[r.topic], r.value) for r in engine.take(count) if r.topic in family_of]


def spoil(events: list[tuple[str, dict[str, Any]]], day: dt.date) -> list[tuple[str, dict[str, Any]]]:
    """What at-least-once stages and bad producers add: 40 repeated records and 4 breaking invariants (new ids)."""
    of_day = [
        (f, v) for f, v in events if dt.datetime.fromtimestamp(v["metadata"]["event_time"] / 1000, dt.UTC).date() == day
    ]
    repeats = [copy.deepcopy(item) for item in of_day[:: max(len(of_day) // 40, 1)][:40]]
    orders = [copy.deepcopy(v) for f, v in of_day if f == "orders"][:2]
    orders[0]["order_total"] += Decimal("1.00")  # not the sum of its lines
    orders[1]["line_items"][0]["price"] = Decimal("-1.00")  # negative money
    shipment = copy.deepcopy(next(v for f, v in of_day if f == "shipment_events"))
    shipment["shipment_cost"] = Decimal("-5.00")
    payment = copy.deepcopy(next(v for f, v in of_day if f == "supplier_payments"))
    payment["payment_delay_days"] += 1
    broken = [
        ("orders", orders[0]),
        ("orders", orders[1]),
        ("shipment_events", shipment),
        ("supplier_payments", payment),
    ]
    for _family, value in broken:
        value["metadata"]["event_id"] = str(uuid.uuid4())
    return repeats + broken


def produce(env: dict[str, str], prefix: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    catalogue = load_catalogue()
    kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
    names = {family: f"{prefix}{topic}" for family, topic in LAKE_TOPICS.items()}
    ensure_topics(kafka, [(name, 3, {}) for name in names.values()])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    encoders = {
        family: serde.encoder(subject_for(name), load_schema(catalogue.topic(LAKE_TOPICS[family]).value_schema))
        for family, name in names.items()
    }
    producer = Producer(producer_config(kafka, "spark-test"))
    for family, value in events:
        producer.produce(names[family], encoders[family].encode(value), value["metadata"]["event_id"])
    producer.flush(120)


def land(env: dict[str, str], prefix: str, root: str, bucket: str, logs: Path) -> None:
    """The HDFS sink (into ``root``), the GCS sink (into ``bucket``) and the MongoDB sink (product views into the
    database named ``bucket``) over the test's topics, side by side, until all committed everything."""
    views = f"{prefix}{topics.PRODUCT_VIEWS}"
    mongodb = {
        "SINK_MONGODB_DATABASE": bucket,
        "SINK_MONGODB_COLLECTIONS": f"{views}={MONGODB_PRODUCT_VIEWS_COLLECTION}",
    }
    sinks = {
        "sink_mongodb": (mongodb, [views]),
        "sink_hdfs": ({"SINK_HDFS_ROOT": root}, [f"{prefix}{t}" for t in HDFS_TOPICS.values()]),
        "sink_gcs": (
            {"SINK_GCS_BUCKET": bucket, "SINK_GCS_CREATE_BUCKET": "1"},
            [f"{prefix}{t}" for t in GCS_TOPICS.values()],
        ),
    }
    groups = {module: f"{prefix}{module}" for module in sinks}
    with ExitStack() as stack:
        running = []
        for module, (settings, names) in sinks.items():
            upper = module.upper()
            sink_env = {**env, **settings, "METRICS_PORT": "0", f"{upper}_TOPICS": ",".join(names)}
            sink_env |= {
                f"{upper}_GROUP_ID": groups[module],
                f"{upper}_BATCH_TIMEOUT_S": "1",
                f"{upper}_INSTANCE_ID": "",
            }
            running.append(stack.enter_context(service_process(module, sink_env, logs / f"{module}.log")))

        def drained() -> bool:
            return all(consumer_lag(env, groups[m], t) == 0 for m, (_, names) in sinks.items() for t in names)

        wait_for(drained, 300, 1.0, "the sinks' lag")
        for sink in running:
            assert sink.stop() == 0, sink.log()


def remove_landed(env: dict[str, str], root: str, bucket: str) -> None:
    """What ``land`` left: the lake root on HDFS, the GCS bucket and the MongoDB database named ``bucket``."""
    from services.common.mongodb import mongo_client
    from services.common.settings import GcsSettings, MongoSettings
    from services.sink_gcs.store import gcs_client
    from services.sink_hdfs.store import WebHdfsStore

    WebHdfsStore(env["HDFS_WEBHDFS_URL"], "freightline").client.delete(root, recursive=True)
    gcs = gcs_client(GcsSettings.from_mapping(env))
    for blob in gcs.list_blobs(bucket):
        blob.delete()
    gcs.bucket(bucket).delete()
    client = mongo_client(MongoSettings.from_mapping(env))
    client.drop_database(bucket)
    client.close()


@contextmanager
def private_database(dsn: str) -> Iterator[str]:
    database = f"spark_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        yield with_database(dsn, database)  # the DSN's query (TLS parameters) kept
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return list(conn.execute(query.encode()).fetchall())


class Decoder:
    """Generated values (times in ms, dates in days) encoded with the catalogue's schema of their family and decoded
    again: the form Avro readers see (datetimes, dates, decimals)."""

    def __init__(self) -> None:
        catalogue = load_catalogue()
        self.schemas = {
            name: fastavro.parse_schema(load_schema(catalogue.topic(topic).value_schema))
            for name, topic in LAKE_TOPICS.items()
        }

    def __call__(self, family: str, value: dict[str, Any]) -> dict[str, Any]:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self.schemas[family], value)
        buffer.seek(0)
        decoded = fastavro.schemaless_reader(buffer, self.schemas[family], self.schemas[family])
        assert isinstance(decoded, dict)
        return decoded


def copy_rows(conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    schema, _, name = table.partition(".")
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(schema, name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def write_windows(conn: psycopg.Connection[Any], job: WindowJob, table: str, events: list[dict[str, Any]]) -> int:
    """The windows a drained Flink job writes for the (decoded) ``events`` (its oracle), into ``table`` created with
    the job's own DDL, as the job's PostgreSQL sink does; returns the windows written."""
    for statement in job.postgres_ddl(table).split(";"):
        if statement.strip():
            conn.execute(statement.encode())
    columns = [column.name for column in job.warehouse]
    windows = list(ORACLES[job.name](events, None).values())
    rows = (
        [json.dumps(w[c]) if isinstance(w[c], dict) else _naive_utc(w[c]) for c in columns]  # delays_by_reason: JSON
        for w in windows
    )
    copy_rows(conn, table, columns, rows)
    return len(windows)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # Spark's to_json writes decimals as JSON numbers
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"no JSON for {type(value).__name__}")


def raw_row(columns: Sequence[Column], value: dict[str, Any]) -> list[Any]:
    """A decoded event as its ``raw.<family>`` row (envelope flattened, nested values as JSON, ``ds``)."""
    row: list[Any] = []
    for column in columns:
        if column.name == "ds":
            item: Any = value["metadata"]["event_time"].astimezone(dt.UTC).date()
        elif column.name in value["metadata"]:
            item = value["metadata"][column.name]
        else:
            item = value[column.name]
        if column.pg_type == "jsonb" and item is not None:
            item = json.dumps(item, default=_json)
        row.append(str(item) if column.pg_type == "uuid" else item)
    return row
