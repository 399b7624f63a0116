"""The product-views job on the stack's Flink cluster against its plain-Python oracle, window by window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from deploy import flink_jobs
from tests.integration.flink.oracle import (
    product_view_windows,
    read_committed,
    view_record,
    views_within_bound,
)
from tests.integration.sinks.helpers import produce_views, wait_for

pytestmark = pytest.mark.integration

BOUND = dt.timedelta(seconds=5)


def _postgres_rows(dsn: str, table: str) -> dict[tuple[str, dt.datetime], dict[str, Any]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT product_id, window_start, window_end, view_count, unique_visitors, last_view_time FROM {table}"
        ).fetchall()
    utc = dt.UTC
    return {
        (product, start.replace(tzinfo=utc)): {
            "window_end": end.replace(tzinfo=utc),
            "view_count": views,
            "unique_visitors": visitors,
            "last_view_time": last.replace(tzinfo=utc),
        }
        for product, start, end, views, visitors, last in rows
    }


def test_product_views_windows_equal_the_oracle(
    stack_env: dict[str, str],
    flink_rest_url: str,
    new_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    submit_job: Callable[[str, dict[str, str]], str],
) -> None:
    # one source partition: with several, a partition read after another went idle (idle-source timeout) may see
    # the watermark already past its events, and which events that drops depends on the fetch order
    source, sink = new_topic("pv-src", partitions=1), new_topic("pv-agg")
    table = f"streaming.{unique_name('pv').replace('-', '_')}"
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    views = views_within_bound(seed=13, count=3000, start=start, bound=BOUND)
    produce_views(stack_env, source, [view_record(v) for v in views])
    expected = product_view_windows(views, BOUND)
    assert len(expected) > 50

    job_id = submit_job(
        "product_views",
        {
            "PRODUCT_VIEWS_JOB_SOURCE_TOPIC": source,
            "PRODUCT_VIEWS_JOB_SINK_TOPIC": sink,
            "PRODUCT_VIEWS_JOB_POSTGRES_TABLE": table,
            "PRODUCT_VIEWS_JOB_GROUP_ID": unique_name("pv-job"),
            "PRODUCT_VIEWS_JOB_MAX_OUT_OF_ORDERNESS_MS": str(int(BOUND.total_seconds() * 1000)),
            "PRODUCT_VIEWS_JOB_CHECKPOINT_INTERVAL_MS": "1000",
            "PRODUCT_VIEWS_JOB_IDLE_TIMEOUT_MS": "1000",
        },
    )
    dsn = stack_env["POSTGRES_DSN"]
    last_end = max(window["window_end"] for window in expected.values())
    # windows fire in event-time order: once the last one is written, every earlier one has fired
    wait_for(
        lambda: any(row["window_end"] == last_end for row in _postgres_rows(dsn, table).values()),
        timeout=300,
        what="the last window in PostgreSQL",
    )
    # stopping with a savepoint commits the last transaction: the topic then holds everything the job wrote
    flink_jobs.savepoint(flink_rest_url, job_id, stop=True)

    records = read_committed(stack_env["KAFKA_BOOTSTRAP_SERVERS"], stack_env["SCHEMA_REGISTRY_URL"], sink)
    emitted: dict[tuple[str, dt.datetime], dict[str, Any]] = {}
    for key, value in records:
        window = (value["product_id"], value["window_start"])
        assert window not in emitted, f"window {window} emitted twice"
        assert key == value["product_id"]
        assert value["metadata"].pop("ingest_time") >= value["window_end"]
        emitted[window] = value
    assert emitted == expected

    rows = _postgres_rows(dsn, table)
    assert rows == {
        window: {field: value[field] for field in ("window_end", "view_count", "unique_visitors", "last_view_time")}
        for window, value in expected.items()
    }
