"""The Spark jobs on real Spark against the stack's HDFS and PostgreSQL, checked row by row against a plain-Python
oracle computed from the same generated events.

A generated minute and a half either side of midnight (fixed seed and start), plus repeated records and records
breaking the contracts' invariants, is produced onto the test's own topics and landed by the real HDFS, GCS and
MongoDB sinks into a private lake root, bucket and database; the combined job (``daily_batch``: the load and the
daily tables in one Spark application) runs as a process of the Spark environment against a private PostgreSQL
database, once from the lake and once more (the re-run) with the views from MongoDB. The database starts with a
``raw.shipment_events`` of an older contract (no ``carrier``), which the load upgrades. The reconciliation with the
streaming windows runs over the same day, the windows written as the drained Flink jobs write them without the
events they report late.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from batch_spark.contract import LAKE_TOPICS, family
from batch_spark.daily import TABLES
from deploy import flink_jobs
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.reconcile import reconcile
from deploy.spark import run_job
from schemas import topics
from schemas.catalogue import load_catalogue, load_schema
from services.common.kafka import Producer, ensure_topics, producer_config
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from services.sink_hdfs.store import WebHdfsStore
from tests.integration.batch_spark.oracle import Day, event_time
from tests.integration.batch_spark.support import (
    Decoder,
    copy_rows,
    generate,
    land,
    private_database,
    produce,
    raw_row,
    remove_landed,
    rows,
    spoil,
    write_windows,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

SEED = 20261102
START = dt.datetime(2026, 11, 2, 23, 58, 30, tzinfo=dt.UTC)  # 90 s of day D, then the start of D + 1
DAY = dt.date(2026, 11, 2)
RECORDS = 14_000
CORRUPT = "corrupt.avro"
FREIGHTLINE = str(Path(sys.executable).parent / "freightline")
ADDED = "carrier"  # a field the shipment contract gained (default UNKNOWN) after the first tables were created


class Run:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.paths = StackContext.create(StackSettings()).paths

    def job(self, name: str) -> dict[str, Any]:
        return run_job(name, self.paths, self.env, self.log, ds=DAY)

    def dump(self) -> dict[str, list[str]]:
        tables = [f"raw.{name}" for name in LAKE_TOPICS] + ["raw.rejected"] + [t.table for t in TABLES]
        return {
            table: sorted(repr(row) for row in rows(self.env["POSTGRES_DSN"], f"SELECT * FROM {table}"))
            for table in tables
        }


def old_shipments_table(dsn: str, value: dict[str, Any]) -> str:
    """``raw.shipment_events`` as an older contract made it (no ``carrier``), holding one event of the day before
    (``value`` moved back a day, new id); returns its event id."""
    fam = family("shipment_events")
    old = [c for c in fam.columns if c.name != ADDED]
    decoded = Decoder()("shipment_events", value)
    metadata = {**decoded["metadata"], "event_id": str(uuid.uuid4())}
    metadata["event_time"] -= dt.timedelta(days=1)
    lines = [f'"{c.name}" {c.pg_type}{"" if c.nullable else " NOT NULL"}' for c in old]
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE SCHEMA raw")
        conn.execute(f"CREATE TABLE {fam.table} ({', '.join(lines)}, PRIMARY KEY (event_id))".encode())
        copy_rows(conn, fam.table, [c.name for c in old], [raw_row(old, {**decoded, "metadata": metadata})])
    return str(metadata["event_id"])


@pytest.fixture(scope="module")
def scenario(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("spark")
    prefix = f"spark-{uuid.uuid4().hex[:10]}-"
    root, bucket = f"/tests/{prefix.rstrip('-')}", prefix.rstrip("-")
    events = generate(SEED, START, RECORDS)
    extra = spoil(events, DAY)
    produce(stack_env, prefix, events + extra)
    land(stack_env, prefix, f"{root}/raw", bucket, work)
    store = WebHdfsStore(stack_env["HDFS_WEBHDFS_URL"], "freightline")
    # a corrupt file among the day's orders: rejected with its path, and the jobs still finish
    store.write(f"{root}/raw/{prefix}{LAKE_TOPICS['orders']}/dt={DAY}/hour=23/{CORRUPT}", b"not an Avro file")
    try:
        with private_database(stack_env["POSTGRES_DSN"]) as dsn:
            env = {
                **stack_env,
                "POSTGRES_DSN": dsn,
                "SPARK_JOBS_LAKE_ROOT": f"{root}/raw",
                "SPARK_JOBS_ANALYTICS_ROOT": f"{root}/analytics",
                "SPARK_JOBS_TOPIC_PREFIX": prefix,
                "GCS_BUCKET": bucket,
            }
            by_family: dict[str, list[dict[str, Any]]] = {name: [] for name in LAKE_TOPICS}
            for name, value in events + extra:
                by_family[name].append(value)
            oracle = Day(DAY, by_family)
            old_id = old_shipments_table(dsn, oracle.clean["shipment_events"][0])
            run = Run(env, work / "spark.log")
            report = run.job("batch")["days"][str(DAY)]
            yield {
                "run": run,
                "report": report,
                "oracle": oracle,
                "store": store,
                "root": root,
                "bucket": bucket,
                "old_id": old_id,
                "prefix": prefix,
            }
    finally:
        remove_landed(stack_env, root, bucket)


def test_the_day_crosses_midnight_with_late_arrivals() -> None:
    events = generate(SEED, START, RECORDS)
    days = [event_time(value).date() for _family, value in events]
    assert set(days) == {DAY, DAY + dt.timedelta(days=1)}
    first_next = days.index(DAY + dt.timedelta(days=1))
    assert DAY in days[first_next:], "no event of D arrives after the first event of D + 1"


def test_raw_tables_hold_each_event_of_the_day_once_with_exact_types(scenario: dict[str, Any]) -> None:
    run, oracle, report = scenario["run"], scenario["oracle"], scenario["report"]["load_raw"]
    dsn = run.env["POSTGRES_DSN"]
    for name in LAKE_TOPICS:
        loaded = rows(dsn, f"SELECT event_id::text FROM raw.{name} WHERE ds = '{DAY}'")
        expected = {v["metadata"]["event_id"] for v in oracle.clean[name]}
        assert Counter(r[0] for r in loaded) == Counter(expected), name
        figures = report[name]
        assert figures == {
            "read": oracle.read[name],
            "loaded": len(expected),
            "rejected": len(oracle.rejected[name]),
            "duplicates": oracle.duplicates[name],
            "unreadable_files": 1 if name == "orders" else 0,
        }, name
        # every row read is accounted for
        assert figures["read"] == figures["loaded"] + figures["rejected"] + figures["duplicates"]
    # the same counts, committed with the day's rows in raw.load_audit (where the main job reads them back)
    audit = rows(dsn, "SELECT family, ds, read, loaded, rejected, duplicates, unreadable_files FROM raw.load_audit")
    assert {(f, d): tuple(n) for f, d, *n in audit} == {
        (family, DAY): tuple(
            report[family][k] for k in ("read", "loaded", "rejected", "duplicates", "unreadable_files")
        )
        for family in LAKE_TOPICS
    }
    assert sum(oracle.duplicates.values()) == 40 and sum(map(len, oracle.rejected.values())) == 4
    rejected = rows(dsn, "SELECT family, event_id, reason, source_file FROM raw.rejected")
    unreadable = [r for r in rejected if r[2] == "unreadable Avro file"]
    assert [(r[0], r[1], r[3].endswith(f"/dt={DAY}/hour=23/{CORRUPT}")) for r in unreadable] == [("orders", None, True)]
    rejected = [r for r in rejected if r not in unreadable]
    assert sorted(r[:3] for r in rejected) == sorted(
        (name, event_id, why) for name, items in oracle.rejected.items() for event_id, why in items
    )
    assert {r[3].split("://")[0] for r in rejected} == {"hdfs", "gs"}
    orders = rows(dsn, "SELECT event_id::text, event_time, order_id, status, order_total, line_items FROM raw.orders")
    assert sorted(orders) == sorted(
        (
            v["metadata"]["event_id"],
            event_time(v),
            v["order_id"],
            v["status"],
            v["order_total"],
            [
                {**line, "price": float(line["price"]), "sales_amount": float(line["sales_amount"])}
                for line in v["line_items"]
            ],
        )
        for v in oracle.clean["orders"]
    )
    types = dict(
        rows(
            dsn,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'orders'",
        )
    )
    assert (types["event_id"], types["event_time"], types["order_total"], types["order_date"]) == (
        "uuid",
        "timestamp with time zone",
        "numeric",
        "date",
    )


def test_daily_tables_equal_the_oracle_row_for_row(scenario: dict[str, Any]) -> None:
    run, oracle = scenario["run"], scenario["oracle"]
    expected = oracle.tables()
    report = scenario["report"]["daily_aggregates"]
    found = {}
    for table in TABLES:
        columns = ", ".join(name for name, _ in table.columns)
        found[table.name] = rows(run.env["POSTGRES_DSN"], f"SELECT {columns} FROM {table.table}")
        assert expected[table.name], f"{table.name}: the oracle has no rows (the scenario proves nothing)"
    differing = [name for name, got in found.items() if len(got) != len(set(got)) or set(got) != expected[name]]
    assert differing == [], {name: set(found[name]) ^ expected[name] for name in differing}
    for table in TABLES:
        assert report["rows_written"][table.table] == len(found[table.name])
        parquet = scenario["store"].list_files(f"{scenario['root']}/analytics/{table.name}".lstrip("/"))
        partitions = {path.split("/")[-2] for path, _size in parquet if path.endswith(".parquet")}
        assert partitions == {f"ds={DAY}"}, table.name


def test_a_table_of_an_older_contract_gains_the_new_column(scenario: dict[str, Any]) -> None:
    """The load adds the column the contract gained to a table created before it (``ADD COLUMN IF NOT EXISTS``): the
    older rows get the contract's default, the day's rows their own values."""
    dsn = scenario["run"].env["POSTGRES_DSN"]
    found = dict(rows(dsn, f"SELECT event_id::text, {ADDED} FROM raw.shipment_events"))
    expected = {v["metadata"]["event_id"]: v[ADDED] for v in scenario["oracle"].clean["shipment_events"]}
    assert found == {**expected, scenario["old_id"]: "UNKNOWN"}
    assert "UNKNOWN" not in expected.values()


def test_rerunning_the_day_with_views_from_mongodb_leaves_the_same_rows(scenario: dict[str, Any]) -> None:
    """The re-run reads the product views from MongoDB (seed 004's path: the MongoDB sink's documents, one per event
    id) instead of the lake's files: every table keeps exactly its rows."""
    run, oracle = scenario["run"], scenario["oracle"]
    before = run.dump()
    env = {**run.env, "SPARK_JOBS_PRODUCT_VIEWS_SOURCE": "mongodb", "MONGODB_DATABASE": scenario["bucket"]}
    report = run_job("batch", run.paths, env, run.log, ds=DAY)["days"][str(DAY)]
    views = len(oracle.clean["product_views"])
    expected = {"read": views, "loaded": views, "rejected": 0, "duplicates": 0, "unreadable_files": 0}
    assert report["load_raw"]["product_views"] == expected
    first = scenario["report"]
    assert {k: v for k, v in report["load_raw"].items() if k != "product_views"} == {
        k: v for k, v in first["load_raw"].items() if k != "product_views"
    }
    assert report["daily_aggregates"]["rows_written"] == first["daily_aggregates"]["rows_written"]
    assert run.dump() == before


