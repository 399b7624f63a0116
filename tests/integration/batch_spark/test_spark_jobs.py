"""The Spark jobs on real Spark against the stack's HDFS and PostgreSQL, checked row by row against a plain-Python
oracle computed from the same generated events.

A generated minute and a half either side of midnight (fixed seed and start), plus repeated records and records
breaking the contracts' invariants, is produced onto the test's own topics and landed by the real HDFS sink into a
private lake root; the jobs run as processes of the Spark environment against a private database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_spark.contract import LAKE_TOPICS
from batch_spark.daily import TABLES
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.spark import run_job
from services.sink_hdfs.store import WebHdfsStore
from tests.integration.batch_spark.oracle import Day, event_time
from tests.integration.batch_spark.support import (
    generate,
    land,
    private_database,
    produce,
    remove_landed,
    rows,
    spoil,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

SEED = 20261102
START = dt.datetime(2026, 11, 2, 23, 58, 30, tzinfo=dt.UTC)  # 90 s of day D, then the start of D + 1
DAY = dt.date(2026, 11, 2)
RECORDS = 14_000
CORRUPT = "corrupt.avro"


class Run:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.paths = StackContext.create(StackSettings()).paths

    def job(self, name: str) -> dict[str, Any]:
        return run_job(name, self.paths, self.env, self.log, ds=DAY)

    def dump(self) -> dict[str, list[str]]:
        tables = [f"raw.{family}" for family in LAKE_TOPICS] + ["raw.rejected"] + [t.table for t in TABLES]
        return {
            table: sorted(repr(row) for row in rows(self.env["POSTGRES_DSN"], f"SELECT * FROM {table}"))
            for table in tables
        }


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
            run = Run(env, work / "spark.log")
            reports = {"load-raw": run.job("load-raw"), "daily": run.job("daily")}
            by_family: dict[str, list[dict[str, Any]]] = {family: [] for family in LAKE_TOPICS}
            for family, value in events + extra:
                by_family[family].append(value)
            oracle = Day(DAY, by_family)
            yield {"run": run, "reports": reports, "oracle": oracle, "store": store, "root": root, "bucket": bucket}
    finally:
        remove_landed(stack_env, root, bucket)


def test_the_day_crosses_midnight_with_late_arrivals() -> None:
    events = generate(SEED, START, RECORDS)
    days = [event_time(value).date() for _family, value in events]
    assert set(days) == {DAY, DAY + dt.timedelta(days=1)}
    first_next = days.index(DAY + dt.timedelta(days=1))
    assert DAY in days[first_next:], "no event of D arrives after the first event of D + 1"


def test_raw_tables_hold_each_event_of_the_day_once_with_exact_types(scenario: dict[str, Any]) -> None:
    run, oracle, report = scenario["run"], scenario["oracle"], scenario["reports"]["load-raw"]["days"][str(DAY)]
    dsn = run.env["POSTGRES_DSN"]
    for family in LAKE_TOPICS:
        loaded = rows(dsn, f"SELECT event_id::text FROM raw.{family}")
        expected = {v["metadata"]["event_id"] for v in oracle.clean[family]}
        assert Counter(r[0] for r in loaded) == Counter(expected), family
        figures = report[family]
        assert figures == {
            "read": oracle.read[family],
            "loaded": len(expected),
            "rejected": len(oracle.rejected[family]),
            "duplicates": oracle.duplicates[family],
            "unreadable_files": 1 if family == "orders" else 0,
        }, family
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
        (family, event_id, why) for family, items in oracle.rejected.items() for event_id, why in items
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
    report = scenario["reports"]["daily"]["days"][str(DAY)]
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


def test_rerunning_the_day_with_views_from_mongodb_leaves_the_same_rows(scenario: dict[str, Any]) -> None:
    """The re-run reads the product views from MongoDB (seed 004's path: the MongoDB sink's documents, one per event
    id) instead of the lake's files, through the combined job (both jobs in one Spark application): every table
    keeps exactly its rows."""
    run, oracle = scenario["run"], scenario["oracle"]
    before = run.dump()
    env = {**run.env, "SPARK_JOBS_PRODUCT_VIEWS_SOURCE": "mongodb", "MONGODB_DATABASE": scenario["bucket"]}
    report = run_job("batch", run.paths, env, run.log, ds=DAY)["days"][str(DAY)]
    views = len(oracle.clean["product_views"])
    expected = {"read": views, "loaded": views, "rejected": 0, "duplicates": 0, "unreadable_files": 0}
    assert report["load_raw"]["product_views"] == expected
    first = scenario["reports"]["load-raw"]["days"][str(DAY)]
    assert {k: v for k, v in report["load_raw"].items() if k != "product_views"} == {
        k: v for k, v in first.items() if k != "product_views"
    }
    assert report["daily_aggregates"]["rows_written"] == scenario["reports"]["daily"]["days"][str(DAY)]["rows_written"]
    assert run.dump() == before
