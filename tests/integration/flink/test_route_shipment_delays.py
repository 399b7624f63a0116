"""The route-shipment-delays job against its oracle: per route per hour, events, distinct shipments, delayed ones
(and the rate, exactly the same double), delayed shipments per reason (the Avro map in Kafka, a jsonb object in
PostgreSQL), delivered ones and their mean and largest delay against the promised date, two cascaded window
aggregations deep, in the committed Kafka output and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from stream_processors.oracle import route_shipment_delays_windows
from stream_processors.route_shipment_delays import JOB
from tests.integration.flink.conftest import JobRunFactory, Jobs
from tests.integration.flink.oracle import shipment_events

pytestmark = pytest.mark.integration

BOUND = dt.timedelta(seconds=5)


def test_route_shipment_delays_windows_equal_the_oracle(job_run: JobRunFactory, jobs: Jobs) -> None:
    run = job_run(JOB, "ROUTE_SHIPMENT_DELAYS_JOB_", BOUND)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=8)).replace(minute=0, second=0, microsecond=0)
    events = shipment_events(seed=41, count=2000, start=start, bound=BOUND)
    run.produce(events)
    expected = route_shipment_delays_windows(events, BOUND)
    assert len(expected) > 10
    windows = expected.values()
    assert any(w["max_delay_days"] > 0 for w in windows) and any(w["mean_delay_days"] % 1 for w in windows)
    assert any(w["delays_by_reason"]["CUSTOMS"] > 0 for w in windows)

    run.run_and_check(jobs.submit, "route_shipment_delays", expected)
