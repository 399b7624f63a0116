"""The stack's Prometheus and Alertmanager against real services: discovery, scraping, one alert end to end.

The Flink JobManager and TaskManager of the stack are static targets: both must be scraped (up) through Flink's
Prometheus reporter. A GCS sink runs as its own process with the stack's environment, so it announces its
``/metrics`` in ``METRICS_TARGETS_DIR``; Prometheus must find it there and scrape it, and the registry at its
static address. Then a poison record makes the sink dead-letter it: the real ``FreightlineDeadLetters`` rule of
``observability/prometheus/alerts.rules.yml`` fires, and Alertmanager posts it to a webhook this test serves on
the stack's ``ALERTMANAGER_WEBHOOK_URL``.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.processes import ServiceProcess, service_process, wait_for
from tests.integration.sinks.helpers import produce_events
from tests.unit.observability.catalogue import CATALOGUE, catalogue

pytestmark = pytest.mark.integration


def _query(env: dict[str, str], promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _value(env: dict[str, str], promql: str) -> float | None:
    result = _query(env, promql)
    return float(result[0]["value"][1]) if result else None


def _sink_env(env: dict[str, str], topic: str, unique_name: Callable[[str], str]) -> dict[str, str]:
    return {
        **env,
        "SINK_GCS_TOPICS": topic,
        "SINK_GCS_BUCKET": unique_name("bucket"),
        "SINK_GCS_GROUP_ID": unique_name("g"),
        "SINK_GCS_CREATE_BUCKET": "true",
    }


def _announced(env: dict[str, str], sink: ServiceProcess) -> tuple[Path, str]:
    """The target file the sink process keeps for file-based discovery (waits for it) and the address in it."""
    assert sink.process is not None
    path = Path(env["METRICS_TARGETS_DIR"]) / "sink_gcs" / f"{sink.process.pid}.json"
    wait_for(path.exists, 60, what=f"{path} (sink log: {sink.log_path})")
    targets: list[str] = json.loads(path.read_text())[0]["targets"]
    return path, targets[0]


def _scraped_families(env: dict[str, str], address: str) -> set[tuple[str, str]]:
    """Metric names and types Prometheus read from the target at ``address``, without prometheus_client's
    ``_created`` timestamps (one per counter and histogram, documented in METRICS.md)."""
    response = httpx.get(
        f"{env['PROMETHEUS_URL']}/api/v1/targets/metadata",
        params={"match_target": f'{{instance="{address}"}}'},
        timeout=10,
    )
    response.raise_for_status()
    return {(m["metric"], m["type"]) for m in response.json()["data"] if not m["metric"].endswith("_created")}


def test_prometheus_scrapes_the_registry_and_a_service_it_discovered(
    monitored_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    wait_for(lambda: _value(monitored_env, 'up{job="schema_registry"}') == 1, 60, what="the registry scraped")
    topic = new_topic("prom-scrape", 1)
    with service_process("sink_gcs", _sink_env(monitored_env, topic, unique_name), tmp_path / "sink.log") as sink:
        target_file, address = _announced(monitored_env, sink)
        instance = f'job="sink_gcs", instance="{address}"'
        wait_for(lambda: _value(monitored_env, f"up{{{instance}}}") == 1, 60, what=f"{address} scraped")
        wait_for(
            lambda: _value(monitored_env, f"freightline_sink_gcs_target_up{{{instance}}}") == 1,
            60,
            what="the sink's own metrics in Prometheus",
        )
        scraped = _scraped_families(monitored_env, address)
        assert sink.stop() == 0
    assert not target_file.exists()  # removed on a clean stop
    listed = {(f.name, f.type) for f, services in catalogue(CATALOGUE.read_text()).items() if "sink_gcs" in services}
    assert scraped == listed, "what Prometheus scraped from the sink differs from observability/METRICS.md"


def _flink_targets(env: dict[str, str]) -> dict[str, str]:
    """The health of each Flink target Prometheus scrapes, by its job."""
    response = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/targets", params={"state": "active"}, timeout=10)
    response.raise_for_status()
    return {
        target["labels"]["job"]: target["health"]
        for target in response.json()["data"]["activeTargets"]
        if target["labels"]["job"].startswith("flink_")
    }


def test_prometheus_scrapes_the_flink_jobmanager_and_taskmanager(monitored_env: dict[str, str]) -> None:
    expected = {"flink_jobmanager": "up", "flink_taskmanager": "up"}
    wait_for(lambda: _flink_targets(monitored_env) == expected, 60, what=f"Flink targets {expected}")
    # the reporters' own series, as the Flink alerts read them: the TaskManager registered with the JobManager
    registered = _value(monitored_env, 'flink_jobmanager_numRegisteredTaskManagers{job="flink_jobmanager"}')
    assert registered is not None and registered >= 1
    assert _value(monitored_env, 'count(flink_taskmanager_Status_JVM_CPU_Load{job="flink_taskmanager"})') == 1


class _Webhook:
    """Alertmanager's notifications, as posted to the stack's webhook URL."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == webhook.path:
                    webhook.received.put(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer((parts.hostname or "127.0.0.1", parts.port or 80), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def alert(self, timeout: float, **labels: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first notification holding a firing alert with ``labels``, and that alert."""
        deadline = time.monotonic() + timeout
        while True:
            # raises queue.Empty once the deadline passed: the hang guard
            payload = self.received.get(timeout=max(deadline - time.monotonic(), 0.001))
            for alert in payload["alerts"]:
                if alert["status"] == "firing" and labels.items() <= alert["labels"].items():
                    return payload, alert


@contextmanager
def _webhook(url: str) -> Iterator[_Webhook]:
    webhook = _Webhook(url)
    webhook.thread.start()
    try:
        yield webhook
    finally:
        webhook.server.shutdown()
        webhook.server.server_close()


def test_a_dead_letter_fires_an_alert_into_the_webhook(
    monitored_env: dict[str, str], new_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = new_topic("prom-alert", 1)
    with (
        _webhook(monitored_env["ALERTMANAGER_WEBHOOK_URL"]) as webhook,
        service_process("sink_gcs", _sink_env(monitored_env, topic, unique_name), tmp_path / "sink.log") as sink,
    ):
        _announced(monitored_env, sink)
        produce_events(monitored_env, topic, 10, poison=1)
        payload, alert = webhook.alert(120, alertname="FreightlineDeadLetters", service="sink_gcs", topic=topic)
        assert sink.stop() == 0
    assert payload["receiver"] == "tickets"
    assert alert["labels"]["severity"] == "ticket"
    assert alert["labels"]["error_type"]
    assert topic in alert["annotations"]["summary"]