# -- reconciliation with the streaming windows (deploy/reconcile.py) ------------------------------------------------
# per window job compared: its raw family, the events its windows count, and every how many of them it reports late
STREAMED: dict[str, tuple[str, str | None, int]] = {
    "product_views": ("product_views", None, 20),
    "store_order_revenue": ("orders", "PLACED", 4),
    "route_shipment_delays": ("shipment_events", "DELIVERED", 3),
}


@pytest.fixture(scope="module")
def streamed(scenario: dict[str, Any]) -> dict[str, Any]:
    """The day as the drained window jobs leave it: each job's windows (its oracle) over the day's events but those
    it reported late, and the late ones on the test's late-events topic (as the jobs write them). The late events
    are every n-th counted event of every other key (the other keys have none), and for the orders and shipments
    also events the windows do not count (not PLACED, not DELIVERED: late or not, they add nothing to either side)."""
    run, oracle, decode = scenario["run"], scenario["oracle"], Decoder()
    late_topic = f"{scenario['prefix']}{topics.LATE_EVENTS}"
    env = {**run.env, **{f"{flink_jobs.job(name).settings_prefix}LATE_TOPIC": late_topic for name in STREAMED}}
    kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
    ensure_topics(kafka, [(late_topic, 1, {})])
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    schema = load_schema(load_catalogue().topic(topics.LATE_EVENTS).value_schema)
    encoder = serde.encoder(subject_for(late_topic), schema)
    producer = Producer(producer_config(kafka, "reconcile-test"))
    late: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(env["POSTGRES_DSN"]) as conn:
        for name, (source, status, every) in STREAMED.items():
            spec = flink_jobs.job(name)
            settings = flink_jobs.job_settings(spec, env)
            events = oracle.clean[source]
            counted = [v for v in events if status is None or v["status"] == status]
            keys = sorted({tuple(v[k] for k in spec.job.key) for v in counted})
            exact = set(keys[::2])  # every other key has no late event: its figures must match exactly
            counted = [v for v in counted if tuple(v[k] for k in spec.job.key) not in exact]
            late[name] = counted[::every] + [v for v in events if status is not None and v["status"] != status][:5]
            ids = {v["metadata"]["event_id"] for v in late[name]}
            on_time = [decode(source, v) for v in events if v["metadata"]["event_id"] not in ids]
            write_windows(conn, spec.job, settings.postgres_table, on_time)
            size = spec.job.window_minutes * 60_000
            for value in late[name]:
                start = value["metadata"]["event_time"] // size * size
                record = {
                    "metadata": {**value["metadata"], "producer": spec.job.producer},
                    "job": spec.job.name,
                    "source_topic": settings.source_topic,
                    "window_key": "|".join(str(value[k]) for k in spec.job.key),
                    "window_start": start,
                    "window_end": start + size,
                    "watermark": start + size + 1_000,
                }
                producer.produce(late_topic, encoder.encode(record), spec.job.name)
    producer.flush(60)
    return {"env": env, "late": late}


