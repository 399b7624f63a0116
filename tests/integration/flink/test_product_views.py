"""The product-views job on the stack's Flink cluster against its plain-Python oracle, window by window: the
committed Kafka output (read_committed) and the PostgreSQL table, every field of every window, none missing, none
doubled; once in one run and once across a stop with a savepoint and a resume from it.

The source topic has one partition: with several, a partition read after another went idle (idle-source timeout)
may find the watermark already past its events, and which events that drops depends on the fetch order."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from deploy import flink_jobs
from deploy.cli import build
from schemas import topics
from schemas.catalogue import load_catalogue, schema_text
from stream_processors.oracle import final_watermark, product_views_windows
from stream_processors.product_views import JOB
from tests.integration.flink.conftest import Jobs
from tests.integration.flink.oracle import product_views_events
from tests.integration.flink.support import JobRun, parsed_schema

pytestmark = pytest.mark.integration

BOUND = dt.timedelta(seconds=5)


def views(seed: int) -> list[dict[str, Any]]:
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    return product_views_events(seed=seed, count=3000, start=start, bound=BOUND)


def late_event(event: dict[str, Any], source: str) -> dict[str, Any]:
    """The late-event record the job writes for a product view whose window had closed."""
    time = event["metadata"]["event_time"]
    start = time.replace(second=0, microsecond=0)
    return {
        "metadata": {
            "event_id": uuid.UUID(event["metadata"]["event_id"]),
            "event_time": time,
            "producer": JOB.producer,
            "trace_context": None,
        },
        "job": JOB.name,
        "source_topic": source,
        "window_key": event["product_id"],
        "window_start": start,
        "window_end": start + dt.timedelta(minutes=1),
    }


def last_end(windows: dict[tuple[Any, ...], dict[str, Any]]) -> dt.datetime:
    return max(window["window_end"] for window in windows.values())


@pytest.fixture
def run(
    stack_env: dict[str, str], flink_rest_url: str, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> JobRun:
    return JobRun(JOB, "PRODUCT_VIEWS_JOB_", stack_env, flink_rest_url, new_topic, unique_name, BOUND)


def test_product_views_windows_equal_the_oracle(run: JobRun, jobs: Jobs) -> None:
    events = views(seed=13)
    run.produce(events)
    expected = product_views_windows(events, BOUND)
    assert len(expected) > 50

    job_id = jobs.submit("product_views", run.settings)
    run.wait_for_window_end(last_end(expected))
    # views of windows already emitted: reported as late, counted nowhere
    late = [
        {**event, "product_id": "P-late", "metadata": {**event["metadata"], "event_id": str(uuid.uuid4())}}
        for event in events[:5]
    ]
    run.produce(late)
    run.wait_until_read()
    run.check_late_seen(job_id, len(late))
    # stopping with a savepoint commits the last transaction: the topic then holds everything the job wrote
    flink_jobs.savepoint(run.rest_url, job_id, stop=True)
    run.check(expected)

    watermark = final_watermark(events, BOUND)
    reported = run.late_events()
    for record in reported:
        assert record["window_end"] <= record.pop("watermark") <= watermark
    assert reported == [late_event(event, run.source) for event in late]
    contract = schema_text(load_catalogue().topic(topics.AGGREGATES_PRODUCT_VIEWS).value_schema)
    assert run.registered_schema() == parsed_schema(contract)


def test_product_views_resume_from_a_savepoint_without_loss_or_duplicates(run: JobRun, jobs: Jobs) -> None:
    events = views(seed=14)
    half = len(events) // 2
    run.produce(events[:half])
    first = jobs.submit("product_views", run.settings)
    run.wait_for_window_end(last_end(product_views_windows(events[:half], BOUND)))
    # the upgrade path, through the CLI: stop with a savepoint, then submit again from it
    cli = build()
    stopped = CliRunner().invoke(cli, ["flink", "savepoint", first, "--stop", "--rest-url", run.rest_url])
    assert stopped.exit_code == 0, stopped.output
    savepoint = stopped.output.strip()

    run.produce(events[half:])
    expected = product_views_windows(events, BOUND)
    settings = [arg for key, value in {**run.env, **run.settings}.items() for arg in ("--set", f"{key}={value}")]
    resumed = CliRunner().invoke(
        cli,
        ["flink", "submit", "product_views", *settings, "--from-savepoint", savepoint, "--rest-url", run.rest_url],
    )
    assert resumed.exit_code == 0, resumed.output
    second = jobs.track(resumed.output.strip())
    listed = CliRunner().invoke(cli, ["flink", "list", "--rest-url", run.rest_url])
    assert second in listed.output
    run.wait_for_window_end(last_end(expected))
    flink_jobs.savepoint(run.rest_url, second, stop=True)
    run.check(expected)
