"""The store-order-revenue job against its oracle: per store and currency per 5-minute window, distinct orders
placed, units and revenue to the cent (decimals end to end), in the committed Kafka output and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from stream_processors.oracle import store_order_revenue_windows
from stream_processors.store_order_revenue import JOB
from tests.integration.flink.conftest import JobRunFactory, Jobs
from tests.integration.flink.oracle import orders_events

pytestmark = pytest.mark.integration

BOUND = dt.timedelta(seconds=5)


def test_store_order_revenue_windows_equal_the_oracle(job_run: JobRunFactory, jobs: Jobs) -> None:
    run = job_run(JOB, "STORE_ORDER_REVENUE_JOB_", BOUND)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    events = orders_events(seed=21, count=3000, start=start, bound=BOUND)
    run.produce(events)
    expected = store_order_revenue_windows(events, BOUND)
    assert len(expected) > 10
    assert any(window["revenue"] % 1 != 0 for window in expected.values())  # cents, not whole units

    run.run_and_check(jobs.submit, "store_order_revenue", expected)
    assert all(isinstance(window["revenue"], Decimal) for window in run.postgres_rows().values())
