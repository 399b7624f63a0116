"""The monitoring components, started alone on free ports and stopped again."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from confluent_kafka import Producer as RawProducer
from prometheus_client.parser import text_string_to_metric_families

from deploy import flink_jobs
from deploy.local.airflow import airflow_environment
from deploy.local.components import KafkaBroker, Postgres
from deploy.local.context import StackContext
from deploy.local.observability_components import Alertmanager, Prometheus, StatsdExporter, observability_components
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from deploy.metrics_targets import TARGETS
from tests.integration.observability.platform import sending_airflow_metrics
from tests.integration.processes import wait_for
from tests.integration.stack.support import BROKER_AND_DATABASE_PORTS, private_stack_context
from tests.unit.observability.dashboard_queries import prometheus_queries

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_monitoring_starts_with_the_rules_and_routes_and_stops_without_leftovers(tmp_path: Path) -> None:
    settings = StackSettings(
        home=str(tmp_path / "home"),
        prometheus_port=_free_port(),
        alertmanager_port=_free_port(),
        alert_webhook_url=f"http://127.0.0.1:{_free_port()}/alerts",
        stop_timeout_s=20,
    )
    ctx = StackContext.create(settings)
    ctx.paths.ensure()
    ctx.paths.jars.rmdir()  # the stack's set-up resolves the Java runtimes: reuse the main state directory's
    ctx.paths.jars.symlink_to(StackContext.create(StackSettings()).paths.jars)
    stack = Stack(ctx, [Alertmanager(), Prometheus()])
    env = stack.up()
    try:
        pids = stack.pids()
        assert len(pids) == 3  # supervisord, Prometheus, Alertmanager
        assert {"PROMETHEUS_URL", "ALERTMANAGER_URL", "ALERTMANAGER_WEBHOOK_URL", "METRICS_TARGETS_DIR"} <= set(env)

        config = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/status/config", timeout=10).json()["data"]["yaml"]
        assert all(f"job_name: {t.name}" in config for t in TARGETS)
        groups = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/rules", timeout=10).json()["data"]["groups"]
        alerts = {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}
        assert "FreightlineDeadLetters" in alerts and "FreightlineLatencySLOFastBurn" in alerts
        assert all(rule["health"] != "err" for group in groups for rule in group["rules"])

        def managers() -> list[str]:
            data = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/alertmanagers", timeout=10).json()["data"]
            return [m["url"] for m in data["activeAlertmanagers"]]

        wait_for(lambda: managers() == [f"{env['ALERTMANAGER_URL']}/api/v2/alerts"], 60, what="the alertmanager")

        status = httpx.get(f"{env['ALERTMANAGER_URL']}/api/v2/status", timeout=10).json()
        assert env["ALERTMANAGER_WEBHOOK_URL"] in status["config"]["original"]
        assert status["cluster"]["status"] == "disabled"
    finally:
        children = [c.pid for pid in stack.pids() for c in psutil.Process(pid).children(recursive=True)]
        stack.down()
    for pid in [*pids, *children]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    for port in (settings.prometheus_port, settings.alertmanager_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_prometheus_scrapes_the_brokers_postgres_and_airflows_statsd_metrics(tmp_path: Path) -> None:
    """A broker, PostgreSQL and its exporter and the statsd_exporter beside their own Prometheus, all on free
    ports: the broker's target of the job ``kafka``, the job ``postgres`` and the job ``statsd`` of
    ``deploy/metrics_targets.py`` are up and return the broker's per-topic counters (the JMX exporter's rules),
    PostgreSQL's own series, and what Airflow (its own metrics module, configured as the stack configures Airflow)
    sent over StatsD, mapped by ``observability/statsd/mapping.yml``. (The job ``kafka``'s second target, the
    remote broker, is the same agent with the same rules in a second JVM: not started here, it stays down.)"""
    ctx = private_stack_context(
        tmp_path,
        ports=(
            *BROKER_AND_DATABASE_PORTS,
            "postgres_exporter_port",
            "prometheus_port",
            "alertmanager_port",
            "statsd_port",
            "statsd_exporter_port",
        ),
    )
    # the stack's set-up builds the Go servers: reuse the main state directory's
    (ctx.paths.home / "bin").symlink_to(StackContext.create(StackSettings()).paths.home / "bin")
    broker = KafkaBroker("kafka", sasl=False)
    components = [
        broker,
        Postgres(),
        *(component for component in observability_components() if component.name != "jaeger"),
    ]
    stack = Stack(ctx, components)
    env = stack.up()
    try:
        producer = RawProducer({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]})
        producer.produce("scraped-topic", b"one record")
        assert producer.flush(30) == 0

        def query(expr: str) -> list[dict[str, Any]]:
            response = httpx.get(f"{env['PROMETHEUS_URL']}/api/v1/query", params={"query": expr}, timeout=10)
            return list(response.json()["data"]["result"])

        # the main job's mark of a Flink job it stopped on purpose (read by FreightlineFlinkJobsLost), and Airflow's
        # metrics, sent while the brokers' and PostgreSQL's series are awaited
        assert flink_jobs.record_stopped(env, ["0123abcd"])
        with sending_airflow_metrics(airflow_environment(ctx), "daily_analytics"):
            broker_target = f'up{{job="kafka", instance="{broker.metrics_address(ctx)}"}} == 1'
            wait_for(lambda: bool(query(broker_target)), 120, what="the broker's JMX exporter up")
            wait_for(lambda: bool(query('up{job="postgres"} == 1')), 60, what="the PostgreSQL exporter up")
            wait_for(
                lambda: bool(query('kafka_server_brokertopicmetrics_messagesin_total{topic="scraped-topic"} > 0')),
                60,
                what="the broker's per-topic message count",
            )
            assert query("pg_up == 1")
            assert query('pg_stat_database_xact_commit{datname="postgres"}')
            assert query("kafka_server_replicamanager_partitioncount")

        exporter = StatsdExporter()

        def exported() -> dict[str, list[Any]]:
            text = httpx.get(f"http://{exporter.address(ctx)}/metrics", timeout=10).text
            families = text_string_to_metric_families(text)
            return {f.name: f.samples for f in families if f.name.startswith("airflow")}

        wait_for(lambda: "airflow_task_failures" in exported(), 60, what="Airflow's metrics in statsd_exporter")
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in exported().values() for s in f}
        assert samples[("airflow_scheduler_heartbeats_total", ())] == 1
        dag_run = (("dag_id", "daily_analytics"), ("run_type", "manual"), ("state", "failed"))
        assert samples[("airflow_dagrun_duration_seconds_sum", dag_run)] == 42
        assert samples[("airflow_dagrun_duration_seconds_count", dag_run)] == 1
        slots = (("executor_class_name", "LocalExecutor"), ("status", "open"))
        assert samples[("airflow_executor_open_slots", slots)] == 2
        failures = (("dag_id", "daily_analytics"), ("task_id", "aggregate"))
        assert samples[("airflow_task_failures_total", failures)] == 1
        assert not any("unmapped" in name for name, _ in samples)

        wait_for(
            lambda: bool(query('freightline_flink_job_stopped_on_purpose{job="statsd", job_id="0123abcd"} > 0')),
            60,
            what="Prometheus to scrape the mark of a Flink job stopped on purpose",
        )
        wait_for(
            lambda: bool(query('airflow_dagrun_duration_seconds_count{job="statsd", state="failed"} == 1')),
            60,
            what="Prometheus to scrape Airflow's metrics",
        )
        # the dashboards' Airflow row over what this Prometheus scraped: every query parses and has data
        airflow_queries = [q for q in prometheus_queries() if "airflow_" in q.text]
        assert len(airflow_queries) >= 7
        wait_for(
            lambda: all(query(q.resolved()) for q in airflow_queries),
            60,
            what="data for every query of the Airflow row",
        )
    finally:
        stack.down()