def late_shares(late: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str, tuple[str, ...]], Any]:
    """What the late events add to the daily figures, per measure, figure and key (plain Python)."""
    shares: dict[tuple[str, str, tuple[str, ...]], Any] = Counter()
    for view in late["product_views"]:
        shares[("product views", "views", (view["product_id"],))] += 1
    for order in late["store_order_revenue"]:
        if order["status"] == "PLACED":
            key = (order["store_id"], order["currency"])
            shares[("order revenue", "orders", key)] += 1
            shares[("order revenue", "items", key)] += sum(line["quantity"] for line in order["line_items"])
            shares[("order revenue", "revenue", key)] += order["order_total"]
    for event in late["route_shipment_delays"]:
        if event["status"] == "DELIVERED":
            shares[("delivered shipments", "delivered", (event["route_id"],))] += 1
    return shares


def test_reconciliation_explains_each_difference_by_the_late_events(streamed: dict[str, Any]) -> None:
    result = reconcile(streamed["env"], DAY)
    assert result.unexplained == [], [d.describe() for d in result.unexplained]
    assert result.late_events == {name: len(events) for name, events in streamed["late"].items()}
    assert set(result.late_outside_lake.values()) == {0}
    found = {(d.measure, d.figure, d.key): d.late for d in result.differences}
    assert found == late_shares(streamed["late"])
    assert all(d.daily - d.windows == d.late != 0 for d in result.differences)
    # the other keys match exactly: each measure compared more keys than differ
    for measure, keys in result.keys.items():
        assert len({d.key for d in result.differences if d.measure == measure}) < keys, measure


