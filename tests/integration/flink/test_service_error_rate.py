"""The service-error-rate job against its oracle: per shop service per minute, events, errors (ERROR or CRITICAL)
and the rate (exactly the same double), in the committed Kafka output and PostgreSQL; views of closed windows go to
the late-events topic. The source has two partitions and every event is on the first: the second stays quiet for
the whole run, and the idle-source timeout (1 s here) keeps it from holding the watermark back, so windows close
while the job runs (with no timeout, no window would close before the job is stopped)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from stream_processors.oracle import service_error_rate_windows
from stream_processors.service_error_rate import JOB
from tests.integration.flink.conftest import Jobs
from tests.integration.flink.oracle import clickstream_events
from tests.integration.flink.support import JobRun

pytestmark = pytest.mark.integration

BOUND = dt.timedelta(seconds=5)


def test_service_error_rate_windows_equal_the_oracle_with_a_quiet_partition(
    stack_env: dict[str, str],
    flink_rest_url: str,
    new_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    jobs: Jobs,
) -> None:
    run = JobRun(
        JOB, "SERVICE_ERROR_RATE_JOB_", stack_env, flink_rest_url, new_topic, unique_name, BOUND, source_partitions=2
    )
    assert run.settings["SERVICE_ERROR_RATE_JOB_IDLE_TIMEOUT_MS"] == "1000"
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    events = clickstream_events(seed=51, count=3000, start=start, bound=BOUND)
    run.produce(events, partition=0)
    expected = service_error_rate_windows(events, BOUND)
    assert len(expected) > 20
    assert len({w["error_rate"] for w in expected.values()}) > 10 and any(
        w["error_count"] == 0 for w in expected.values()
    )

    run.run_late_and_check(
        jobs.submit, "service_error_rate", expected, events[:5], lambda event: str(event["service"]), partition=0
    )
