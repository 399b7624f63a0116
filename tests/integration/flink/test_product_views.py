"""The product-views job on the stack's Flink cluster against its plain-Python oracle, window by window: the
committed Kafka output (read_committed) and the PostgreSQL table, every field of every window, none missing, none
doubled; once in one run and once across a stop with a savepoint and a resume from it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import fastavro
import httpx
import psycopg
import pytest

from deploy import flink_jobs
from schemas import topics
from schemas.catalogue import load_catalogue, schema_text
from tests.integration.flink.oracle import (
    View,
    product_view_windows,
    read_committed,
    view_record,
    views_within_bound,
)
from tests.integration.sinks.helpers import produce_views, wait_for

pytestmark = pytest.mark.integration

BOUND = dt.timedelta(seconds=5)
Windows = dict[tuple[str, dt.datetime], dict[str, Any]]


def _postgres_rows(dsn: str, table: str) -> Windows:
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


def _parsed(text: str) -> Any:
    return fastavro.parse_schema(json.loads(text))


class ProductViewsRun:
    """One job's topics, table and settings, and the checks of its output against the oracle."""

    def __init__(
        self,
        stack_env: dict[str, str],
        rest_url: str,
        new_topic: Callable[..., str],
        unique_name: Callable[[str], str],
    ) -> None:
        self.env = stack_env
        self.rest_url = rest_url
        # one source partition: with several, a partition read after another went idle (idle-source timeout) may
        # see the watermark already past its events, and which events that drops depends on the fetch order
        self.source, self.sink = new_topic("pv-src", partitions=1), new_topic("pv-agg")
        self.table = f"streaming.{unique_name('pv').replace('-', '_')}"
        self.settings = {
            "PRODUCT_VIEWS_JOB_SOURCE_TOPIC": self.source,
            "PRODUCT_VIEWS_JOB_SINK_TOPIC": self.sink,
            "PRODUCT_VIEWS_JOB_POSTGRES_TABLE": self.table,
            "PRODUCT_VIEWS_JOB_GROUP_ID": unique_name("pv-job"),
            "PRODUCT_VIEWS_JOB_MAX_OUT_OF_ORDERNESS_MS": str(int(BOUND.total_seconds() * 1000)),
            "PRODUCT_VIEWS_JOB_CHECKPOINT_INTERVAL_MS": "1000",
            "PRODUCT_VIEWS_JOB_IDLE_TIMEOUT_MS": "1000",
        }

    def produce(self, views: list[View]) -> None:
        produce_views(self.env, self.source, [view_record(v) for v in views])

    def wait_for_window_end(self, end: dt.datetime) -> None:
        """Windows fire in event-time order: once one ending at ``end`` is written, every earlier one has fired."""
        wait_for(
            lambda: any(
                row["window_end"] == end for row in _postgres_rows(self.env["POSTGRES_DSN"], self.table).values()
            ),
            timeout=300,
            what=f"a window ending at {end} in PostgreSQL",
        )

    def check(self, expected: Windows) -> None:
        records = read_committed(self.env["KAFKA_BOOTSTRAP_SERVERS"], self.env["SCHEMA_REGISTRY_URL"], self.sink)
        emitted: Windows = {}
        for key, value in records:
            window = (value["product_id"], value["window_start"])
            assert window not in emitted, f"window {window} emitted twice"
            assert key == value["product_id"]
            assert value["metadata"].pop("ingest_time") >= value["window_end"]
            emitted[window] = value
        assert emitted == expected

        rows = _postgres_rows(self.env["POSTGRES_DSN"], self.table)
        fields = ("window_end", "view_count", "unique_visitors", "last_view_time")
        assert rows == {window: {f: value[f] for f in fields} for window, value in expected.items()}

    def registered_schema(self) -> Any:
        """The schema Flink's registry client registered for the output topic."""
        url = f"{self.env['SCHEMA_REGISTRY_URL']}/subjects/{self.sink}-value/versions/latest"
        return _parsed(httpx.get(url, timeout=10).json()["schema"])


@pytest.fixture
def run(
    stack_env: dict[str, str], flink_rest_url: str, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> ProductViewsRun:
    return ProductViewsRun(stack_env, flink_rest_url, new_topic, unique_name)


def _views(seed: int) -> list[View]:
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    return views_within_bound(seed=seed, count=3000, start=start, bound=BOUND)


def test_product_views_windows_equal_the_oracle(run: ProductViewsRun, submit_job: Callable[..., str]) -> None:
    views = _views(seed=13)
    run.produce(views)
    expected = product_view_windows(views, BOUND)
    assert len(expected) > 50

    job_id = submit_job("product_views", run.settings)
    run.wait_for_window_end(max(window["window_end"] for window in expected.values()))
    # stopping with a savepoint commits the last transaction: the topic then holds everything the job wrote
    flink_jobs.savepoint(run.rest_url, job_id, stop=True)
    run.check(expected)
    contract = schema_text(load_catalogue().topic(topics.AGGREGATES_PRODUCT_VIEWS).value_schema)
    assert run.registered_schema() == _parsed(contract)


def test_product_views_resume_from_a_savepoint_without_loss_or_duplicates(
    run: ProductViewsRun, submit_job: Callable[..., str]
) -> None:
    views = _views(seed=14)
    half = len(views) // 2
    expected = product_view_windows(views, BOUND)
    run.produce(views[:half])
    first = submit_job("product_views", run.settings)
    run.wait_for_window_end(max(window["window_end"] for window in product_view_windows(views[:half], BOUND).values()))
    savepoint = flink_jobs.savepoint(run.rest_url, first, stop=True)

    run.produce(views[half:])
    second = submit_job("product_views", run.settings, from_savepoint=savepoint)
    run.wait_for_window_end(max(window["window_end"] for window in expected.values()))
    flink_jobs.savepoint(run.rest_url, second, stop=True)
    run.check(expected)