def test_an_unexplained_difference_fails_the_reconcile_command(streamed: dict[str, Any]) -> None:
    """One more view in a window of a product without late views: ``freightline reconcile`` prints that key as
    unexplained and exits 1."""
    env = streamed["env"]
    late_products = {v["product_id"] for v in streamed["late"]["product_views"]}
    table = flink_jobs.job_settings(flink_jobs.job("product_views"), env).postgres_table
    with psycopg.connect(env["POSTGRES_DSN"]) as conn:
        product, start = next(
            (p, s)
            for p, s in conn.execute(f"SELECT product_id, window_start FROM {table}".encode())
            if p not in late_products
        )
    change = f"UPDATE {table} SET view_count = view_count {{}} 1 WHERE product_id = %s AND window_start = %s"
    with psycopg.connect(env["POSTGRES_DSN"]) as conn:
        conn.execute(change.format("+").encode(), [product, start])
    try:
        result = subprocess.run(
            [FREIGHTLINE, "reconcile", "--ds", str(DAY)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,  # a hang guard
            check=False,
        )
    finally:
        with psycopg.connect(env["POSTGRES_DSN"]) as conn:
            conn.execute(change.format("-").encode(), [product, start])
    unexplained = [line for line in result.stdout.splitlines() if "UNEXPLAINED" in line]
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(unexplained) == 1, result.stdout[-3000:]
    assert unexplained[0].startswith(f"product views {product} views:") and unexplained[0].endswith("[UNEXPLAINED -1]")
    assert result.stdout.splitlines()[-1].endswith(", 1 unexplained")
