"""The main job's stream stage on the stack's Flink cluster, over test topics: a stale job of an earlier run is
still running on the same source (and has read an earlier run's events); the stage cancels it, runs every window job
over this run's events only (the five as one Flink job), drains it so that every window closes (the events end about
now: nothing else would close the last windows), and each job's figures agree with an oracle of this run's events
computed here, its late-event counter in Prometheus included (none late here: the per-job tests produce late
events)."""

from __future__ import annotations

import datetime as dt

import pytest

from deploy import flink_jobs
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from deploy.pipeline import Report, RunContext
from deploy.stream_stage import source_positions, stage_stream
from stream_processors import (
    category_top_products,
    product_views,
    route_shipment_delays,
    service_error_rate,
    store_order_revenue,
)
from stream_processors.oracle import (
    category_top_products_windows,
    product_views_windows,
    route_shipment_delays_windows,
    service_error_rate_windows,
    store_order_revenue_windows,
)
from tests.integration.flink.conftest import JobRunFactory, Jobs
from tests.integration.flink.oracle import (
    clickstream_events,
    enriched_view_events,
    orders_events,
    product_views_events,
    shipment_events,
)

# two job submissions (a Flink client and a Python planner each, a minute or more on a loaded machine): the stale
# job, then the stage's one job of five
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BOUND = dt.timedelta(seconds=5)


def test_stream_stage_counts_this_run_only_and_closes_every_window(
    stack_env: dict[str, str], flink_rest_url: str, job_run: JobRunFactory, jobs: Jobs
) -> None:
    views = job_run(product_views.JOB, "PRODUCT_VIEWS_JOB_", BOUND)
    orders = job_run(store_order_revenue.JOB, "STORE_ORDER_REVENUE_JOB_", BOUND)
    routes = job_run(route_shipment_delays.JOB, "ROUTE_SHIPMENT_DELAYS_JOB_", BOUND)
    errors = job_run(service_error_rate.JOB, "SERVICE_ERROR_RATE_JOB_", BOUND)
    tops = job_run(category_top_products.JOB, "CATEGORY_TOP_PRODUCTS_JOB_", BOUND)
    env = {**stack_env, **views.settings, **orders.settings, **routes.settings, **errors.settings, **tops.settings}
    # the events end about now, like the generator's: their last windows close only when event time goes further
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=12)).replace(second=0, microsecond=0)

    # an earlier run's views, read by the job of that run, which is still running
    views.produce(product_views_events(seed=30, count=500, start=start, bound=BOUND))
    stale = jobs.submit("product_views", views.settings)
    views.wait_until_read()

    ctx = RunContext(
        env=env, stack=Stack(StackContext.create(StackSettings())), report=Report(), run_id="test", events=0
    )
    ctx.stream_from = source_positions(env)
    this_views = product_views_events(seed=31, count=1500, start=start, bound=BOUND)
    this_orders = orders_events(seed=32, count=600, start=start, bound=BOUND)
    this_shipments = shipment_events(seed=33, count=400, start=start, bound=BOUND)
    this_clicks = clickstream_events(seed=34, count=800, start=start, bound=BOUND)
    this_enriched = enriched_view_events(seed=35, count=800, start=start, bound=BOUND)
    views.produce(this_views)
    orders.produce(this_orders)
    routes.produce(this_shipments)
    errors.produce(this_clicks)
    tops.produce(this_enriched)

    stage_stream(ctx)

    assert flink_jobs.job_details(flink_rest_url, stale)["state"] == "CANCELED"
    # one Flink job ran the five, named after each deployment it held
    ran = [job for job in flink_jobs.jobs(flink_rest_url) if views.group in job["name"] and job["jid"] != stale]
    assert [job["state"] for job in ran] == ["FINISHED"]
    assert all(run.group in ran[0]["name"] for run in (views, orders, routes, errors, tops))
    figures = ctx.figures.stream
    expected = {
        "product_views": (this_views, product_views_windows(this_views, None)),
        "store_order_revenue": (this_orders, store_order_revenue_windows(this_orders, None)),
        "route_shipment_delays": (this_shipments, route_shipment_delays_windows(this_shipments, None)),
        "service_error_rate": (this_clicks, service_error_rate_windows(this_clicks, None)),
        "category_top_products": (this_enriched, category_top_products_windows(this_enriched, None)),
    }
    assert set(figures) == set(expected)
    for name, (events, windows) in expected.items():
        job = figures[name]
        assert (name, job.source_events, job.counted_events) == (name, len(events), len(events))
        assert (name, job.late_events, job.late_seen) == (name, 0, 0)
        assert (name, job.windows_expected, job.kafka_rows, job.postgres_rows) == (name, *[len(windows)] * 3)
        assert (name, job.kafka_duplicates, job.differences) == (name, 0, [])
        assert job.kafka_agrees and job.postgres_agrees and job.agrees, name
    assert ctx.report.problems == []
