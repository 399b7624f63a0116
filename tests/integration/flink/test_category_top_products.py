"""The category-top-products job (window Top-N) against its oracle: per category and 10-minute window hopping by 5
minutes, the ten most viewed products with their rank (ties broken by product id), views and unique visitors, in
the committed Kafka output and PostgreSQL; views of unknown products are ranked nowhere; views whose last window
had closed go to the late-events topic with that window."""

from __future__ import annotations

import datetime as dt

import pytest

from stream_processors.category_top_products import JOB, TOP
from stream_processors.oracle import category_top_products_windows
from tests.integration.flink.conftest import JobRunFactory, Jobs
from tests.integration.flink.oracle import enriched_view_events

pytestmark = pytest.mark.integration

BOUND = dt.timedelta(seconds=5)


def test_category_top_products_windows_equal_the_oracle(job_run: JobRunFactory, jobs: Jobs) -> None:
    run = job_run(JOB, "CATEGORY_TOP_PRODUCTS_JOB_", BOUND)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    events = enriched_view_events(seed=61, count=3000, start=start, bound=BOUND)
    run.produce(events)
    expected = category_top_products_windows(events, BOUND)
    ranks = [window["rank"] for window in expected.values()]
    assert ranks.count(TOP) > 3 and ranks.count(1) > 10  # full top tens, many windows
    assert any(event["product"]["category"] is None for event in events)

    known = [event for event in events[:10] if event["product"]["category"] is not None]
    run.run_late_and_check(
        jobs.submit,
        "category_top_products",
        expected,
        known,
        lambda event: f"{event['product']['category']}|{event['event']['product_id']}",
    )
