"""The main job report's monitoring section, read back from the stack's Prometheus for a run of a real service.

A GCS sink runs as its own process (announced in ``METRICS_TARGETS_DIR``, scraped by the stack's Prometheus) over
a topic of product views; once Prometheus has scraped all of them, ``observe_run`` over the run's window must
find the sink's records consumed (at least ours: other sink processes of a shared stack may add theirs), its event
time -> processed percentiles, and render the panels as PNG files that the report's rows link.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest

from deploy.observability_stage import PANELS, Prometheus, observe_run, rates_before_first_scrape, report_rows
from tests.integration.processes import service_process, wait_for
from tests.integration.sinks.helpers import produce_events

pytestmark = pytest.mark.integration

EVENTS = 300
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _counted(env: dict[str, str], topic: str, total: int) -> bool:
    """Whether Prometheus has scraped ``total`` records consumed from ``topic`` by the sink."""
    query = f'sum(freightline_records_consumed_total{{job="sink_gcs", topic="{topic}"}})'
    response = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/query", params={"query": query}, timeout=10)
    result = response.json()["data"]["result"]
    return bool(result) and float(result[0]["value"][1]) >= total


def _last_scrape(env: dict[str, str], topic: str) -> float:
    """The time of the last sample Prometheus holds of the sink's count for ``topic``."""
    query = f'freightline_records_consumed_total{{job="sink_gcs", topic="{topic}"}}[5m]'
    response = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/query", params={"query": query}, timeout=10)
    return max(float(t) for series in response.json()["data"]["result"] for t, _ in series["values"])


def test_the_report_reads_throughput_lag_and_latency_of_the_run_back_from_prometheus(
    monitored_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    started = time.time()
    topic = new_topic("report-monitoring", 1)

    def produce(count: int) -> None:
        now = dt.datetime.now(dt.UTC)
        produce_events(monitored_env, topic, count, start=now, spacing=dt.timedelta(milliseconds=1))

    env = {
        **monitored_env,
        "SINK_GCS_TOPICS": topic,
        "SINK_GCS_BUCKET": unique_name("bucket"),
        "SINK_GCS_GROUP_ID": unique_name("g"),
        "SINK_GCS_CREATE_BUCKET": "true",
        "SINK_GCS_BATCH_TIMEOUT_S": "1",
    }
    with service_process("sink_gcs", env, tmp_path / "sink.log") as sink:
        # Two rounds, each seen by Prometheus: the rates and the latency histogram grow between two scrapes.
        for total in (EVENTS // 2, EVENTS):
            produce(EVENTS // 2)
            wait_for(partial(_counted, monitored_env, topic, total), 120, what=f"Prometheus to count {total} records")
        assert sink.stop() == 0
    # The window ends at the sink's last scrape, as a run's may: its rates exist only from that scrape on.
    ended = _last_scrape(monitored_env, topic)
    figures = observe_run(monitored_env["PROMETHEUS_URL"], started, tmp_path / "report", ended)
    # what a service scraped only once has instead: its counters and their creation times, as Prometheus holds them
    prometheus = Prometheus(monitored_env["PROMETHEUS_URL"])
    ours = f'{{job="sink_gcs", topic="{topic}"}}'
    counters = prometheus.samples(f"freightline_records_consumed_total{ours}[10m]", ended)
    created = prometheus.samples(f"freightline_records_consumed_created{ours}[10m]", ended)
    assert rates_before_first_scrape(counters, created)["sink_gcs"] > 0

    sink_figures = figures.services["sink_gcs"]
    assert sink_figures.consumed >= EVENTS
    assert sink_figures.mean_rate > 0 and sink_figures.peak_rate is not None and sink_figures.peak_rate > 0
    assert set(sink_figures.latency_ms) == {0.5, 0.95, 0.99}
    assert 0 < sink_figures.latency_ms[0.5] <= sink_figures.latency_ms[0.99]
    assert {"records consumed per second", "event time -> processed p99"} <= set(figures.images) <= set(PANELS)
    for path in figures.images.values():
        assert path.parent == tmp_path / "report"
        assert path.read_bytes().startswith(PNG_MAGIC)
    rows = dict(report_rows(figures))
    assert "consumed" in rows["sink_gcs"] and "p99" in rows["sink_gcs"]
    assert {rows[f"image: {title}"] for title in figures.images} == {
        p.resolve().as_uri() for p in figures.images.values()
    }
