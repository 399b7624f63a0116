"""The scrape list: one entry per service, named as the service names itself, rendered into scrape jobs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from deploy.local.context import StackContext
from deploy.local.observability_components import Prometheus, metrics_targets_dir
from deploy.local.settings import StackSettings
from deploy.metrics_targets import FLINK, SERVICES, TARGETS, MetricsTarget, scrape_configs

# where each service declares the name it labels its metrics with (``ServiceMetrics(SERVICE)``)
SERVICE_CONSTANTS = {
    "generator": "services.generator.runner",
    "mirror": "services.mirror.mirror",
    "enricher": "services.enricher.app",
    "anomaly_detector": "services.anomaly_detector.topology",
    "sink_mongodb": "services.sink_mongodb.settings",
    "sink_hdfs": "services.sink_hdfs.settings",
    "sink_gcs": "services.sink_gcs.settings",
}


def test_every_service_is_listed_once_under_its_own_name() -> None:
    services = sorted(p.name for p in (Path(__file__).resolve().parents[3] / "services").iterdir() if p.is_dir())
    services = [s for s in services if s not in ("common", "__pycache__")]
    assert sorted((t.module or "").removeprefix("services.") for t in SERVICES) == services
    assert len({t.name for t in SERVICES}) == len({t.metrics_port for t in SERVICES}) == len(SERVICES)
    assert len({t.name for t in TARGETS}) == len(TARGETS)
    assert all(t.module is None and not t.discovered for t in FLINK)
    for target in SERVICES:
        if target.discovered:
            assert target.name == importlib.import_module(SERVICE_CONSTANTS[target.name]).SERVICE


def test_scrape_jobs_discover_services_from_files_and_the_registry_statically(tmp_path: Path) -> None:
    jobs = {
        job["job_name"]: job
        for job in scrape_configs(
            SERVICES, targets_dir=tmp_path, static_addresses={"schema_registry": "127.0.0.1:18081"}
        )
    }
    assert set(jobs) == {t.name for t in SERVICES}
    assert jobs["schema_registry"]["static_configs"] == [{"targets": ["127.0.0.1:18081"]}]
    assert jobs["mirror"]["file_sd_configs"] == [
        {"files": [str(tmp_path / "mirror" / "*.json")], "refresh_interval": "30s"}
    ]
    with pytest.raises(ValueError, match="schema_registry"):
        scrape_configs(
            [MetricsTarget("schema_registry", "services.schema_registry", 1, discovered=False)],
            targets_dir=tmp_path,
            static_addresses={},
        )


def test_stack_prometheus_scrapes_the_stack_registry_flink_and_the_exported_targets_dir(tmp_path: Path) -> None:
    settings = StackSettings(
        home=str(tmp_path),
        schema_registry_port=28081,
        alertmanager_port=29095,
        flink_jobmanager_metrics_port=29249,
        flink_taskmanager_metrics_port=29250,
        kafka_metrics_port=29071,
        remote_kafka_metrics_port=29072,
        postgres_exporter_port=29187,
        statsd_exporter_port=29102,
    )
    ctx = StackContext.create(settings)
    config = Prometheus().config(ctx)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {t.name for t in TARGETS}
    assert jobs["schema_registry"]["static_configs"] == [{"targets": ["127.0.0.1:28081"]}]
    assert jobs["flink_jobmanager"]["static_configs"] == [{"targets": ["127.0.0.1:29249"]}]
    assert jobs["flink_taskmanager"]["static_configs"] == [{"targets": ["127.0.0.1:29250"]}]
    assert jobs["kafka"]["static_configs"] == [{"targets": ["127.0.0.1:29071", "127.0.0.1:29072"]}]  # both brokers
    assert jobs["postgres"]["static_configs"] == [{"targets": ["127.0.0.1:29187"]}]
    assert jobs["statsd"]["static_configs"] == [{"targets": ["127.0.0.1:29102"]}]  # Airflow's metrics
    assert jobs["enricher"]["file_sd_configs"][0]["files"] == [str(metrics_targets_dir(ctx) / "enricher" / "*.json")]
    assert Prometheus().exports(ctx)["METRICS_TARGETS_DIR"] == str(metrics_targets_dir(ctx))
    assert config["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["127.0.0.1:29095"]}]
    ctx.paths.ensure()
    Prometheus().prepare(ctx)  # the watched folders exist before Prometheus starts
    assert all((metrics_targets_dir(ctx) / t.name).is_dir() for t in SERVICES if t.discovered)
